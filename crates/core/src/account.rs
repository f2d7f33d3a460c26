//! Billing service accounts, their secret credentials and their project assignment history.

use std::fmt;

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use url::Url;
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

/// Credentials of a Hyperbilling-style account: Account / Email / Key and the API endpoint.
///
/// `Debug` never shows the key. There is deliberately no `Serialize`: the only way to turn
/// credentials into bytes is [`Credentials::to_secret_json`], which the store encrypts.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    account: String,
    email: String,
    key: ClientSecret,
    endpoint: Url,
}

impl Credentials {
    /// Validates credentials. `account` may be empty (every linked account the client can
    /// read); otherwise it is the cloud's numeric account id. `endpoint` must be an http(s) URL.
    pub fn new(
        account: &str,
        email: &str,
        key: ClientSecret,
        endpoint: &str,
    ) -> Result<Self, ValidationError> {
        let account = account.trim();
        if !account.is_empty()
            && (account.len() > 32 || !account.bytes().all(|b| b.is_ascii_digit()))
        {
            return Err(ValidationError::Credential {
                field: "account",
                reason: format!("{account:?} is not a numeric cloud account id"),
            });
        }
        let email = email.trim();
        if email.is_empty() || !email.contains('@') || email.chars().any(char::is_whitespace) {
            return Err(ValidationError::Credential {
                field: "email",
                reason: format!("{email:?} is not an email address"),
            });
        }
        Ok(Self {
            account: account.to_owned(),
            email: email.to_owned(),
            key,
            endpoint: parse_endpoint(endpoint)?,
        })
    }

    /// The linked cloud account to read, or `""` for every account the client may read.
    pub fn account(&self) -> &str {
        &self.account
    }

    /// The client id (an email address).
    pub fn email(&self) -> &str {
        &self.email
    }

    /// The client secret.
    pub fn key(&self) -> &ClientSecret {
        &self.key
    }

    /// The API base URL, without a trailing slash.
    pub fn endpoint(&self) -> &str {
        self.endpoint.as_str().trim_end_matches('/')
    }

    /// Serializes everything, the key included, for encryption at rest.
    pub fn to_secret_json(&self) -> Zeroizing<String> {
        Zeroizing::new(
            serde_json::json!({
                "account": self.account,
                "email": self.email,
                "key": self.key.expose(),
                "endpoint": self.endpoint(),
            })
            .to_string(),
        )
    }

    /// The inverse of [`Credentials::to_secret_json`].
    pub fn from_secret_json(json: &str) -> Result<Self, ValidationError> {
        #[derive(Deserialize)]
        struct Raw {
            account: String,
            email: String,
            key: Zeroizing<String>,
            endpoint: String,
        }
        let raw: Raw = serde_json::from_str(json).map_err(|e| ValidationError::Credential {
            field: "credentials",
            reason: format!("stored credentials are unreadable: {e}"),
        })?;
        Self::new(
            &raw.account,
            &raw.email,
            ClientSecret::new(&raw.key)?,
            &raw.endpoint,
        )
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("account", &self.account)
            .field("email", &self.email)
            .field("key", &self.key)
            .field("endpoint", &self.endpoint())
            .finish()
    }
}

fn parse_endpoint(raw: &str) -> Result<Url, ValidationError> {
    let err = |reason: &str| ValidationError::Endpoint {
        value: raw.to_owned(),
        reason: reason.to_owned(),
    };
    let text = raw.trim();
    if text.is_empty() {
        return Err(err("missing (expected an http:// or https:// URL)"));
    }
    if text.len() > 2048 {
        return Err(err("longer than 2,048 characters"));
    }
    if !crate::net::plain_url(text) {
        return Err(err(
            "expected http(s)://HOST[:PORT][/PATH]: a host name of letters, digits, '.' and '-', no user, query or fragment",
        ));
    }
    let url = Url::parse(text).map_err(|e| err(&e.to_string()))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(err("only http:// and https:// URLs are supported"));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(err("has no host"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(err("must not carry a query or fragment"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(err("must not embed user credentials"));
    }
    Ok(url)
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

/// A billing service account: a provider, its credentials, and the project it belongs to.
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
    /// Credentials (`None` for the `file` provider).
    pub credentials: Option<Credentials>,
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

    fn creds(endpoint: &str) -> Result<Credentials, ValidationError> {
        Credentials::new(
            "111111111111",
            "ops@example.com",
            ClientSecret::new("s3cr3t-key").unwrap(),
            endpoint,
        )
    }

    #[test]
    fn debug_never_shows_the_key() {
        let c = creds("http://127.0.0.1:9/").unwrap();
        let dbg = format!("{c:?}");
        assert!(!dbg.contains("s3cr3t"), "{dbg}");
        assert!(dbg.contains("***"));
        assert_eq!(c.endpoint(), "http://127.0.0.1:9");
    }

    #[test]
    fn endpoint_must_be_http_url() {
        for bad in [
            "",
            "ftp://x",
            "not a url",
            "http://",
            "http://u:p@host",
            "https://h/?q=1",
        ] {
            assert!(creds(bad).is_err(), "{bad:?} should be rejected");
        }
        assert!(creds("https://billing.example.com/api").is_ok());
    }

    #[test]
    fn account_and_email_are_checked() {
        let key = || ClientSecret::new("k").unwrap();
        assert!(Credentials::new("", "a@b", key(), "http://h").is_ok());
        assert!(Credentials::new("12ab", "a@b", key(), "http://h").is_err());
        assert!(Credentials::new("1", "nobody", key(), "http://h").is_err());
        assert!(ClientSecret::new("  ").is_err());
    }

    #[test]
    fn secret_json_round_trips() {
        let c = creds("http://127.0.0.1:9").unwrap();
        let back = Credentials::from_secret_json(&c.to_secret_json()).unwrap();
        assert_eq!(c, back);
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
