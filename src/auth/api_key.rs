//! API keys: `sw_` and 43 random characters, shown once, stored as SHA-256, scoped read-only
//! or admin. `STREAMWARDEN_API_KEY` from the environment is an admin key too.

use rocket::request::Request;

use super::Principal;
use crate::config::Config;
use crate::crypto::{constant_time_eq, random_token, sha256_hex};
use crate::db::{Db, api_keys};
use crate::error::AppResult;

/// Every key we issue starts with this, so secret scanners and people can recognise one.
pub const PREFIX: &str = "sw_";
/// How much of a key is kept in the clear to tell keys apart.
const SHOWN_CHARS: usize = 10;
/// `last_used_at` is written at most this often per key.
const TOUCH_EVERY_MS: i64 = 60_000;
/// Name of the environment's key in the audit log.
pub const ENV_KEY_NAME: &str = "environment";

/// A freshly generated key: the secret (shown once), its hash and its visible prefix.
pub struct Generated {
    pub key: String,
    pub hash: String,
    pub prefix: String,
}

pub fn generate() -> Generated {
    let key = format!("{PREFIX}{}", random_token());
    Generated { hash: sha256_hex(key.as_bytes()), prefix: key[..SHOWN_CHARS].to_owned(), key }
}

/// The key a request presents: `Authorization: Bearer <key>` or `X-Api-Key: <key>`.
pub fn presented<'r>(req: &'r Request<'_>) -> Option<&'r str> {
    let bearer = req.headers().get_one("Authorization").and_then(|v| {
        let (scheme, rest) = v.split_once(' ')?;
        scheme.eq_ignore_ascii_case("bearer").then(|| rest.trim())
    });
    bearer.or_else(|| req.headers().get_one("X-Api-Key").map(str::trim))
}

/// `None` without a key; `Some(Err(message))` for a key that is not valid.
pub async fn authenticate(req: &Request<'_>) -> Option<Result<Principal, String>> {
    let key = presented(req)?;
    let config = req.rocket().state::<Config>()?;
    if let Some(env_key) = &config.api_key
        && constant_time_eq(key.as_bytes(), env_key.expose().as_bytes())
    {
        return Some(Ok(Principal::ApiKey {
            id: None,
            name: ENV_KEY_NAME.to_owned(),
            admin: true,
        }));
    }
    let db = req.rocket().state::<Db>()?;
    Some(match lookup(db, key).await {
        Ok(Some(principal)) => Ok(principal),
        Ok(None) => {
            Err("This API key is not valid (revoked, mistyped or from another server).".to_owned())
        }
        Err(e) => {
            tracing::warn!(error = %e, "API key lookup failed");
            Err("The API key could not be checked. Try again.".to_owned())
        }
    })
}

async fn lookup(db: &Db, key: &str) -> AppResult<Option<Principal>> {
    if !key.starts_with(PREFIX) {
        return Ok(None);
    }
    let hash = sha256_hex(key.as_bytes());
    let Some(found) = db.read(move |c| api_keys::by_hash(c, &hash)).await? else {
        return Ok(None);
    };
    let now = crate::time::now_ms();
    if found.last_used_at.is_none_or(|t| now - t >= TOUCH_EVERY_MS) {
        let id = found.id;
        db.write(move |c| api_keys::touch(c, id, now)).await?;
    }
    Ok(Some(Principal::ApiKey { id: Some(found.id), admin: found.is_admin(), name: found.name }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_are_prefixed_and_hashed() {
        let g = generate();
        assert!(g.key.starts_with("sw_") && g.key.len() == 46, "{}", g.key);
        assert!(g.key.starts_with(&g.prefix) && g.prefix.len() == 10);
        assert_eq!(g.hash, sha256_hex(g.key.as_bytes()));
        assert_ne!(generate().key, g.key);
    }
}
