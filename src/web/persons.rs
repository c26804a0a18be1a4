//! The forms behind persons on the Users pages: link a suggestion (or chosen accounts),
//! say a suggestion is wrong, dissolve a person, unlink one account. The changes are
//! `crate::persons`', the API's too.

use rocket::State;
use serde_json::json;

use crate::auth::{Admin, CsrfForm, NoFields};
use crate::db::Db;
use crate::error::AppResult;
use crate::persons;
use crate::web::htmx::{Done, HxRequest, done};
use crate::web::layout::Layout;
use crate::web::{ClientAddr, audit};

/// Accounts to link or to tell apart, as the suggestion's form posts them.
#[derive(Debug, Clone, Default, rocket::FromForm)]
pub struct AccountsForm {
    #[field(default = Vec::new())]
    user_ids: Vec<i64>,
    #[field(default = String::new())]
    name: String,
}

/// Links the accounts into one person (the admin's confirmation of a suggestion).
#[rocket::post("/persons", data = "<form>")]
pub async fn link(
    admin: Admin,
    form: CsrfForm<AccountsForm>,
    db: &State<Db>,
    hx: HxRequest,
    ip: ClientAddr,
    layout: Layout,
) -> AppResult<Done> {
    let AccountsForm { user_ids, name } = form.0;
    let ids = user_ids.clone();
    let linked =
        db.write(move |c| persons::link(c, &user_ids, Some(&name), crate::db::now_ms())).await?;
    let details = json!({"user_ids": ids, "name": linked.person.name});
    let target = format!("person:{}", linked.person.id);
    audit(db, &admin.0.actor(), "person.link", &target, details, ip.0).await;
    Ok(done(&hx, format!("{}/users#persons", layout.base)))
}

/// The accounts of a suggestion are different people.
#[rocket::post("/persons/dismiss", data = "<form>")]
pub async fn dismiss(
    admin: Admin,
    form: CsrfForm<AccountsForm>,
    db: &State<Db>,
    hx: HxRequest,
    ip: ClientAddr,
    layout: Layout,
) -> AppResult<Done> {
    let ids = form.0.user_ids;
    let stored = ids.clone();
    db.write(move |c| persons::dismiss(c, &stored, crate::db::now_ms())).await?;
    audit(db, &admin.0.actor(), "person.dismiss", "persons", json!({"user_ids": ids}), ip.0).await;
    Ok(done(&hx, format!("{}/users#suggestions", layout.base)))
}

/// Dissolves a person.
#[rocket::post("/persons/<id>/delete", data = "<_form>")]
pub async fn dissolve(
    admin: Admin,
    id: i64,
    _form: CsrfForm<NoFields>,
    db: &State<Db>,
    hx: HxRequest,
    ip: ClientAddr,
    layout: Layout,
) -> AppResult<Done> {
    let was = db.write(move |c| persons::dissolve(c, id)).await?;
    let ids: Vec<i64> = was.accounts.iter().map(|a| a.id).collect();
    let details = json!({"user_ids": ids, "name": was.person.name});
    audit(db, &admin.0.actor(), "person.dissolve", &format!("person:{id}"), details, ip.0).await;
    Ok(done(&hx, format!("{}/users#persons", layout.base)))
}

/// Takes one account out of its person.
#[rocket::post("/users/<id>/person/delete", data = "<_form>")]
pub async fn unlink(
    admin: Admin,
    id: i64,
    _form: CsrfForm<NoFields>,
    db: &State<Db>,
    hx: HxRequest,
    ip: ClientAddr,
    layout: Layout,
) -> AppResult<Done> {
    let gone = db.write(move |c| persons::unlink(c, id)).await?;
    let details = json!({"person_id": gone.person_id, "dissolved": gone.dissolved});
    audit(db, &admin.0.actor(), "person.unlink", &format!("user:{id}"), details, ip.0).await;
    Ok(done(&hx, format!("{}/users/{id}", layout.base)))
}
