//! What a provider asks of a billing account: its declared settings ([`SettingSpec`], one
//! [`ProviderSpec`] per provider) and an account's values for them ([`Settings`]: plain
//! values, shown, and secrets, sealed at rest and never shown).

use std::collections::BTreeMap;
use std::fmt;

use serde::Deserialize;
use zeroize::Zeroizing;

use crate::{ClientSecret, ProviderKind, ValidationError};

/// How a setting's value is checked (after surrounding space is dropped).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SettingKind {
    /// Printable text, at most 1,024 characters.
    Text,
    /// An http(s) URL of the one shape cloudbill calls ([`crate::net::plain_url`]).
    Url,
    /// Decimal digits (a cloud's numeric account id), at most 32.
    Digits,
    /// An e-mail-like id: one `@`, no spaces.
    Email,
    /// A JSON object (a key file's contents), at most 64 KiB.
    Json,
    /// One of the listed words.
    OneOf(&'static [&'static str]),
}

impl SettingKind {
    /// What a value must look like, for help texts and the API document.
    pub fn describe(self) -> String {
        match self {
            SettingKind::Text => "text of at most 1024 characters".into(),
            SettingKind::Url => "an http(s) URL".into(),
            SettingKind::Digits => "up to 32 digits".into(),
            SettingKind::Email => "an e-mail address".into(),
            SettingKind::Json => "a JSON object".into(),
            SettingKind::OneOf(words) => format!("one of {}", words.join(", ")),
        }
    }
}

/// One setting a provider declares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SettingSpec {
    /// Its name (`bucket`, `secret_access_key`): lowercase letters, digits and `_`.
    pub name: &'static str,
    /// What it is, in a sentence for the user.
    pub description: &'static str,
    /// Whether an account must have it.
    pub required: bool,
    /// Whether it is a secret: sealed at rest, read from stdin by the CLI, write-only in the
    /// API, never printed or logged.
    pub secret: bool,
    /// How a value is checked.
    pub kind: SettingKind,
}

impl SettingSpec {
    /// An optional, plain text setting.
    pub const fn new(name: &'static str, description: &'static str) -> Self {
        Self {
            name,
            description,
            required: false,
            secret: false,
            kind: SettingKind::Text,
        }
    }

    /// The same, required.
    #[must_use]
    pub const fn required(mut self) -> Self {
        self.required = true;
        self
    }

    /// The same, a secret.
    #[must_use]
    pub const fn secret(mut self) -> Self {
        self.secret = true;
        self
    }

    /// The same, checked as `kind`.
    #[must_use]
    pub const fn kind(mut self, kind: SettingKind) -> Self {
        self.kind = kind;
        self
    }

    /// `raw` as this setting's value: trimmed and checked.
    ///
    /// # Errors
    /// [`ValidationError::Setting`] naming the setting (a secret's value is never shown).
    pub fn check(&self, raw: &str) -> Result<String, ValidationError> {
        let value = raw.trim();
        let refuse = |reason: String| ValidationError::Setting {
            what: "setting",
            value: self.name.to_owned(),
            reason,
        };
        if value.is_empty() {
            return Err(refuse("it is empty".into()));
        }
        if self.kind != SettingKind::Json && value.chars().any(char::is_control) {
            return Err(refuse("it holds a control character".into()));
        }
        let ok = match self.kind {
            SettingKind::Text => value.chars().count() <= 1024,
            SettingKind::Url => value.len() <= 2048 && crate::net::plain_url(value),
            SettingKind::Digits => value.len() <= 32 && value.bytes().all(|b| b.is_ascii_digit()),
            SettingKind::Email => {
                value.len() <= 254
                    && value.matches('@').count() == 1
                    && !value.chars().any(char::is_whitespace)
            }
            SettingKind::Json => {
                value.len() <= 64 * 1024
                    && serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(value)
                        .is_ok()
            }
            SettingKind::OneOf(words) => words.contains(&value),
        };
        if ok {
            Ok(value.to_owned())
        } else {
            // A secret's value is never shown.
            let given = if self.secret {
                "the value given".to_owned()
            } else {
                format!("{:?}", crate::cut(value, 60))
            };
            Err(refuse(format!("{given} is not {}", self.kind.describe())))
        }
    }
}

