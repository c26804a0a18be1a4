//! Static files (`static/`), embedded in the binary and served with long-lived caching.

use std::borrow::Cow;
use std::path::PathBuf;

use rocket::http::{ContentType, Header};
use rocket::response::Responder;
use rust_embed::RustEmbed;

#[derive(RustEmbed)]
#[folder = "static/"]
struct Static;

/// `{base}/static/{path}?v={hash}`. The hash changes when the file does, so the browser may
/// cache each URL forever.
pub fn url(base: &str, path: &str) -> String {
    match Static::get(path) {
        Some(file) => {
            let hash = file.metadata.sha256_hash();
            format!(
                "{base}/static/{path}?v={:02x}{:02x}{:02x}{:02x}",
                hash[0], hash[1], hash[2], hash[3]
            )
        }
        // A typo in a template: visible in the browser's console as a 404.
        None => format!("{base}/static/{path}"),
    }
}

#[derive(Responder)]
pub struct Asset {
    body: Cow<'static, [u8]>,
    content_type: ContentType,
    cache: Header<'static>,
}

#[rocket::get("/static/<path..>?<v>")]
pub fn asset(path: PathBuf, v: Option<&str>) -> Option<Asset> {
    let name = path.to_str()?;
    let file = Static::get(name)?;
    let content_type = path
        .extension()
        .and_then(|e| e.to_str())
        .and_then(ContentType::from_extension)
        .unwrap_or(ContentType::Binary);
    let cache = if v.is_some() { "public, max-age=31536000, immutable" } else { "no-cache" };
    Some(Asset { body: file.data, content_type, cache: Header::new("Cache-Control", cache) })
}
