//! An account's settings as a provider reads them at fetch time.

use cloudbill_core::{ClientSecret, Settings};

use crate::ProviderError;

/// An account's settings as a provider reads them: values trimmed (a blank one is absent),
/// a missing required one the same clear error in every provider.
#[derive(Debug, Clone, Copy)]
pub struct Given<'a>(&'a Settings);

impl<'a> Given<'a> {
    /// Reads `settings`.
    pub fn new(settings: &'a Settings) -> Self {
        Self(settings)
    }

    /// A plain setting, trimmed; `None` when absent or blank.
    pub fn value(&self, name: &str) -> Option<&'a str> {
        self.0.value(name).map(str::trim).filter(|v| !v.is_empty())
    }

    /// A plain setting that must be there.
    ///
    /// # Errors
    /// [`missing`] when it is absent or blank.
    pub fn required(&self, name: &str) -> Result<&'a str, ProviderError> {
        self.value(name).ok_or_else(|| missing(name))
    }

    /// A secret that must be there.
    ///
    /// # Errors
    /// [`missing`] when it is absent.
    pub fn secret(&self, name: &str) -> Result<&'a ClientSecret, ProviderError> {
        self.0.secret(name).ok_or_else(|| missing(name))
    }

    /// A secret that may be there.
    pub fn optional_secret(&self, name: &str) -> Option<&'a ClientSecret> {
        self.0.secret(name)
    }
}

/// The error of a setting an account lacks (its spec and `prepare` let none through; stored
/// settings of an older version might).
pub fn missing(name: &str) -> ProviderError {
    ProviderError::InvalidRequest(format!("the account's {name} setting is missing"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blank_values_are_absent_and_missing_ones_say_which() {
        let s = Settings::default()
            .with_value("bucket", "  b  ")
            .with_value("prefix", "   ");
        let g = Given::new(&s);
        assert_eq!(g.value("bucket"), Some("b"));
        assert_eq!(g.value("prefix"), None);
        assert_eq!(
            g.required("prefix").unwrap_err().to_string(),
            missing("prefix").to_string()
        );
        assert!(g
            .secret("key")
            .unwrap_err()
            .to_string()
            .contains("key setting is missing"));
        assert!(g.optional_secret("key").is_none());
    }
}