/// What a provider declares of itself: its kind, a title for people, and its settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProviderSpec {
    /// The stable machine name.
    pub kind: ProviderKind,
    /// The name people read (`Hyperbilling for AWS`).
    pub title: &'static str,
    /// The settings of an account, in the order they are shown.
    pub settings: &'static [SettingSpec],
}

impl ProviderSpec {
    /// The setting called `name`.
    pub fn setting(&self, name: &str) -> Option<&SettingSpec> {
        self.settings.iter().find(|s| s.name == name)
    }

    /// The secret settings.
    pub fn secrets(&self) -> impl Iterator<Item = &SettingSpec> {
        self.settings.iter().filter(|s| s.secret)
    }

    /// `values` and `secrets` as settings of this provider: every name declared (a secret
    /// given as a secret, a plain setting as a value), every value checked, every required
    /// one present.
    ///
    /// # Errors
    /// The first name or value that does not fit, or the first required setting missing.
    pub fn settings_of(
        &self,
        values: &BTreeMap<String, String>,
        secrets: &BTreeMap<String, ClientSecret>,
    ) -> Result<Settings, ValidationError> {
        let out = self.checked(values, secrets)?;
        self.complete(&out)?;
        Ok(out)
    }

    /// [`ProviderSpec::settings_of`] without the check that every required setting is there
    /// (a provider's defaults may fill some in: [`ProviderSpec::complete`] after them).
    ///
    /// # Errors
    /// The first name or value that does not fit.
    pub fn checked(
        &self,
        values: &BTreeMap<String, String>,
        secrets: &BTreeMap<String, ClientSecret>,
    ) -> Result<Settings, ValidationError> {
        let mut out = Settings::default();
        for (name, value) in values {
            let spec = self.declared(name)?;
            if spec.secret {
                return Err(refuse(
                    name,
                    "it is a secret: give it as a secret (the CLI's --secret-stdin, the API's \
                     \"secrets\")",
                ));
            }
            out.values.insert(spec.name.to_owned(), spec.check(value)?);
        }
        for (name, secret) in secrets {
            let spec = self.declared(name)?;
            if !spec.secret {
                return Err(refuse(name, "it is not a secret: give it as a setting"));
            }
            let checked = spec.check(secret.expose())?;
            out.secrets
                .insert(spec.name.to_owned(), ClientSecret::new(&checked)?);
        }
        Ok(out)
    }

    /// Checks that every required setting of this provider is in `settings`.
    ///
    /// # Errors
    /// The first required setting missing.
    pub fn complete(&self, settings: &Settings) -> Result<(), ValidationError> {
        for spec in self.settings.iter().filter(|s| s.required) {
            let present = if spec.secret {
                settings.secret(spec.name).is_some()
            } else {
                settings.value(spec.name).is_some()
            };
            if !present {
                return Err(refuse(spec.name, "it is required"));
            }
        }
        Ok(())
    }

    fn declared(&self, name: &str) -> Result<&SettingSpec, ValidationError> {
        self.setting(name.trim()).ok_or_else(|| {
            let known: Vec<&str> = self.settings.iter().map(|s| s.name).collect();
            refuse(
                name,
                &format!(
                    "{} has no such setting (it has: {})",
                    self.kind,
                    known.join(", ")
                ),
            )
        })
    }
}

fn refuse(name: &str, reason: &str) -> ValidationError {
    ValidationError::Setting {
        what: "setting",
        value: crate::cut(name, 60).into_owned(),
        reason: reason.to_owned(),
    }
}

