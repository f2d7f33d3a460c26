//! The PostgreSQL adapter, for a team server.

use std::str::FromStr;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::PgPool;

use crate::sql::SqlStore;
use crate::Cipher;

/// A store in a PostgreSQL database.
pub type PgStore = SqlStore<sqlx::Postgres>;

impl SqlStore<sqlx::Postgres> {
    /// Connects to `url` and applies migrations. With `schema`, every table lives in that
    /// schema (created if missing), which lets tests run side by side in one database.
    pub async fn open(
        url: &str,
        schema: Option<&str>,
        cipher: Cipher,
    ) -> Result<Self, crate::StoreError> {
        Self::open_with(url, schema, cipher, false).await
    }

    /// [`PgStore::open`]; with `fresh_key` the key is a new one (see `check_key`).
    pub(crate) async fn open_with(
        url: &str,
        schema: Option<&str>,
        cipher: Cipher,
        fresh_key: bool,
    ) -> Result<Self, crate::StoreError> {
        let mut options = PgConnectOptions::from_str(url)?;
        if let Some(schema) = schema {
            if !schema
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_')
            {
                return Err(crate::StoreError::Url(format!("schema {schema:?}")));
            }
            let admin = PgPoolOptions::new()
                .max_connections(1)
                .connect_with(options.clone())
                .await?;
            sqlx::query(&format!("CREATE SCHEMA IF NOT EXISTS {schema}"))
                .execute(&admin)
                .await?;
            admin.close().await;
            options = options.options([("search_path", schema)]);
        }
        let pool = PgPoolOptions::new()
            .max_connections(8)
            .connect_with(options)
            .await?;
        sqlx::migrate!("migrations/postgres").run(&pool).await?;
        let store = Self {
            pool,
            cipher,
            path: None,
        };
        store.check_key(fresh_key).await?;
        store.upgrade_segments().await?;
        Ok(store)
    }

    /// The connection pool (for tests that inspect raw rows).
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }
}
