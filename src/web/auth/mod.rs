//! Sign-in pages and account settings.

pub fn routes() -> Vec<rocket::Route> {
    vec![]
}
