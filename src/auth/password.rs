//! Passwords: argon2id with the crate's defaults (19 `MiB`, 2 passes, OWASP's recommendation),
//! on the blocking pool, at most [`CONCURRENT_HASHES`] at a time; new passwords are checked
//! against a list of common ones.

use std::sync::atomic::{AtomicU64, Ordering};
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

/// The semaphore bounding concurrent hashes, and a count of the verifications run.
pub struct Hashing {
    permits: Arc<Semaphore>,
    verifications: Arc<AtomicU64>,
}

impl Default for Hashing {
    fn default() -> Self {
        Self {
            permits: Arc::new(Semaphore::new(CONCURRENT_HASHES)),
            verifications: Arc::new(AtomicU64::new(0)),
        }
    }
}

impl Hashing {
    /// Hashes a password into a PHC string (`$argon2id$v=19$...`).
    pub async fn hash(&self, password: &str) -> AppResult<String> {
        let password = password.to_owned();
        let _permit = Arc::clone(&self.permits).acquire_owned().await.expect("never closed");
        tokio::task::spawn_blocking(move || hash_blocking(&password)).await?
    }

    /// True when `password` matches `hash`. Without a hash (unknown account, or one without
    /// a password) a dummy hash is verified all the same, so that the answer costs the same
    /// work (and time) either way and does not tell which accounts exist.
    pub async fn verify(&self, password: &str, hash: Option<String>) -> AppResult<bool> {
        let password = password.to_owned();
        let _permit = Arc::clone(&self.permits).acquire_owned().await.expect("never closed");
        let verifications = Arc::clone(&self.verifications);
        tokio::task::spawn_blocking(move || {
            // Verify first, decide after: `real && verify(..)` would skip the work exactly
            // when there is no account.
            let matched = verify_blocking(&password, hash.as_deref().unwrap_or(dummy_hash()));
            verifications.fetch_add(1, Ordering::Relaxed);
            Ok(hash.is_some() && matched)
        })
        .await?
    }

    /// How many argon2 verifications ran (real or dummy), for tests and diagnostics.
    pub fn verifications(&self) -> u64 {
        self.verifications.load(Ordering::Relaxed)
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

/// Common passwords of at least [`MIN_LENGTH`] characters, lowercased, one per line (source
/// and licence in `common-passwords.LICENSE` beside this file).
const COMMON: &str = include_str!("common-passwords.txt");

/// True when `password` is on the list of common passwords (ignoring case). A scan of the
/// list rather than a set kept in memory: it runs only when a password is set.
pub fn is_common(password: &str) -> bool {
    let lower = password.to_lowercase();
    COMMON.lines().any(|common| common == lower)
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
    let mut chars = password.chars();
    let first = chars.next();
    if is_common(password) || chars.all(|c| Some(c) == first) {
        return Err(AppError::validation(
            field,
            "This password is one of the most common ones, which are guessed first. Choose another (a few unrelated words make a good one).",
        ));
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

    #[tokio::test]
    async fn an_unknown_account_costs_a_verification_too() {
        let hashing = Hashing::default();
        assert!(!hashing.verify("guess", None).await.unwrap());
        assert_eq!(hashing.verifications(), 1, "the dummy hash was verified");
        let real = hash_blocking("correct horse").unwrap();
        assert!(hashing.verify("correct horse", Some(real)).await.unwrap());
        assert_eq!(hashing.verifications(), 2);
    }

    #[test]
    fn rules() {
        assert!(validate("password", "short", "bob").is_err());
        assert!(validate("password", "alice-alice", "alice-alice").is_err());
        assert!(validate("password", &"x".repeat(2000), "bob").is_err());
        assert!(validate("password", "        ", "bob").is_err());
        assert!(validate("password", "längeres passwort", "bob").is_ok());
    }

    #[test]
    fn common_passwords_are_refused() {
        for weak in ["12345678", "password", "Password1", "QWERTYUIOP", "iloveyou", "zzzzzzzzzz"] {
            let e = validate("password", weak, "bob").unwrap_err();
            assert!(e.to_string().contains("most common"), "{weak}: {e}");
        }
        assert!(validate("password", "correct horse battery", "bob").is_ok());
        assert!(COMMON.lines().all(|l| l.chars().count() >= MIN_LENGTH && l == l.to_lowercase()));
    }
}
