//! The SQLite adapter: the embedded default, one file created on first use, WAL journal.

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};

/// Rows a SQLite query reads ahead of its consumer.
const SQLITE_ROWS_AHEAD: usize = 4;

use crate::sql::SqlStore;
use crate::Cipher;

/// A store in one SQLite file.
pub type SqliteStore = SqlStore<sqlx::Sqlite>;

impl SqlStore<sqlx::Sqlite> {
    /// Opens (creating if needed) the database at `url` (`sqlite://PATH`), applies migrations
    /// and checks that `cipher` is the database's key (recording it in a new database).
    pub async fn open(url: &str, cipher: Cipher) -> Result<Self, crate::StoreError> {
        Self::open_with(url, cipher, true, false).await
    }

    /// [`SqliteStore::open`]; without `create` a missing file is `NoDatabase`; with `fresh_key`
    /// the key is a new one (see `check_key`). A new file is created with mode 0600.
    pub(crate) async fn open_with(
        url: &str,
        cipher: Cipher,
        create: bool,
        fresh_key: bool,
    ) -> Result<Self, crate::StoreError> {
        let options = SqliteConnectOptions::from_str(url)?;
        let path = options.get_filename().to_path_buf();
        let in_memory = path.as_os_str().is_empty() || path.as_os_str() == ":memory:";
        if !in_memory && !path.exists() {
            if !create {
                return Err(crate::StoreError::NoDatabase(path.display().to_string()));
            }
            create_private(&path)?;
        }
        let options = options
            .create_if_missing(create)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(30))
            .page_size(65536)
            // Rows a query's worker reads ahead of its reader (sqlx's default: 50). Segments
            // are blobs of up to tens of megabytes; 50 of them read ahead held a gigabyte.
            .row_buffer_size(SQLITE_ROWS_AHEAD);
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options)
            .await?;
        sqlx::migrate!("migrations/sqlite").run(&pool).await?;
        let store = Self {
            pool,
            cipher,
            path: Some(path),
        };
        store.check_key(fresh_key).await?;
        store.upgrade_segments().await?;
        Ok(store)
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        self.path.as_deref().unwrap_or(Path::new(":memory:"))
    }

    /// The key file that sits beside a database file when no key is given: `PATH.key`.
    pub fn default_key_path(db_path: &Path) -> PathBuf {
        let mut name = db_path.as_os_str().to_owned();
        name.push(".key");
        PathBuf::from(name)
    }
}

/// Creates an empty database file readable by its owner only (SQLite gives the journal and
/// WAL files the same mode), with its directory.
fn create_private(path: &Path) -> Result<(), crate::StoreError> {
    let io_err = |source| crate::StoreError::KeyFile {
        path: path.display().to_string(),
        source,
    };
    if let Some(dir) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(io_err)?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    match options.open(path) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(io_err(e)),
    }
}
