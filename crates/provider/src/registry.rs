//! The set of provider implementations a binary was built with.

use std::collections::BTreeMap;
use std::sync::Arc;

use cloudbill_core::ProviderKind;

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
        let mut mock = MockBillingProvider::new();
        mock.expect_kind()
            .return_const(ProviderKind::HyperbillingAws);
        let registry = ProviderRegistry::new().with(Arc::new(mock));
        assert!(registry.get(ProviderKind::HyperbillingAws).is_ok());
        let err = registry.get(ProviderKind::File).err().unwrap();
        assert_eq!(
            err.to_string(),
            "provider file is not available in this build"
        );
    }
}
