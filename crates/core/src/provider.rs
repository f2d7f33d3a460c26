//! The billing data sources a domain can use, and whether each is enabled.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::ValidationError;

/// A kind of billing source, by its stable machine name (`hyperbilling-aws`, `file`).
///
/// Open: any valid name is a provider kind (lowercase ASCII letters, digits and `-`, starting
/// with a letter, at most [`MAX_PROVIDER_NAME`] bytes), so a new provider is a new
/// `BillingProvider` registered under its own name — the codec, this crate and the engine
/// carry it as text. Which kinds a deployment offers is its provider registry's business;
/// [`ProviderKind::ALL`] lists the ones built in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ProviderKind(&'static str);

impl Serialize for ProviderKind {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.0)
    }
}

impl<'de> Deserialize<'de> for ProviderKind {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let name = std::borrow::Cow::<'de, str>::deserialize(d)?;
        name.parse().map_err(serde::de::Error::custom)
    }
}

/// The longest provider name.
pub const MAX_PROVIDER_NAME: usize = 40;

#[allow(non_upper_case_globals)] // The built-in kinds read like the variants they were.
impl ProviderKind {
    /// "Hyperbilling for AWS": a REST API polled with Account / Email / Key credentials.
    pub const HyperbillingAws: ProviderKind = ProviderKind("hyperbilling-aws");
    /// Bills imported from FOCUS or AWS CUR files; no credentials.
    pub const File: ProviderKind = ProviderKind("file");

    /// The kinds built in, in registry order.
    pub const ALL: [ProviderKind; 2] = [ProviderKind::HyperbillingAws, ProviderKind::File];

    /// A provider's kind, for the constant of a provider crate (`ProviderKind::named("azure-ea")`).
    /// The name must be valid (see the type); `"".parse::<ProviderKind>()` checks one at run time.
    pub const fn named(name: &'static str) -> Self {
        ProviderKind(name)
    }

    /// The stable machine name (`hyperbilling-aws`, `file`).
    pub fn as_str(self) -> &'static str {
        self.0
    }

    /// The human-readable name (a kind not built in: its machine name).
    pub fn display_name(self) -> &'static str {
        match self.0 {
            "hyperbilling-aws" => "Hyperbilling for AWS",
            "file" => "File import (FOCUS, AWS CUR)",
            other => other,
        }
    }
}

/// The `file` provider: bills imported from FOCUS or AWS CUR files, no settings.
pub const FILE_SPEC: crate::ProviderSpec = crate::ProviderSpec {
    kind: ProviderKind::File,
    title: "File import (FOCUS, AWS CUR)",
    settings: &[],
};

/// Interned provider names: each valid name once, for the process's life (names are short
/// and a deployment knows few).
fn intern(name: &str) -> &'static str {
    use std::collections::BTreeSet;
    use std::sync::{Mutex, OnceLock};
    static NAMES: OnceLock<Mutex<BTreeSet<&'static str>>> = OnceLock::new();
    let names = NAMES.get_or_init(|| Mutex::new(BTreeSet::new()));
    let mut names = names
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some(known) = names.get(name) {
        return known;
    }
    let leaked: &'static str = Box::leak(name.to_owned().into_boxed_str());
    names.insert(leaked);
    leaked
}

impl FromStr for ProviderKind {
    type Err = ValidationError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let name = s.trim().to_ascii_lowercase();
        if let Some(kind) = ProviderKind::ALL.into_iter().find(|k| k.0 == name) {
            return Ok(kind);
        }
        let valid = !name.is_empty()
            && name.len() <= MAX_PROVIDER_NAME
            && name.starts_with(|c: char| c.is_ascii_lowercase())
            && name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
        if !valid {
            return Err(ValidationError::Unknown {
                what: "provider",
                value: s.to_owned(),
                expected: "a name of lowercase letters, digits and '-' (hyperbilling-aws, file)",
            });
        }
        Ok(ProviderKind(intern(&name)))
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
    fn names_round_trip_and_new_providers_are_open() {
        for kind in ProviderKind::ALL {
            assert_eq!(kind.as_str().parse::<ProviderKind>().unwrap(), kind);
        }
        // A provider not built in is a kind all the same, interned once.
        let azure: ProviderKind = "Azure-EA".parse().unwrap();
        assert_eq!(azure.as_str(), "azure-ea");
        assert_eq!(azure, ProviderKind::named("azure-ea"));
        assert!(std::ptr::eq(
            azure.as_str(),
            "azure-ea".parse::<ProviderKind>().unwrap().as_str()
        ));
        assert_eq!(azure.display_name(), "azure-ea");
        for bad in ["", "9lives", "a b", "ünï", &"x".repeat(41)] {
            let err = bad.parse::<ProviderKind>().unwrap_err().to_string();
            assert!(err.contains("is not a valid provider"), "{bad}: {err}");
        }
    }
}
