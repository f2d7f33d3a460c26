//! The set of provider implementations a binary was built with.

use std::collections::BTreeMap;
use std::sync::Arc;

use cloudbill_core::{ProviderKind, ProviderSpec};

use crate::{BillingProvider, ProviderError};

/// Maps each provider kind to its implementation.
#[derive(Clone, Default)]
pub struct ProviderRegistry {
    providers: BTreeMap<ProviderKind, Arc<dyn BillingProvider>>,
}

impl ProviderRegistry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// The kinds registered, in name order.
    pub fn kinds(&self) -> impl Iterator<Item = ProviderKind> + '_ {
        self.providers.keys().copied()
    }

    /// What every provider of this build declares, `file` (built in, no settings) included,
    /// in name order.
    pub fn specs(&self) -> Vec<&'static ProviderSpec> {
        let mut out: Vec<&'static ProviderSpec> =
            self.providers.values().map(|p| p.spec()).collect();
        if !self.providers.contains_key(&ProviderKind::File) {
            out.push(&cloudbill_core::FILE_SPEC);
        }
        out.sort_by_key(|s| s.kind);
        out
    }

    /// What `kind` declares (`file` included).
    pub fn spec(&self, kind: ProviderKind) -> Result<&'static ProviderSpec, ProviderError> {
        if kind == ProviderKind::File && !self.providers.contains_key(&kind) {
            return Ok(&cloudbill_core::FILE_SPEC);
        }
        self.get(kind).map(|p| p.spec())
    }

    /// Adds (or replaces) the implementation of `provider.kind()`.
    #[must_use]
    pub fn with(mut self, provider: Arc<dyn BillingProvider>) -> Self {
        self.providers.insert(provider.kind(), provider);
        self
    }

    /// The implementation of `kind`.
    pub fn get(&self, kind: ProviderKind) -> Result<Arc<dyn BillingProvider>, ProviderError> {
        self.providers
            .get(&kind)
            .cloned()
            .ok_or_else(|| ProviderError::NotRegistered(kind.to_string()))
    }
}

impl std::fmt::Debug for ProviderRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.providers.keys()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MockBillingProvider;

    #[test]
    fn registry_finds_what_was_registered() {
        static SPEC: ProviderSpec = ProviderSpec {
            kind: ProviderKind::HyperbillingAws,
            title: "Hyperbilling for AWS",
            settings: &[],
        };
        let mut mock = MockBillingProvider::new();
        mock.expect_kind()
            .return_const(ProviderKind::HyperbillingAws);
        mock.expect_spec().return_const(&SPEC);
        let registry = ProviderRegistry::new().with(Arc::new(mock));
        assert!(registry.get(ProviderKind::HyperbillingAws).is_ok());
        let kinds: Vec<&str> = registry.specs().iter().map(|s| s.kind.as_str()).collect();
        assert_eq!(kinds, ["file", "hyperbilling-aws"]);
        let err = registry.get(ProviderKind::File).err().unwrap();
        assert_eq!(
            err.to_string(),
            "provider file is not available in this build"
        );
    }
}
