//! API tokens (hashes only).

/// `TokenStore` for an SQL adapter.
macro_rules! sql_tokens {
    ($store:ty, $db:ty) => {
        #[async_trait]
        impl crate::TokenStore for $store {
            async fn create_token(&self, token: &ApiToken, hash: &[u8; 32]) -> Result<(), StoreError> {
                sqlx::query(
                    "INSERT INTO api_tokens (id, domain_id, token_hash, role, project_id, label, created_at, revoked_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                )
                .bind(token.id.as_uuid())
                .bind(token.domain.as_uuid())
                .bind(hash.to_vec())
                .bind(token.role.as_str())
                .bind(token.project.map(|p| p.as_uuid()))
                .bind(token.label.as_str())
                .bind(token.created_at)
                .bind(token.revoked_at)
                .execute(&self.pool)
                .await
                .map_err(|e| conflict_or(e, "token already exists".into()))?;
                Ok(())
            }

            async fn tokens(&self, domain: DomainId) -> Result<Vec<ApiToken>, StoreError> {
                let rows = sqlx::query(
                    "SELECT id, domain_id, role, project_id, label, created_at, revoked_at FROM api_tokens \
                     WHERE domain_id = $1 ORDER BY created_at DESC, id DESC",
                )
                .bind(domain.as_uuid())
                .fetch_all(&self.pool)
                .await?;
                rows.iter().map(token_from).collect()
            }

            async fn revoke_token(&self, domain: DomainId, id: TokenId) -> Result<(), StoreError> {
                let found = sqlx::query("SELECT 1 AS one FROM api_tokens WHERE id = $1 AND domain_id = $2")
                    .bind(id.as_uuid())
                    .bind(domain.as_uuid())
                    .fetch_optional(&self.pool)
                    .await?;
                if found.is_none() {
                    return Err(not_found("token", id));
                }
                sqlx::query("UPDATE api_tokens SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL")
                    .bind(Utc::now())
                    .bind(id.as_uuid())
                    .execute(&self.pool)
                    .await?;
                Ok(())
            }

            async fn token_by_hash(&self, hash: &[u8; 32]) -> Result<Option<ApiToken>, StoreError> {
                let row = sqlx::query(
                    "SELECT id, domain_id, role, project_id, label, created_at, revoked_at FROM api_tokens \
                     WHERE token_hash = $1",
                )
                .bind(hash.to_vec())
                .fetch_optional(&self.pool)
                .await?;
                row.as_ref().map(token_from).transpose()
            }
        }
    };
}

pub(crate) use sql_tokens;
