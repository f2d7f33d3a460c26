//! Opening a store from a database URL, with its credentials key.
//!
//! The key comes from `CLOUDBILL_SECRET_KEY` or a key file (`PATH.key` beside a SQLite file,
//! `secret.key` in the data directory for PostgreSQL). A database records a key check sealed
//! with its key, so a wrong key is refused at open, naming where it came from, and a missing
//! key file never leads to a second key for a database that already holds sealed credentials.

// Built without a SQL backend (memory only), the key handling has nothing to open.
#![cfg_attr(
    not(any(feature = "sqlite", feature = "postgres")),
    allow(dead_code, unused_variables)
)]

use std::path::{Path, PathBuf};
use std::sync::Arc;

use zeroize::Zeroizing;

use crate::{Cipher, MemoryStore, Store, StoreError, SECRET_KEY_ENV};

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

/// A database URL fit to print: a password in it is replaced by `***`.
///
/// ```
/// use cloudbill_store::redacted_url;
/// assert_eq!(redacted_url("postgres://app:s3cret@db:5432/billing"), "postgres://app:***@db:5432/billing");
/// assert_eq!(redacted_url("sqlite:///tmp/a.db"), "sqlite:///tmp/a.db");
/// ```
pub fn redacted_url(url: &str) -> String {
    match url::Url::parse(url.trim()) {
        Ok(mut parsed) if parsed.password().is_some() => {
            // A URL that cannot hold a password refuses the change: then none of it is shown.
            if parsed.set_password(Some("***")).is_err() {
                return "***".into();
            }
            parsed.to_string()
        }
        Ok(_) => url.trim().to_owned(),
        // Not a URL: cut anything between "://" and "@", where a password would sit.
        Err(_) => match (url.find("://"), url.rfind('@')) {
            (Some(a), Some(b)) if a + 3 < b => format!("{}***{}", &url[..a + 3], &url[b..]),
            _ => url.to_owned(),
        },
    }
}

/// How to open a store.
#[derive(Debug, Clone)]
pub struct OpenOptions {
    /// `sqlite://PATH`, `postgres://…` (or `postgresql://…`), or `memory:`.
    pub url: String,
    /// The 32-byte credentials key as 64 hex digits (from `CLOUDBILL_SECRET_KEY`); when `None`,
    /// a key file is used: `PATH.key` beside a SQLite file, `secret.key` in `key_dir` otherwise.
    pub secret_key: Option<Zeroizing<String>>,
    /// Where the key file lives for databases that are not a local file.
    pub key_dir: Option<PathBuf>,
    /// Create the database (a SQLite file) and its key file if missing. Commands that only
    /// read set it off: they fail with `NoDatabase` instead of leaving an empty database.
    pub create: bool,
}

impl Default for OpenOptions {
    fn default() -> Self {
        Self {
            url: String::new(),
            secret_key: None,
            key_dir: None,
            create: true,
        }
    }
}

/// Where a key came from, for errors that must name it.
enum KeySource {
    Env,
    File(PathBuf),
}

impl KeySource {
    fn describe(&self) -> String {
        match self {
            KeySource::Env => SECRET_KEY_ENV.to_owned(),
            KeySource::File(p) => format!("the key file {}", p.display()),
        }
    }

    /// Names this source in a key error.
    fn name(&self, err: StoreError) -> StoreError {
        match (err, self) {
            (StoreError::WrongKey(_), _) => StoreError::WrongKey(self.describe()),
            (StoreError::KeyMissing(_), KeySource::File(p)) => {
                StoreError::KeyMissing(p.display().to_string())
            }
            (other, _) => other,
        }
    }
}

/// The explicit key, if `options` has one.
fn explicit_key(options: &OpenOptions) -> Result<Option<Cipher>, StoreError> {
    options
        .secret_key
        .as_ref()
        .map(|k| Cipher::from_hex(k))
        .transpose()
}

/// The file a key rotation writes before it commits, adopted by the next open if the
/// rotation stopped between its commit and the rename.
fn pending_key_path(key_file: &Path) -> PathBuf {
    let mut name = key_file.as_os_str().to_owned();
    name.push(".new");
    PathBuf::from(name)
}