/// An account's settings: plain values (stored, shown) and secrets (sealed at rest, never
/// shown: `Debug` prints their names only).
///
/// ```
/// use cloudbill_core::{ClientSecret, Settings};
/// let s = Settings::default()
///     .with_value("bucket", "billing")
///     .with_secret("secret_access_key", ClientSecret::new("s3cr3t").unwrap());
/// assert_eq!(s.value("bucket"), Some("billing"));
/// assert!(!format!("{s:?}").contains("s3cr3t"));
/// ```
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Settings {
    values: BTreeMap<String, String>,
    secrets: BTreeMap<String, ClientSecret>,
}

impl Settings {
    /// These settings with `name` set to `value`.
    #[must_use]
    pub fn with_value(mut self, name: &str, value: &str) -> Self {
        self.values.insert(name.to_owned(), value.to_owned());
        self
    }

    /// These settings with the secret `name`.
    #[must_use]
    pub fn with_secret(mut self, name: &str, secret: ClientSecret) -> Self {
        self.secrets.insert(name.to_owned(), secret);
        self
    }

    /// A plain setting's value.
    pub fn value(&self, name: &str) -> Option<&str> {
        self.values.get(name).map(String::as_str)
    }

    /// A secret.
    pub fn secret(&self, name: &str) -> Option<&ClientSecret> {
        self.secrets.get(name)
    }

    /// The plain settings, by name.
    pub fn values(&self) -> &BTreeMap<String, String> {
        &self.values
    }

    /// The secrets, by name.
    pub fn secrets(&self) -> &BTreeMap<String, ClientSecret> {
        &self.secrets
    }

    /// The names of the secrets set.
    pub fn secret_names(&self) -> impl Iterator<Item = &str> {
        self.secrets.keys().map(String::as_str)
    }

    /// Whether nothing is set (a `file` account's).
    pub fn is_empty(&self) -> bool {
        self.values.is_empty() && self.secrets.is_empty()
    }

    /// These settings with `update`'s: each value or secret it has replaces this one's.
    #[must_use]
    pub fn merged(&self, update: &Settings) -> Settings {
        let mut out = self.clone();
        for (k, v) in &update.values {
            out.values.insert(k.clone(), v.clone());
        }
        for (k, v) in &update.secrets {
            out.secrets.insert(k.clone(), v.clone());
        }
        out
    }

    /// Everything, secrets included, as JSON for encryption at rest:
    /// `{"values": {…}, "secrets": {…}}`.
    pub fn to_secret_json(&self) -> Zeroizing<String> {
        let secrets: BTreeMap<&str, &str> = self
            .secrets
            .iter()
            .map(|(k, v)| (k.as_str(), v.expose()))
            .collect();
        Zeroizing::new(serde_json::json!({"values": self.values, "secrets": secrets}).to_string())
    }

    /// The inverse of [`Settings::to_secret_json`]; also reads what databases written before
    /// providers declared settings hold (Hyperbilling's `{"account", "email", "key",
    /// "endpoint"}`: `key` a secret, the rest values).
    ///
    /// # Errors
    /// Unreadable JSON.
    pub fn from_secret_json(json: &str) -> Result<Self, ValidationError> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Stored {
            Current {
                values: BTreeMap<String, String>,
                secrets: BTreeMap<String, Zeroizing<String>>,
            },
            Hyperbilling {
                account: String,
                email: String,
                key: Zeroizing<String>,
                endpoint: String,
            },
        }
        let stored: Stored =
            serde_json::from_str(json).map_err(|e| ValidationError::Credential {
                field: "settings",
                reason: format!("stored settings are unreadable: {e}"),
            })?;
        Ok(match stored {
            Stored::Current { values, secrets } => Self {
                values,
                secrets: secrets
                    .into_iter()
                    .map(|(k, v)| Ok((k, ClientSecret::new(&v)?)))
                    .collect::<Result<_, ValidationError>>()?,
            },
            Stored::Hyperbilling {
                account,
                email,
                key,
                endpoint,
            } => {
                let mut s = Self::default()
                    .with_value("email", &email)
                    .with_value("endpoint", &endpoint)
                    .with_secret("key", ClientSecret::new(&key)?);
                if !account.is_empty() {
                    s = s.with_value("account", &account);
                }
                s
            }
        })
    }
}

