//! API tokens (hashes only).

use async_trait::async_trait;
use chrono::Utc;
use cloudbill_core::{ApiToken, DomainId, TokenId};

use super::dialect::{Arg, Dialect, Run};
use super::rows::{conflict_or, not_found, token_from};
use super::SqlStore;
use crate::StoreError;

#[async_trait]
impl<D: Dialect> crate::TokenStore for SqlStore<D> {
    async fn create_token(&self, token: &ApiToken, hash: &[u8; 32]) -> Result<(), StoreError> {
        sqlx::query::<D>(
            "INSERT INTO api_tokens (id, domain_id, token_hash, role, project_id, label, created_at, revoked_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .arg(token.id.as_uuid())
        .arg(token.domain.as_uuid())
        .arg(hash.to_vec())
        .arg(token.role.as_str())
        .arg(token.project.map(|p| p.as_uuid()))
        .arg(token.label.as_str())
        .arg(token.created_at)
        .arg(token.revoked_at)
        .run(&self.pool)
        .await
        .map_err(|e| conflict_or(e, StoreError::Conflict("token already exists".into())))?;
        Ok(())
    }

    async fn tokens(&self, domain: DomainId) -> Result<Vec<ApiToken>, StoreError> {
        let rows = sqlx::query::<D>(
            "SELECT id, domain_id, role, project_id, label, created_at, revoked_at FROM api_tokens \
             WHERE domain_id = $1 ORDER BY created_at DESC, id DESC",
        )
        .arg(domain.as_uuid())
        .all(&self.pool)
        .await?;
        rows.iter().map(token_from).collect()
    }

    async fn revoke_token(&self, domain: DomainId, id: TokenId) -> Result<(), StoreError> {
        let found =
            sqlx::query::<D>("SELECT 1 AS one FROM api_tokens WHERE id = $1 AND domain_id = $2")
                .arg(id.as_uuid())
                .arg(domain.as_uuid())
                .optional(&self.pool)
                .await?;
        if found.is_none() {
            return Err(not_found("token", id));
        }
        sqlx::query::<D>(
            "UPDATE api_tokens SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL",
        )
        .arg(Utc::now())
        .arg(id.as_uuid())
        .run(&self.pool)
        .await?;
        Ok(())
    }

    async fn token_by_hash(&self, hash: &[u8; 32]) -> Result<Option<ApiToken>, StoreError> {
        let row = sqlx::query::<D>(
            "SELECT id, domain_id, role, project_id, label, created_at, revoked_at FROM api_tokens \
             WHERE token_hash = $1",
        )
        .arg(hash.to_vec())
        .optional(&self.pool)
        .await?;
        row.as_ref().map(token_from).transpose()
    }
}
