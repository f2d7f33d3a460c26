//! Billing service accounts, their settings (a provider's, with its secrets) and their project
//! assignment history.

use std::fmt;

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::{AccountId, DomainId, Name, ProjectId, ProviderKind, ValidationError};

/// A client secret (the "Key" of the SpaceONE form).
///
/// It has no `Display`, its `Debug` prints `***`, and its memory is zeroized on drop.
///
/// ```
/// use cloudbill_core::ClientSecret;
/// let s = ClientSecret::new("hunter2").unwrap();
/// assert_eq!(format!("{s:?}"), "***");
/// assert_eq!(s.expose(), "hunter2");
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct ClientSecret(Zeroizing<String>);

impl ClientSecret {
    /// Wraps a non-empty secret (surrounding whitespace, such as a newline from stdin, is dropped).
    pub fn new(raw: &str) -> Result<Self, ValidationError> {
        let trimmed = raw.trim();
        if trimmed.is_empty() {
            return Err(ValidationError::Credential {
                field: "key",
                reason: "must not be empty".into(),
            });
        }
        Ok(Self(Zeroizing::new(trimmed.to_owned())))
    }

    /// The secret itself. Call only where it is sent to the provider or encrypted.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for ClientSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// Whether an account takes part in syncs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum AccountState {
    /// Synced by `sync` and the scheduler.
    Enabled,
    /// Kept with its data, but not synced.
    Disabled,
}

impl AccountState {
    /// `ENABLED` or `DISABLED`.
    pub fn as_str(self) -> &'static str {
        match self {
            AccountState::Enabled => "ENABLED",
            AccountState::Disabled => "DISABLED",
        }
    }
}

/// One step of an account's project history: from `from` on (or for all dates when `None`),
/// the account's costs belong to `project`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Assignment {
    /// The project.
    pub project: ProjectId,
    /// First day the assignment covers; `None` for "since the beginning".
    pub from: Option<NaiveDate>,
}

/// A billing service account: a provider, the settings it asks for, and the project it
/// belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceAccount {
    /// Identifier.
    pub id: AccountId,
    /// Owning domain.
    pub domain: DomainId,
    /// Name, unique within the domain.
    pub name: Name,
    /// The provider it reads from.
    pub provider: ProviderKind,
    /// The provider's settings (values and sealed secrets; empty for `file`).
    pub settings: crate::Settings,
    /// Enabled or disabled.
    pub state: AccountState,
    /// The project its current (latest) assignment points at.
    pub project: ProjectId,
    /// Creation time.
    pub created_at: DateTime<Utc>,
}

impl ServiceAccount {
    /// The history after moving the account to `project`: with `from = None` the whole history
    /// becomes that project's (a correction); with `from = Some(day)` costs from `day` on
    /// move, earlier ones stay, and steps from `day` on are superseded.
    ///
    /// ```
    /// use cloudbill_core::{Assignment, NaiveDate, ProjectId, ServiceAccount};
    /// let (web, data) = (ProjectId::new(), ProjectId::new());
    /// let day = |s| NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap();
    /// let history = vec![Assignment { project: web, from: None }];
    /// let moved = ServiceAccount::moved(&history, data, Some(day("2025-03-01")));
    /// assert_eq!(ServiceAccount::project_on(&moved, day("2025-02-28")), Some(web));
    /// assert_eq!(ServiceAccount::project_on(&moved, day("2025-03-01")), Some(data));
    /// assert_eq!(ServiceAccount::moved(&moved, web, None).len(), 1);
    /// ```
    pub fn moved(
        history: &[Assignment],
        project: ProjectId,
        from: Option<NaiveDate>,
    ) -> Vec<Assignment> {
        let mut out: Vec<Assignment> = match from {
            None => Vec::new(),
            Some(day) => history
                .iter()
                .filter(|a| a.from.is_none_or(|f| f < day))
                .copied()
                .collect(),
        };
        // The first step always covers every earlier day.
        let from = if out.is_empty() { None } else { from };
        out.push(Assignment { project, from });
        out
    }

    /// The project owning costs of `day`, given the account's assignment history sorted by
    /// `from` (the first entry has `from = None`).
    pub fn project_on(history: &[Assignment], day: NaiveDate) -> Option<ProjectId> {
        history
            .iter()
            .rev()
            .find(|a| a.from.is_none_or(|from| from <= day))
            .map(|a| a.project)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secret_is_never_shown_and_never_blank() {
        let s = ClientSecret::new(" s3cr3t\n").unwrap();
        assert_eq!(format!("{s:?}"), "***");
        assert_eq!(s.expose(), "s3cr3t");
        assert!(ClientSecret::new("  ").is_err());
    }

    #[test]
    fn project_on_follows_history() {
        let (a, b) = (ProjectId::new(), ProjectId::new());
        let d = |s| NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap();
        let history = [
            Assignment {
                project: a,
                from: None,
            },
            Assignment {
                project: b,
                from: Some(d("2025-03-01")),
            },
        ];
        assert_eq!(
            ServiceAccount::project_on(&history, d("2020-01-01")),
            Some(a)
        );
        assert_eq!(
            ServiceAccount::project_on(&history, d("2025-02-28")),
            Some(a)
        );
        assert_eq!(
            ServiceAccount::project_on(&history, d("2025-03-01")),
            Some(b)
        );
    }
}