/// The key file of a database that is not a local file.
#[cfg_attr(not(feature = "postgres"), allow(dead_code))]
fn dir_key_path(options: &OpenOptions) -> Result<PathBuf, StoreError> {
    options
        .key_dir
        .as_ref()
        .map(|d| d.join("secret.key"))
        .ok_or_else(|| {
            StoreError::Crypto(format!(
                "no credentials key: set {SECRET_KEY_ENV} (64 hex digits) or give a data directory"
            ))
        })
}

/// Opens the store `options.url` names, creating and migrating it as needed (unless
/// `options.create` is off), and checks its credentials key.
pub async fn open(options: &OpenOptions) -> Result<Arc<dyn Store>, StoreError> {
    let url = options.url.trim();
    let explicit = explicit_key(options)?;
    if url == "memory:" {
        return Ok(Arc::new(MemoryStore::new()));
    }
    #[cfg(feature = "sqlite")]
    if url.starts_with("sqlite:") {
        return Ok(Arc::new(open_sqlite(url, explicit, options.create).await?));
    }
    #[cfg(feature = "postgres")]
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        return Ok(Arc::new(open_postgres(url, explicit, options).await?));
    }
    drop(explicit);
    Err(StoreError::Url(redacted_url(url)))
}

/// Opens with the explicit key, the key file, a rotation's pending key file, or (for a
/// database holding no sealed credentials yet, when `create`) a new key file. `attempt` opens
/// the database with a key and whether it is a fresh one.
async fn with_key<S, F, Fut>(
    explicit: Option<Cipher>,
    key_file: &Path,
    create: bool,
    attempt: F,
) -> Result<S, StoreError>
where
    F: Fn(Cipher, bool) -> Fut,
    Fut: std::future::Future<Output = Result<S, StoreError>>,
{
    if let Some(cipher) = explicit {
        return attempt(cipher, false)
            .await
            .map_err(|e| KeySource::Env.name(e));
    }
    let source = KeySource::File(key_file.to_path_buf());
    if let Some(cipher) = Cipher::load(key_file)? {
        return match attempt(cipher, false).await {
            Err(StoreError::WrongKey(_)) => adopt_pending(key_file, &source, &attempt).await,
            other => other.map_err(|e| source.name(e)),
        };
    }
    let pending = pending_key_path(key_file);
    if pending.exists() {
        return adopt_pending(key_file, &source, &attempt).await;
    }
    // No key file. Never make one for a database that already holds sealed state: probe
    // with a throwaway key first (nothing is written with it).
    let probe = attempt(Cipher::random(), true)
        .await
        .map_err(|e| source.name(e))?;
    if !create {
        return Ok(probe);
    }
    drop(probe);
    let cipher = match Cipher::create(key_file)? {
        Some(c) => c,
        // Another process made the file meanwhile: use theirs.
        None => Cipher::load(key_file)?
            .ok_or_else(|| StoreError::KeyMissing(key_file.display().to_string()))?,
    };
    attempt(cipher, false).await.map_err(|e| source.name(e))
}

/// A rotation that committed but did not rename its new key file: the pending key opens the
/// database, so it becomes the key file.
async fn adopt_pending<S, F, Fut>(
    key_file: &Path,
    source: &KeySource,
    attempt: &F,
) -> Result<S, StoreError>
where
    F: Fn(Cipher, bool) -> Fut,
    Fut: std::future::Future<Output = Result<S, StoreError>>,
{
    let pending = pending_key_path(key_file);
    let Some(cipher) = Cipher::load(&pending)? else {
        return Err(match Cipher::load(key_file)? {
            Some(_) => StoreError::WrongKey(source.describe()),
            None => StoreError::KeyMissing(key_file.display().to_string()),
        });
    };
    let store = attempt(cipher, false).await.map_err(|e| source.name(e))?;
    std::fs::rename(&pending, key_file).map_err(|e| StoreError::KeyFile {
        path: key_file.display().to_string(),
        source: e,
    })?;
    Ok(store)
}

#[cfg(feature = "sqlite")]
async fn open_sqlite(
    url: &str,
    explicit: Option<Cipher>,
    create: bool,
) -> Result<crate::SqliteStore, StoreError> {
    let path = sqlx::sqlite::SqliteConnectOptions::from_str(url)?
        .get_filename()
        .to_path_buf();
    if !create && !path.exists() {
        return Err(StoreError::NoDatabase(path.display().to_string()));
    }
    let key_file = crate::SqliteStore::default_key_path(&path);
    with_key(explicit, &key_file, create, |cipher, fresh| {
        crate::SqliteStore::open_with(url, cipher, create, fresh)
    })
    .await
}

