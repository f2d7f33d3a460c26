//! The credentials key check and key rotation.

use uuid::Uuid;

use super::dialect::{Arg, Col, Dialect, Run};
use super::SqlStore;
use crate::StoreError;

impl<D: Dialect> SqlStore<D> {
    /// Checks that the store's cipher is the database's key: it must open the sealed
    /// key check, or, in a database from before key checks, one sealed credential. A
    /// database with neither records the key check now, unless `fresh` (a key made up
    /// for a missing key file: the caller writes the file first, then calls
    /// `record_key`). With `fresh`, a database that holds sealed state is
    /// `KeyMissing`.
    pub(crate) async fn check_key(&self, fresh: bool) -> Result<(), StoreError> {
        let check: Option<Vec<u8>> = sqlx::query::<D>("SELECT sealed FROM key_check WHERE id = 1")
            .optional(&self.pool)
            .await?
            .map(|r| r.col("sealed"))
            .transpose()?;
        let credential = sqlx::query::<D>(
            "SELECT id, credentials FROM service_accounts WHERE credentials IS NOT NULL LIMIT 1",
        )
        .optional(&self.pool)
        .await?;
        if fresh {
            return if check.is_some() || credential.is_some() {
                Err(StoreError::KeyMissing(String::new()))
            } else {
                Ok(())
            };
        }
        if let Some(sealed) = check {
            return self
                .cipher
                .open(&sealed, crate::crypto::KEY_CHECK_CONTEXT)
                .map(drop)
                .map_err(|_| StoreError::WrongKey("the key".into()));
        }
        if let Some(row) = credential {
            let id: Uuid = row.col("id")?;
            let blob: Vec<u8> = row.col("credentials")?;
            self.cipher
                .open(&blob, id.as_bytes())
                .map_err(|_| StoreError::WrongKey("the key".into()))?;
        }
        self.record_key().await
    }

    /// Records the key check sealed with the store's cipher (if none is recorded).
    pub(crate) async fn record_key(&self) -> Result<(), StoreError> {
        let sealed = self
            .cipher
            .seal(crate::crypto::KEY_CHECK, crate::crypto::KEY_CHECK_CONTEXT)?;
        sqlx::query::<D>(
            "INSERT INTO key_check (id, sealed) VALUES (1, $1) ON CONFLICT (id) DO NOTHING",
        )
        .arg(sealed)
        .run(&self.pool)
        .await?;
        Ok(())
    }

    /// Re-seals every stored credential, channel secret and the key check with `new`, in one
    /// transaction; returns how many credentials were re-sealed. The store's own
    /// cipher must open them (checked at open).
    pub(crate) async fn reseal(&self, new: &crate::Cipher) -> Result<usize, StoreError> {
        let mut tx = D::write_tx(&self.pool).await?;
        let rows = sqlx::query::<D>(
            "SELECT id, credentials FROM service_accounts WHERE credentials IS NOT NULL",
        )
        .all(&mut *tx)
        .await?;
        for row in &rows {
            let id: Uuid = row.col("id")?;
            let blob: Vec<u8> = row.col("credentials")?;
            let plain = self.cipher.open(&blob, id.as_bytes())?;
            sqlx::query::<D>("UPDATE service_accounts SET credentials = $1 WHERE id = $2")
                .arg(new.seal(&plain, id.as_bytes())?)
                .arg(id)
                .run(&mut *tx)
                .await?;
        }
        // Channel secrets (webhook signing secrets, Slack URLs, SMTP passwords) likewise.
        let channels = sqlx::query::<D>("SELECT id, secret FROM channels WHERE secret IS NOT NULL")
            .all(&mut *tx)
            .await?;
        for row in &channels {
            let id: Uuid = row.col("id")?;
            let blob: Vec<u8> = row.col("secret")?;
            let plain = self.cipher.open(&blob, id.as_bytes())?;
            sqlx::query::<D>("UPDATE channels SET secret = $1 WHERE id = $2")
                .arg(new.seal(&plain, id.as_bytes())?)
                .arg(id)
                .run(&mut *tx)
                .await?;
        }
        sqlx::query::<D>("DELETE FROM key_check")
            .run(&mut *tx)
            .await?;
        sqlx::query::<D>("INSERT INTO key_check (id, sealed) VALUES (1, $1)")
            .arg(new.seal(crate::crypto::KEY_CHECK, crate::crypto::KEY_CHECK_CONTEXT)?)
            .run(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(rows.len() + channels.len())
    }
}
