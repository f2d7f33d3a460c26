//! The billing data sources a domain can use, and whether each is enabled.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::ValidationError;

/// A kind of billing source.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum ProviderKind {
    /// "Hyperbilling for AWS": a REST API polled with Account / Email / Key credentials.
    HyperbillingAws,
    /// Bills imported from FOCUS or AWS CUR files; no credentials.
    File,
}

impl ProviderKind {
    /// Every provider kind, in registry order.
    pub const ALL: [ProviderKind; 2] = [ProviderKind::HyperbillingAws, ProviderKind::File];

    /// The stable machine name (`hyperbilling-aws`, `file`).
    pub fn as_str(self) -> &'static str {
        match self {
            ProviderKind::HyperbillingAws => "hyperbilling-aws",
            ProviderKind::File => "file",
        }
    }

    /// The human-readable name.
    pub fn display_name(self) -> &'static str {
        match self {
            ProviderKind::HyperbillingAws => "Hyperbilling for AWS",
            ProviderKind::File => "File import (FOCUS, AWS CUR)",
        }
    }

    /// Whether accounts of this provider carry credentials.
    pub fn needs_credentials(self) -> bool {
        matches!(self, ProviderKind::HyperbillingAws)
    }
}

impl FromStr for ProviderKind {
    type Err = ValidationError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "hyperbilling-aws" => Ok(ProviderKind::HyperbillingAws),
            "file" => Ok(ProviderKind::File),
            _ => Err(ValidationError::Unknown {
                what: "provider",
                value: s.to_owned(),
                expected: "hyperbilling-aws, file",
            }),
        }
    }
}

impl TryFrom<String> for ProviderKind {
    type Error = ValidationError;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        value.parse()
    }
}

impl From<ProviderKind> for String {
    fn from(value: ProviderKind) -> Self {
        value.as_str().to_owned()
    }
}

impl fmt::Display for ProviderKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Whether a provider may be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum ProviderState {
    /// Accounts of this provider sync.
    Enabled,
    /// Accounts of this provider do not sync and new ones cannot be added.
    Disabled,
}

impl ProviderState {
    /// `ENABLED` or `DISABLED`.
    pub fn as_str(self) -> &'static str {
        match self {
            ProviderState::Enabled => "ENABLED",
            ProviderState::Disabled => "DISABLED",
        }
    }
}

/// A provider in a domain's registry. Every provider is present and ENABLED in a new domain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProviderEntry {
    /// Which provider.
    pub kind: ProviderKind,
    /// Enabled or disabled.
    pub state: ProviderState,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for kind in ProviderKind::ALL {
            assert_eq!(kind.as_str().parse::<ProviderKind>().unwrap(), kind);
        }
        let err = "azure".parse::<ProviderKind>().unwrap_err();
        assert_eq!(
            err.to_string(),
            "\"azure\" is not a valid provider (expected one of: hyperbilling-aws, file)"
        );
    }
}