#[cfg(feature = "postgres")]
async fn open_postgres(
    url: &str,
    explicit: Option<Cipher>,
    options: &OpenOptions,
) -> Result<crate::PgStore, StoreError> {
    let key_file = match &explicit {
        Some(_) => PathBuf::new(),
        None => dir_key_path(options)?,
    };
    with_key(explicit, &key_file, options.create, |cipher, fresh| {
        crate::PgStore::open_with(url, None, cipher, fresh)
    })
    .await
}

/// What [`rotate_key`] did.
#[derive(Debug, Clone)]
pub struct RotatedKey {
    /// Credentials re-sealed.
    pub credentials: usize,
    /// Where the new key is: the key file (replaced), or the file given for a key that came
    /// from `CLOUDBILL_SECRET_KEY` (the operator moves it into the variable).
    pub key_file: PathBuf,
}

/// Re-seals every credential of the database with a new random key in one transaction.
/// With a key file, the new key replaces it (written beside it first as `….new`, renamed
/// after the commit; an interrupted rotation is finished by the next open). With
/// `CLOUDBILL_SECRET_KEY`, `new_key_file` must name where to write the new key (mode 0600,
/// never over an existing file): the old key stops working when this returns.
pub async fn rotate_key(
    options: &OpenOptions,
    new_key_file: Option<&Path>,
) -> Result<RotatedKey, StoreError> {
    let url = options.url.trim();
    let explicit = explicit_key(options)?;
    let key_file = match (&explicit, new_key_file) {
        (Some(_), Some(target)) => target.to_path_buf(),
        (Some(_), None) => {
            return Err(StoreError::Crypto(format!(
            "the key comes from {SECRET_KEY_ENV}: give --new-key-file PATH to receive the new key"
        )))
        }
        (None, _) => PathBuf::new(), // set below, per backend
    };
    let writes_env_key = explicit.is_some();
    let existing = OpenOptions {
        create: false,
        ..options.clone()
    };
    #[cfg(feature = "sqlite")]
    if url.starts_with("sqlite:") {
        let store = open_sqlite(url, explicit, false).await?;
        let file = if writes_env_key {
            key_file
        } else {
            crate::SqliteStore::default_key_path(store.path())
        };
        return reseal_into(&store, file, writes_env_key).await;
    }
    #[cfg(feature = "postgres")]
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        let file = if writes_env_key {
            key_file
        } else {
            dir_key_path(&existing)?
        };
        let store = open_postgres(url, explicit, &existing).await?;
        return reseal_into(&store, file, writes_env_key).await;
    }
    drop((explicit, key_file, existing));
    Err(StoreError::Url(format!(
        "{} (only SQLite and PostgreSQL databases keep credentials)",
        redacted_url(url)
    )))
}

/// The second half of [`rotate_key`] on an open SQL store: makes the new key (staged as
/// `….new` beside a key file), re-seals everything with it in one transaction, then moves the
/// staged key into place.
#[cfg(any(feature = "sqlite", feature = "postgres"))]
async fn reseal_into<D: crate::sql::dialect::Dialect>(
    store: &crate::sql::SqlStore<D>,
    key_file: PathBuf,
    writes_env_key: bool,
) -> Result<RotatedKey, StoreError> {
    let staged = if writes_env_key {
        key_file.clone()
    } else {
        pending_key_path(&key_file)
    };
    if !writes_env_key {
        // A pending file left by a rotation that failed before its commit (one that
        // committed was adopted when the store opened above).
        let _ = std::fs::remove_file(&staged);
    }
    let new = Cipher::create(&staged)?.ok_or_else(|| StoreError::KeyFile {
        path: staged.display().to_string(),
        source: std::io::Error::new(std::io::ErrorKind::AlreadyExists, "file exists"),
    })?;
    let credentials = store.reseal(&new).await?;
    if !writes_env_key {
        std::fs::rename(&staged, &key_file).map_err(|source| StoreError::KeyFile {
            path: key_file.display().to_string(),
            source,
        })?;
    }
    Ok(RotatedKey {
        credentials,
        key_file,
    })
}

#[cfg(feature = "sqlite")]
use std::str::FromStr;
