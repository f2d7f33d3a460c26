//! API tokens: who may call the server, as what.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::{DomainId, ProjectId, TokenId, ValidationError};

/// What a token may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TokenRole {
    /// Everything in the domain.
    Admin,
    /// Read-only billing of one project.
    ProjectMember,
    /// Creates, lists, disables and enables domains; reads no billing data of any domain.
    SystemAdmin,
}

impl TokenRole {
    /// `admin` or `project-member`.
    pub fn as_str(self) -> &'static str {
        match self {
            TokenRole::Admin => "admin",
            TokenRole::ProjectMember => "project-member",
            TokenRole::SystemAdmin => "system-admin",
        }
    }
}

impl std::str::FromStr for TokenRole {
    type Err = ValidationError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "admin" => Ok(TokenRole::Admin),
            "project-member" | "project_member" | "member" => Ok(TokenRole::ProjectMember),
            "system-admin" | "system_admin" => Ok(TokenRole::SystemAdmin),
            _ => Err(ValidationError::Unknown {
                what: "token role",
                value: s.to_owned(),
                expected: "admin, project-member, system-admin",
            }),
        }
    }
}

/// A stored API token (the secret itself is never stored, only its SHA-256).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiToken {
    /// Identifier (shown by `token list`, used by `token revoke`).
    pub id: TokenId,
    /// Owning domain.
    pub domain: DomainId,
    /// Role.
    pub role: TokenRole,
    /// The project of a project-member token.
    pub project: Option<ProjectId>,
    /// A label to recognise it by.
    pub label: String,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Revocation time, once revoked.
    pub revoked_at: Option<DateTime<Utc>>,
}
