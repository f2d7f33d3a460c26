//! Human-chosen names of projects, groups, accounts and domains.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::ValidationError;

/// The longest name accepted, in characters.
pub const MAX_NAME_LEN: usize = 128;

/// The longest domain name accepted ([`Name::parse_domain`]).
pub const MAX_DOMAIN_NAME_LEN: usize = 63;

/// A validated name: trimmed, non-empty, at most 128 characters, no control characters, and
/// not of the form of an id (a UUID in any spelling), so a name can never shadow an id.
///
/// ```
/// use cloudbill_core::Name;
/// let n = Name::parse("  web  ", "project name").unwrap();
/// assert_eq!(n.as_str(), "web");
/// assert!(Name::parse("   ", "project name").is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Name(String);

impl Name {
    /// Validates `raw` as a name; `what` names the kind of name in the error message.
    pub fn parse(raw: &str, what: &'static str) -> Result<Self, ValidationError> {
        let trimmed = raw.trim();
        if trimmed.is_empty() {
            return Err(ValidationError::Empty { what });
        }
        let len = trimmed.chars().count();
        if len > MAX_NAME_LEN {
            return Err(ValidationError::TooLong {
                what,
                value: trimmed.chars().take(32).collect::<String>() + "…",
                len,
                max: MAX_NAME_LEN,
            });
        }
        if trimmed.chars().any(char::is_control) {
            return Err(ValidationError::ControlCharacter {
                what,
                value: trimmed.to_owned(),
            });
        }
        if uuid::Uuid::try_parse(trimmed).is_ok() {
            return Err(ValidationError::LooksLikeId {
                what,
                value: trimmed.to_owned(),
            });
        }
        Ok(Self(trimmed.to_owned()))
    }

    /// Validates `raw` as a domain (tenant) name: a slug of 1 to [`MAX_DOMAIN_NAME_LEN`]
    /// ASCII lowercase letters, digits, `.`, `-` and `_`, starting with a letter or digit.
    /// ASCII capitals are lowered (`ALPHA` is `alpha`); anything else — a Cyrillic `а` that
    /// looks like `a`, a zero-width space, an accent — is refused, so two domains can never
    /// look alike.
    ///
    /// ```
    /// use cloudbill_core::Name;
    /// assert_eq!(Name::parse_domain(" ACME-eu ").unwrap().as_str(), "acme-eu");
    /// assert!(Name::parse_domain("\u{430}lpha").is_err()); // Cyrillic a
    /// assert!(Name::parse_domain("alpha\u{200b}").is_err()); // zero-width space
    /// ```
    pub fn parse_domain(raw: &str) -> Result<Self, ValidationError> {
        let what = "domain name";
        let name = Self::parse(raw, what)?;
        let lowered = name.0.to_ascii_lowercase();
        let ok = lowered.len() <= MAX_DOMAIN_NAME_LEN
            && lowered
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b))
            && lowered
                .bytes()
                .next()
                .is_some_and(|b| b.is_ascii_alphanumeric());
        if !ok {
            return Err(ValidationError::Setting {
                what,
                value: crate::cut(raw.trim(), 80).into_owned(),
                reason: format!(
                    "a domain name is 1 to {MAX_DOMAIN_NAME_LEN} letters a-z, digits, '.', '-' \
                     or '_', starting with a letter or digit (no look-alike or invisible \
                     characters)"
                ),
            });
        }
        Ok(Self(lowered))
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// `text` cut to at most `max` characters, with `…` when something was left out: what an error
/// or a record quotes of a value it does not trust.
///
/// ```
/// use cloudbill_core::cut;
/// assert_eq!(cut("abcdef", 3), "abc…");
/// assert_eq!(cut("abc", 3), "abc");
/// ```
pub fn cut(text: &str, max: usize) -> std::borrow::Cow<'_, str> {
    match text.char_indices().nth(max) {
        None => std::borrow::Cow::Borrowed(text),
        Some((end, _)) => std::borrow::Cow::Owned(format!("{}…", &text[..end])),
    }
}

impl TryFrom<String> for Name {
    type Error = ValidationError;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value, "name")
    }
}

impl From<Name> for String {
    fn from(value: Name) -> Self {
        value.0
    }
}

impl AsRef<str> for Name {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn rejects_empty_and_blank() {
        assert_eq!(
            Name::parse("", "project name").unwrap_err(),
            ValidationError::Empty {
                what: "project name"
            }
        );
        assert!(Name::parse(" \t ", "project name").is_err());
    }

    #[test]
    fn rejects_too_long_and_control_characters() {
        let long = "x".repeat(MAX_NAME_LEN + 1);
        let err = Name::parse(&long, "account name").unwrap_err();
        assert!(err
            .to_string()
            .contains("too long (129 characters, at most 128)"));
        assert!(Name::parse(&"x".repeat(MAX_NAME_LEN), "account name").is_ok());
        assert!(Name::parse("a\nb", "account name").is_err());
    }

    #[test]
    fn names_that_parse_as_ids_are_refused() {
        // Regression (#13): a project named with another project's id took over lookups by it.
        for id in [
            "0190f1a2-3b4c-7d8e-9f00-112233445566",
            "0190F1A23B4C7D8E9F00112233445566",
            "{0190f1a2-3b4c-7d8e-9f00-112233445566}",
            "urn:uuid:0190f1a2-3b4c-7d8e-9f00-112233445566",
            " 0190f1a2-3b4c-7d8e-9f00-112233445566 ",
        ] {
            let err = Name::parse(id, "project name").unwrap_err();
            assert!(
                matches!(err, ValidationError::LooksLikeId { .. }),
                "{id}: {err}"
            );
        }
        assert!(Name::parse("0190f1a2-web", "project name").is_ok());
    }

    #[test]
    fn serde_goes_through_validation() {
        assert!(serde_json::from_str::<Name>("\"  \"").is_err());
        let n: Name = serde_json::from_str("\" web \"").unwrap();
        assert_eq!(n.as_str(), "web");
    }

    proptest! {
        #[test]
        fn valid_names_are_trimmed_and_kept(s in "[a-zA-Z0-9][a-zA-Z0-9 _.-]{0,100}[a-zA-Z0-9]") {
            let n = Name::parse(&format!("  {s}  "), "name").unwrap();
            prop_assert_eq!(n.as_str(), s.as_str());
        }
    }
}
