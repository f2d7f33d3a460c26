//! Sealing credentials at rest with XChaCha20-Poly1305.

use std::fmt;
use std::io::Write;
use std::path::Path;

use chacha20poly1305::aead::{Aead, KeyInit, OsRng, Payload};
use chacha20poly1305::{AeadCore, Key, XChaCha20Poly1305, XNonce};
use zeroize::Zeroizing;

use crate::StoreError;

/// The environment variable that may hold the 32-byte key as 64 hex digits.
pub const SECRET_KEY_ENV: &str = "CLOUDBILL_SECRET_KEY";

const NONCE_LEN: usize = 24;

/// The value sealed as a database's key check.
#[cfg_attr(not(any(feature = "sqlite", feature = "postgres")), allow(dead_code))]
pub(crate) const KEY_CHECK: &[u8] = b"cloudbill credentials key check v1";
/// The associated data of the key check (no account id has this form).
#[cfg_attr(not(any(feature = "sqlite", feature = "postgres")), allow(dead_code))]
pub(crate) const KEY_CHECK_CONTEXT: &[u8] = b"cloudbill:key-check";

/// Seals and opens credential blobs. The associated data binds a blob to its row (the account
/// id), so a ciphertext copied onto another account does not open.
#[derive(Clone)]
pub struct Cipher {
    aead: XChaCha20Poly1305,
}

impl fmt::Debug for Cipher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Cipher(***)")
    }
}

impl Cipher {
    /// A cipher with a fresh random key (for in-memory stores and tests).
    pub fn random() -> Self {
        let key = XChaCha20Poly1305::generate_key(&mut OsRng);
        Self {
            aead: XChaCha20Poly1305::new(&key),
        }
    }

    /// A cipher from 64 hex digits.
    pub fn from_hex(hex_key: &str) -> Result<Self, StoreError> {
        let bytes = Zeroizing::new(hex::decode(hex_key.trim()).map_err(|_| {
            StoreError::Crypto(format!("{SECRET_KEY_ENV} must be 64 hex digits (32 bytes)"))
        })?);
        if bytes.len() != 32 {
            return Err(StoreError::Crypto(format!(
                "{SECRET_KEY_ENV} must be 64 hex digits (32 bytes), got {} bytes",
                bytes.len()
            )));
        }
        Ok(Self {
            aead: XChaCha20Poly1305::new(Key::from_slice(&bytes)),
        })
    }

    /// Reads the key file at `path`; `Ok(None)` when it does not exist.
    pub fn load(path: &Path) -> Result<Option<Self>, StoreError> {
        match std::fs::read_to_string(path) {
            Ok(text) => Self::from_hex(&text).map(Some).map_err(|_| {
                StoreError::Crypto(format!(
                    "key file {} does not hold 64 hex digits (32 bytes)",
                    path.display()
                ))
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(StoreError::KeyFile {
                path: path.display().to_string(),
                source,
            }),
        }
    }

    /// Writes a new random key to `path` (mode 0600, created: never over an existing file)
    /// and returns it; `Ok(None)` when the file appeared meanwhile (another process made it).
    pub fn create(path: &Path) -> Result<Option<Self>, StoreError> {
        let io_err = |source| StoreError::KeyFile {
            path: path.display().to_string(),
            source,
        };
        if let Some(dir) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(io_err)?;
        }
        let key = XChaCha20Poly1305::generate_key(&mut OsRng);
        let text = Zeroizing::new(hex::encode(key));
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        match options.open(path) {
            Ok(mut file) => {
                file.write_all(text.as_bytes()).map_err(io_err)?;
                file.sync_all().map_err(io_err)?;
                Ok(Some(Self {
                    aead: XChaCha20Poly1305::new(&key),
                }))
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(None),
            Err(e) => Err(io_err(e)),
        }
    }

    /// Seals `plaintext`, bound to `context` (the row id); returns nonce || ciphertext.
    pub fn seal(&self, plaintext: &[u8], context: &[u8]) -> Result<Vec<u8>, StoreError> {
        let nonce = XChaCha20Poly1305::generate_nonce(&mut OsRng);
        let sealed = self
            .aead
            .encrypt(
                &nonce,
                Payload {
                    msg: plaintext,
                    aad: context,
                },
            )
            .map_err(|_| StoreError::Crypto("sealing failed".into()))?;
        let mut out = Vec::with_capacity(NONCE_LEN + sealed.len());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        Ok(out)
    }

    /// Opens a blob made by [`Cipher::seal`] with the same `context`.
    pub fn open(&self, blob: &[u8], context: &[u8]) -> Result<Zeroizing<Vec<u8>>, StoreError> {
        if blob.len() < NONCE_LEN {
            return Err(StoreError::Crypto(
                "sealed credentials are truncated".into(),
            ));
        }
        let (nonce, sealed) = blob.split_at(NONCE_LEN);
        self.aead
            .decrypt(
                XNonce::from_slice(nonce),
                Payload {
                    msg: sealed,
                    aad: context,
                },
            )
            .map(Zeroizing::new)
            .map_err(|_| {
                StoreError::Crypto(format!(
                    "stored credentials cannot be opened with this key (was {SECRET_KEY_ENV} or the key file changed?)"
                ))
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_open_round_trip_and_context_binding() {
        let c = Cipher::random();
        let blob = c.seal(b"secret", b"row-1").unwrap();
        assert!(!blob.windows(6).any(|w| w == b"secret"));
        assert_eq!(&*c.open(&blob, b"row-1").unwrap(), b"secret");
        assert!(c.open(&blob, b"row-2").is_err());
        assert!(Cipher::random().open(&blob, b"row-1").is_err());
    }

    #[test]
    fn key_file_is_created_private_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub").join("k.key");
        assert!(Cipher::load(&path).unwrap().is_none());
        let a = Cipher::create(&path).unwrap().unwrap();
        assert!(
            Cipher::create(&path).unwrap().is_none(),
            "never over an existing file"
        );
        let b = Cipher::load(&path).unwrap().unwrap();
        let blob = a.seal(b"x", b"").unwrap();
        assert_eq!(&*b.open(&blob, b"").unwrap(), b"x");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn bad_hex_key_is_explained() {
        let err = Cipher::from_hex("abcd").unwrap_err().to_string();
        assert!(err.contains("64 hex digits"), "{err}");
    }
}
