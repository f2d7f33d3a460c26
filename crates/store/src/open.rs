//! Opening a store from a database URL.

use std::path::PathBuf;
use std::sync::Arc;

use zeroize::Zeroizing;

use crate::{Cipher, MemoryStore, Store, StoreError};

/// Where cloudbill keeps its default database and key file: `$XDG_DATA_HOME/cloudbill`, else
/// `~/.local/share/cloudbill`, else `./cloudbill`. The CLI and the server share it.
pub fn default_data_dir() -> PathBuf {
    std::env::var_os("XDG_DATA_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local").join("share")))
        .unwrap_or_else(|| PathBuf::from("."))
        .join("cloudbill")
}

/// How to open a store.
#[derive(Debug, Clone, Default)]
pub struct OpenOptions {
    /// `sqlite://PATH`, `postgres://…` (or `postgresql://…`), or `memory:`.
    pub url: String,
    /// The 32-byte credentials key as 64 hex digits (from `CLOUDBILL_SECRET_KEY`); when `None`,
    /// a key file is used: `PATH.key` beside a SQLite file, `secret.key` in `key_dir` otherwise.
    pub secret_key: Option<Zeroizing<String>>,
    /// Where the key file lives for databases that are not a local file.
    pub key_dir: Option<PathBuf>,
}

/// Opens the store `options.url` names, creating and migrating it as needed.
pub async fn open(options: &OpenOptions) -> Result<Arc<dyn Store>, StoreError> {
    let url = options.url.trim();
    let explicit = options
        .secret_key
        .as_ref()
        .map(|k| Cipher::from_hex(k))
        .transpose()?;
    if url == "memory:" {
        return Ok(Arc::new(MemoryStore::new()));
    }
    #[cfg(feature = "sqlite")]
    if url.starts_with("sqlite:") {
        let cipher = match explicit {
            Some(c) => c,
            None => {
                let path = sqlx::sqlite::SqliteConnectOptions::from_str(url)?
                    .get_filename()
                    .to_path_buf();
                Cipher::load_or_create(&crate::SqliteStore::default_key_path(&path))?
            }
        };
        return Ok(Arc::new(crate::SqliteStore::open(url, cipher).await?));
    }
    #[cfg(feature = "postgres")]
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        let cipher = match explicit {
            Some(c) => c,
            None => {
                let dir = options.key_dir.clone().ok_or_else(|| {
                    StoreError::Crypto(format!(
                        "no credentials key: set {} (64 hex digits) or give a data directory",
                        crate::SECRET_KEY_ENV
                    ))
                })?;
                Cipher::load_or_create(&dir.join("secret.key"))?
            }
        };
        return Ok(Arc::new(crate::PgStore::open(url, None, cipher).await?));
    }
    drop(explicit);
    Err(StoreError::Url(url.to_owned()))
}

#[cfg(feature = "sqlite")]
use std::str::FromStr;
