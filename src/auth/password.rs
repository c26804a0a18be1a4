//! Passwords: argon2id with the crate's defaults (19 `MiB`, 2 passes, OWASP's recommendation),
//! on the blocking pool, at most [`CONCURRENT_HASHES`] at a time.

use std::sync::{Arc, OnceLock};

use argon2::{Argon2, PasswordHasher as _, PasswordVerifier as _};
use tokio::sync::Semaphore;

use crate::error::{AppError, AppResult};

/// Each hash holds about 19 `MiB`; a burst of sign-ins queues instead of eating memory.
pub const CONCURRENT_HASHES: usize = 2;
/// Shortest password we accept.
pub const MIN_LENGTH: usize = 8;
/// Longest password we accept (bytes), so hashing stays cheap to ask for.
pub const MAX_BYTES: usize = 1024;

/// The semaphore bounding concurrent hashes.
pub struct Hashing(Arc<Semaphore>);

impl Default for Hashing {
    fn default() -> Self {
        Self(Arc::new(Semaphore::new(CONCURRENT_HASHES)))
    }
}

impl Hashing {
    /// Hashes a password into a PHC string (`$argon2id$v=19$...`).
    pub async fn hash(&self, password: &str) -> AppResult<String> {
        let password = password.to_owned();
        let _permit = Arc::clone(&self.0).acquire_owned().await.expect("never closed");
        tokio::task::spawn_blocking(move || hash_blocking(&password)).await?
    }

    /// True when `password` matches `hash`. Without a hash (unknown account, or one without
    /// a password) a dummy hash is checked, so the answer takes the same time either way.
    pub async fn verify(&self, password: &str, hash: Option<String>) -> AppResult<bool> {
        let password = password.to_owned();
        let _permit = Arc::clone(&self.0).acquire_owned().await.expect("never closed");
        tokio::task::spawn_blocking(move || {
            let real = hash.is_some();
            let hash = match hash {
                Some(h) => h,
                None => dummy_hash().to_owned(),
            };
            Ok(real && verify_blocking(&password, &hash))
        })
        .await?
    }
}

/// Hashes on the calling thread (tests, command-line tools).
pub fn hash_blocking(password: &str) -> AppResult<String> {
    Argon2::default()
        .hash_password(password.as_bytes())
        .map(|h| h.to_string())
        .map_err(|e| AppError::internal("hashing a password", e.to_string()))
}

fn verify_blocking(password: &str, hash: &str) -> bool {
    Argon2::default().verify_password(password.as_bytes(), hash).is_ok()
}

fn dummy_hash() -> &'static str {
    static DUMMY: OnceLock<String> = OnceLock::new();
    DUMMY.get_or_init(|| {
        hash_blocking(&crate::crypto::random_token()).unwrap_or_else(|_| String::from("$argon2id$"))
    })
}

/// Checks a new password against our rules; `field` names the form field in the error.
pub fn validate(field: &str, password: &str, username: &str) -> AppResult<()> {
    let chars = password.chars().count();
    if chars < MIN_LENGTH {
        return Err(AppError::validation(
            field,
            format!("Use at least {MIN_LENGTH} characters (this one has {chars})."),
        ));
    }
    if password.len() > MAX_BYTES {
        return Err(AppError::validation(field, format!("Use at most {MAX_BYTES} characters.")));
    }
    if password.trim().is_empty() || password.eq_ignore_ascii_case(username) {
        return Err(AppError::validation(field, "Choose a password that is not your username."));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hashes_are_argon2id_salted_and_verify() {
        let hashing = Hashing::default();
        let a = hashing.hash("correct horse").await.unwrap();
        let b = hashing.hash("correct horse").await.unwrap();
        assert!(a.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{a}");
        assert_ne!(a, b, "salted");
        assert!(hashing.verify("correct horse", Some(a.clone())).await.unwrap());
        assert!(!hashing.verify("correct horsE", Some(a)).await.unwrap());
        assert!(!hashing.verify("anything", None).await.unwrap());
        assert!(!hashing.verify("x", Some("not a hash".into())).await.unwrap());
    }

    #[test]
    fn rules() {
        assert!(validate("password", "short", "bob").is_err());
        assert!(validate("password", "alice-alice", "alice-alice").is_err());
        assert!(validate("password", &"x".repeat(2000), "bob").is_err());
        assert!(validate("password", "        ", "bob").is_err());
        assert!(validate("password", "längeres passwort", "bob").is_ok());
    }
}