impl fmt::Debug for Settings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Settings")
            .field("values", &self.values)
            .field("secrets", &self.secrets.keys().collect::<Vec<_>>())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DIGIT_KEY: &[SettingSpec] = &[SettingSpec::new("k", "a key")
        .secret()
        .kind(SettingKind::Digits)];

    const SPEC: ProviderSpec = ProviderSpec {
        kind: ProviderKind::named("example"),
        title: "Example",
        settings: &[
            SettingSpec::new("bucket", "the bucket").required(),
            SettingSpec::new("endpoint", "an S3-compatible URL").kind(SettingKind::Url),
            SettingSpec::new("region", "the region").kind(SettingKind::OneOf(&["us", "eu"])),
            SettingSpec::new("secret_key", "the key")
                .required()
                .secret(),
        ],
    };

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn secrets(pairs: &[(&str, &str)]) -> BTreeMap<String, ClientSecret> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), ClientSecret::new(v).unwrap()))
            .collect()
    }

    #[test]
    fn settings_are_checked_against_their_provider() {
        let s = SPEC
            .settings_of(
                &map(&[("bucket", " billing "), ("region", "eu")]),
                &secrets(&[("secret_key", "k")]),
            )
            .unwrap();
        assert_eq!(s.value("bucket"), Some("billing"));
        assert_eq!(s.secret("secret_key").unwrap().expose(), "k");
        for (values, secret, needle) in [
            (
                map(&[("region", "eu")]),
                secrets(&[("secret_key", "k")]),
                "required",
            ),
            (map(&[("bucket", "b")]), secrets(&[]), "required"),
            (
                map(&[("bucket", "b"), ("colour", "red")]),
                secrets(&[("secret_key", "k")]),
                "no such setting",
            ),
            (
                map(&[("bucket", "b"), ("secret_key", "k")]),
                secrets(&[]),
                "it is a secret",
            ),
            (
                map(&[]),
                secrets(&[("bucket", "b"), ("secret_key", "k")]),
                "not a secret",
            ),
            (
                map(&[("bucket", "b"), ("region", "mars")]),
                secrets(&[("secret_key", "k")]),
                "one of us, eu",
            ),
            (
                map(&[("bucket", "b"), ("endpoint", "ftp://x")]),
                secrets(&[("secret_key", "k")]),
                "http(s) URL",
            ),
        ] {
            let e = SPEC.settings_of(&values, &secret).unwrap_err().to_string();
            assert!(e.contains(needle), "{e}");
        }
        // A secret's bad value is never shown.
        let spec = ProviderSpec {
            settings: DIGIT_KEY,
            ..SPEC
        };
        let e = spec
            .settings_of(&map(&[]), &secrets(&[("k", "not-digits-SECRET")]))
            .unwrap_err()
            .to_string();
        assert!(!e.contains("SECRET"), "{e}");
    }

    #[test]
    fn stored_settings_round_trip_and_old_credentials_read() {
        let s = Settings::default()
            .with_value("bucket", "b")
            .with_secret("secret_key", ClientSecret::new("k").unwrap());
        assert_eq!(Settings::from_secret_json(&s.to_secret_json()).unwrap(), s);
        let old = r#"{"account":"111111111111","email":"ops@x","key":"k","endpoint":"http://h"}"#;
        let read = Settings::from_secret_json(old).unwrap();
        assert_eq!(read.value("account"), Some("111111111111"));
        assert_eq!(read.value("endpoint"), Some("http://h"));
        assert_eq!(read.secret("key").unwrap().expose(), "k");
        assert!(Settings::from_secret_json("{").is_err());
    }
}
