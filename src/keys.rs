//! The two keys Streamwarden needs: Rocket's cookie key and the data-encryption key.
//!
//! Both are generated on first start into the data directory (mode 0600) unless the
//! environment provides them, and reused afterwards. Nobody is ever asked to paste a key.

use std::fs::{self, OpenOptions, Permissions};
use std::io::{ErrorKind, Write as _};
use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
use std::path::Path;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use crate::config::{Config, KeyMaterial};
use crate::crypto::random_bytes;
use crate::startup::StartupError;

pub const COOKIE_KEY_FILE: &str = "cookie.key";
pub const ENCRYPTION_KEY_FILE: &str = "encryption.key";

/// The keys in use, from the environment or the data directory.
#[derive(Clone)]
pub struct Keys {
    /// Signs and encrypts Rocket's private cookies (64 bytes).
    pub cookie: Vec<u8>,
    /// Encrypts secrets stored in the database (AES-256).
    pub encryption: [u8; 32],
}

impl Keys {
    /// Takes each key from the configuration, else from its file, else generates the file.
    pub fn load_or_create(config: &Config) -> Result<Self, StartupError> {
        let cookie = match &config.secret_key {
            Some(key) => key.bytes().to_vec(),
            None => key_file(&config.data_dir.join(COOKIE_KEY_FILE), 64)?,
        };
        let encryption = match &config.encryption_key {
            Some(key) => key.bytes().to_vec(),
            None => key_file(&config.data_dir.join(ENCRYPTION_KEY_FILE), 32)?,
        };
        let encryption = encryption.try_into().expect("key_file and config check the length");
        Ok(Self { cookie, encryption })
    }

    /// Fixed keys for tests, so no files are written.
    pub fn for_tests() -> Self {
        Self { cookie: vec![42; 64], encryption: [42; 32] }
    }

    pub fn cookie_material(&self) -> KeyMaterial {
        KeyMaterial::new(self.cookie.clone())
    }
}

/// Reads a base64 key of `len` bytes from `path`, creating it first if it does not exist.
fn key_file(path: &Path, len: usize) -> Result<Vec<u8>, StartupError> {
    let fail = |what: &str, e: &dyn std::fmt::Display| {
        StartupError(format!("cannot {what} key file {}: {e}", path.display()))
    };
    match OpenOptions::new().write(true).create_new(true).mode(0o600).open(path) {
        Ok(mut file) => {
            let key = match len {
                32 => random_bytes::<32>().to_vec(),
                64 => random_bytes::<64>().to_vec(),
                _ => unreachable!("only 32 and 64 byte keys exist"),
            };
            writeln!(file, "{}", STANDARD.encode(&key))
                .and_then(|()| file.sync_all())
                .map_err(|e| fail("write", &e))?;
            tracing::info!(path = %path.display(), "generated a new key");
            Ok(key)
        }
        // Created by an earlier start (or a concurrent one): reuse it.
        Err(e) if e.kind() == ErrorKind::AlreadyExists => {
            let text = fs::read_to_string(path).map_err(|e| fail("read", &e))?;
            let key = STANDARD
                .decode(text.trim())
                .ok()
                .filter(|k| k.len() == len)
                .ok_or_else(|| fail("use", &format!("expected {len} bytes in base64")))?;
            let mode = fs::metadata(path).map_err(|e| fail("read", &e))?.permissions().mode();
            if mode & 0o077 != 0 {
                tracing::warn!(path = %path.display(), mode = format!("{:o}", mode & 0o777), "key file was readable by others; restricting it to 0600");
                fs::set_permissions(path, Permissions::from_mode(0o600))
                    .map_err(|e| fail("protect", &e))?;
            }
            Ok(key)
        }
        Err(e) => Err(fail("create", &e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_once_then_reused_with_mode_0600() {
        let dir = tempfile::tempdir().unwrap();
        let config = Config::for_tests(dir.path());
        let first = Keys::load_or_create(&config).unwrap();
        let second = Keys::load_or_create(&config).unwrap();
        assert_eq!(first.cookie, second.cookie);
        assert_eq!(first.encryption, second.encryption);
        assert_eq!(first.cookie.len(), 64);
        assert_ne!(first.encryption, [0; 32]);
        for name in [COOKIE_KEY_FILE, ENCRYPTION_KEY_FILE] {
            let mode = fs::metadata(dir.path().join(name)).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600, "{name}");
        }
    }

    #[test]
    fn environment_keys_win_and_write_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let mut config = Config::for_tests(dir.path());
        config.secret_key = Some(KeyMaterial::new(vec![1; 64]));
        config.encryption_key = Some(KeyMaterial::new(vec![2; 32]));
        let keys = Keys::load_or_create(&config).unwrap();
        assert_eq!(keys.cookie, vec![1; 64]);
        assert_eq!(keys.encryption, [2; 32]);
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn damaged_key_file_is_refused_and_loose_modes_are_tightened() {
        let dir = tempfile::tempdir().unwrap();
        let config = Config::for_tests(dir.path());
        let path = dir.path().join(ENCRYPTION_KEY_FILE);
        fs::write(&path, "not base64!").unwrap();
        let err = Keys::load_or_create(&config).err().unwrap();
        assert!(err.0.contains(ENCRYPTION_KEY_FILE), "{err}");

        fs::write(&path, STANDARD.encode([9u8; 32])).unwrap();
        fs::set_permissions(&path, Permissions::from_mode(0o644)).unwrap();
        assert_eq!(Keys::load_or_create(&config).unwrap().encryption, [9; 32]);
        assert_eq!(fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
    }
}
