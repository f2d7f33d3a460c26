//! API tokens: created once (the secret is shown once), stored hashed, revocable.

use chrono::SubsecRound;
use cloudbill_core::{ApiToken, TokenId, TokenRole};
use sha2::{Digest, Sha256};

use crate::{Billing, Hint, Principal, ServiceError};

/// Prefix of every token secret, so leaked tokens are recognisable by scanners.
const TOKEN_PREFIX: &str = "cbt_";

fn hash(secret: &str) -> [u8; 32] {
    Sha256::digest(secret.trim().as_bytes()).into()
}

/// A new token secret: the prefix and 244 random bits from two UUIDv4s (the OS generator).
fn new_secret() -> String {
    format!(
        "{TOKEN_PREFIX}{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    )
}

/// The live (not revoked) token `secret` is, in any domain.
pub(crate) async fn lookup(
    store: &dyn cloudbill_store::TokenStore,
    secret: &str,
) -> Result<Option<ApiToken>, ServiceError> {
    if !secret.trim().starts_with(TOKEN_PREFIX) {
        return Ok(None);
    }
    Ok(store
        .token_by_hash(&hash(secret))
        .await?
        .filter(|t| t.revoked_at.is_none()))
}

/// What a domain token may do in its domain (`None` for a system-admin token, which may do
/// nothing there).
pub(crate) fn principal(token: &ApiToken) -> Option<Principal> {
    match (token.role, token.project) {
        (TokenRole::Admin, _) => Some(Principal::Admin),
        (TokenRole::ProjectMember, project) => Some(Principal::ProjectMember {
            projects: project.into_iter().collect(),
        }),
        (TokenRole::SystemAdmin, _) => None,
    }
}

impl Billing {
    /// Creates a token (admin only) and returns it with its secret, which is not stored and
    /// cannot be shown again. A project-member token needs a project.
    pub async fn create_token(
        &self,
        p: &Principal,
        role: TokenRole,
        project: Option<&str>,
        label: &str,
    ) -> Result<(ApiToken, String), ServiceError> {
        p.require_admin("create API tokens")?;
        let project = match (role, project) {
            (TokenRole::ProjectMember, None) => {
                return Err(
                    ServiceError::Invalid("a project-member token needs a project".into())
                        .with_hint(Hint::NameProject),
                )
            }
            (TokenRole::SystemAdmin, _) => {
                return Err(ServiceError::Forbidden(
                    "a system-admin token is made by the operator: `cloudbill token create --role system-admin`"
                        .into(),
                ))
            }
            (TokenRole::Admin, Some(_)) => {
                return Err(
                    ServiceError::Invalid("an admin token covers the whole domain".into())
                        .with_hint(Hint::DropProject),
                )
            }
            (_, Some(key)) => Some(self.project(p, key).await?.id),
            (_, None) => None,
        };
        self.store_token(role, project, label).await
    }

    /// Stores a new token of this domain (its access already decided by the caller) and
    /// returns it with its secret, which only its hash is kept of.
    pub(crate) async fn store_token(
        &self,
        role: TokenRole,
        project: Option<cloudbill_core::ProjectId>,
        label: &str,
    ) -> Result<(ApiToken, String), ServiceError> {
        let secret = new_secret();
        let token = ApiToken {
            id: TokenId::new(),
            domain: self.domain_id(),
            role,
            project,
            label: label.trim().to_owned(),
            created_at: self.now().trunc_subsecs(0),
            revoked_at: None,
        };
        self.token_store()
            .create_token(&token, &hash(&secret))
            .await?;
        Ok((token, secret))
    }

    /// Every token of the domain (never their secrets; admin only).
    pub async fn tokens(&self, p: &Principal) -> Result<Vec<ApiToken>, ServiceError> {
        p.require_admin("list API tokens")?;
        Ok(self.token_store().tokens(self.domain_id()).await?)
    }

    /// Revokes a token by id (admin only).
    pub async fn revoke_token(&self, p: &Principal, id: &str) -> Result<(), ServiceError> {
        p.require_admin("revoke API tokens")?;
        let id: TokenId = id.parse()?;
        Ok(self
            .token_store()
            .revoke_token(self.domain_id(), id)
            .await?)
    }

    /// The principal a bearer secret stands for in this domain; unknown, revoked,
    /// other-domain and system-admin tokens, and any token while the domain is disabled, are
    /// refused with the same message.
    pub async fn authenticate(&self, secret: &str) -> Result<Principal, ServiceError> {
        let refused = || ServiceError::Unauthenticated("invalid or revoked API token".into());
        let token = lookup(self.token_store(), secret)
            .await?
            .filter(|t| t.domain == self.domain_id())
            .ok_or_else(refused)?;
        if self.domain().await?.disabled_at.is_some() {
            return Err(refused());
        }
        principal(&token).ok_or_else(refused)
    }
}
