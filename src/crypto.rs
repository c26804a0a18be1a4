//! Secrets at rest and random tokens.
//!
//! Media server tokens, SMTP passwords and OIDC client secrets are stored sealed with
//! AES-256-GCM under the data-encryption key. Each sealed value is bound to its purpose (the
//! associated data), so a ciphertext copied from one column into another does not open.

use aes_gcm::aead::rand_core::RngCore as _;
use aes_gcm::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use aes_gcm::{Aes256Gcm, Key, Nonce};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};

/// Version tag of the sealed format, so a future format can sit beside this one.
const SEALED_PREFIX: &str = "v1.";
const NONCE_LEN: usize = 12;

/// Encrypts and decrypts secrets stored in the database.
#[derive(Clone)]
pub struct SecretBox {
    cipher: Aes256Gcm,
}

/// A sealed value that does not open: wrong key, wrong purpose, or damaged.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("a stored secret could not be decrypted (was the encryption key changed?)")]
pub struct OpenError;

impl SecretBox {
    pub fn new(key: &[u8; 32]) -> Self {
        Self { cipher: Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(key)) }
    }

    /// Encrypts `plaintext` for `purpose` (e.g. `"servers.token"`); the result is ASCII.
    pub fn seal(&self, purpose: &str, plaintext: &str) -> String {
        let nonce = Aes256Gcm::generate_nonce(&mut OsRng);
        let ciphertext = self
            .cipher
            .encrypt(&nonce, Payload { msg: plaintext.as_bytes(), aad: purpose.as_bytes() })
            .expect("AES-GCM encryption of an in-memory buffer cannot fail");
        let mut blob = Vec::with_capacity(NONCE_LEN + ciphertext.len());
        blob.extend_from_slice(&nonce);
        blob.extend_from_slice(&ciphertext);
        format!("{SEALED_PREFIX}{}", URL_SAFE_NO_PAD.encode(blob))
    }

    /// Decrypts a value sealed by [`SecretBox::seal`] for the same purpose.
    pub fn open(&self, purpose: &str, sealed: &str) -> Result<String, OpenError> {
        let blob = sealed
            .strip_prefix(SEALED_PREFIX)
            .and_then(|b64| URL_SAFE_NO_PAD.decode(b64).ok())
            .filter(|blob| blob.len() > NONCE_LEN)
            .ok_or(OpenError)?;
        let (nonce, ciphertext) = blob.split_at(NONCE_LEN);
        let plaintext = self
            .cipher
            .decrypt(Nonce::from_slice(nonce), Payload { msg: ciphertext, aad: purpose.as_bytes() })
            .map_err(|_| OpenError)?;
        String::from_utf8(plaintext).map_err(|_| OpenError)
    }
}

/// `N` bytes from the operating system's CSPRNG.
pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    OsRng.fill_bytes(&mut bytes);
    bytes
}

/// A URL-safe random token carrying 256 bits (session tokens, API keys, CSRF tokens).
pub fn random_token() -> String {
    URL_SAFE_NO_PAD.encode(random_bytes::<32>())
}

/// Hex SHA-256, for storing high-entropy tokens: a database leak must not leak live tokens,
/// and a slow hash buys nothing for 256 random bits.
pub fn sha256_hex(data: &[u8]) -> String {
    use std::fmt::Write as _;
    Sha256::digest(data).iter().fold(String::with_capacity(64), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// Compares two byte strings in time independent of where they differ.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_and_open_round_trip() {
        let sb = SecretBox::new(&[7; 32]);
        let sealed = sb.seal("servers.token", "plex-token-ü");
        assert!(sealed.starts_with("v1.") && sealed.is_ascii());
        assert!(!sealed.contains("plex-token"));
        assert_eq!(sb.open("servers.token", &sealed).unwrap(), "plex-token-ü");
        // A fresh nonce every time.
        assert_ne!(sealed, sb.seal("servers.token", "plex-token-ü"));
    }

    #[test]
    fn open_refuses_wrong_key_purpose_or_damage() {
        let sb = SecretBox::new(&[7; 32]);
        let sealed = sb.seal("servers.token", "secret");
        assert_eq!(SecretBox::new(&[8; 32]).open("servers.token", &sealed), Err(OpenError));
        assert_eq!(sb.open("smtp.password", &sealed), Err(OpenError));
        let mut damaged = sealed.clone().into_bytes();
        let last = damaged.len() - 1;
        damaged[last] = if damaged[last] == b'A' { b'B' } else { b'A' };
        assert_eq!(sb.open("servers.token", &String::from_utf8(damaged).unwrap()), Err(OpenError));
        assert_eq!(sb.open("servers.token", "plaintext"), Err(OpenError));
        assert_eq!(sb.open("servers.token", "v1."), Err(OpenError));
    }

    #[test]
    fn tokens_and_hashes() {
        let a = random_token();
        assert_eq!(a.len(), 43);
        assert_ne!(a, random_token());
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
    }
}
