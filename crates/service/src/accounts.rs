//! Billing accounts: register (with a mandatory project), look up, verify, move, enable or
//! disable, remove.

use chrono::NaiveDate;
use cloudbill_core::{
    AccountId, AccountState, Assignment, Name, ProviderKind, ProviderSpec, ProviderState,
    ServiceAccount, Settings,
};

use crate::{billing::matches, Billing, Hint, NewAccount, Principal, ServiceError};

impl Billing {
    /// Registers a billing account (admin only). Without `verify` the provider is not called
    /// (it may be unreachable now); with it, the account is stored only if the provider
    /// accepts the credentials.
    pub async fn add_account(
        &self,
        p: &Principal,
        new: NewAccount,
        verify: bool,
    ) -> Result<ServiceAccount, ServiceError> {
        p.require_admin("add billing accounts")?;
        let name = Name::parse(&new.name, "account name")?;
        let provider = self.offered_provider(&new.provider)?;
        let Some(project_key) = new.project.as_deref().filter(|k| !k.trim().is_empty()) else {
            return Err(ServiceError::Invalid(format!(
                "a project is required: every billing account belongs to a project (account {:?})",
                name.as_str()
            ))
            .with_hint(Hint::NameProject));
        };
        let project = self.project(p, project_key).await?;
        let entry = self
            .catalog_store()
            .providers(self.domain_id())
            .await?
            .into_iter()
            .find(|e| e.kind == provider);
        if entry.is_some_and(|e| e.state == ProviderState::Disabled) {
            return Err(
                ServiceError::Conflict(format!("provider {provider} is disabled"))
                    .with_hint(Hint::EnableProvider(provider.to_string())),
            );
        }
        let settings = self
            .checked_settings(provider, &new.settings)
            .map_err(|e| e.with_hint(Hint::GiveSettings(provider.to_string())))?;
        if verify && provider != ProviderKind::File {
            self.inner
                .providers
                .get(provider)?
                .verify(&settings)
                .await?;
        }
        let account = ServiceAccount {
            id: AccountId::new(),
            domain: self.domain_id(),
            name,
            provider,
            settings,
            state: AccountState::Enabled,
            project: project.id,
            created_at: self.now(),
        };
        self.catalog_store().create_account(&account).await?;
        Ok(account)
    }

    /// The accounts the principal may see.
    pub async fn accounts(&self, p: &Principal) -> Result<Vec<ServiceAccount>, ServiceError> {
        let all = self.catalog_store().accounts(self.domain_id()).await?;
        Ok(all.into_iter().filter(|a| p.may_read(a.project)).collect())
    }

    /// One account, by name or id.
    pub async fn account(&self, p: &Principal, key: &str) -> Result<ServiceAccount, ServiceError> {
        let account = self
            .catalog_store()
            .accounts(self.domain_id())
            .await?
            .into_iter()
            .find(|a| matches(&a.name, a.id.as_uuid(), key))
            .ok_or_else(|| ServiceError::NotFound {
                what: "service account",
                key: key.to_owned(),
            })?;
        if !p.may_read(account.project) {
            // As for projects: indistinguishable from an account that does not exist.
            return Err(ServiceError::NotFound {
                what: "service account",
                key: key.to_owned(),
            });
        }
        Ok(account)
    }

    /// The project history of an account.
    pub async fn assignments(
        &self,
        p: &Principal,
        key: &str,
    ) -> Result<Vec<Assignment>, ServiceError> {
        let account = self.account(p, key).await?;
        Ok(self
            .catalog_store()
            .assignments(self.domain_id(), account.id)
            .await?)
    }

    /// Calls the provider with the account's settings; returns the cloud accounts readable.
    pub async fn verify_account(
        &self,
        p: &Principal,
        key: &str,
    ) -> Result<Vec<String>, ServiceError> {
        p.require_admin("verify billing accounts")?;
        let account = self.account(p, key).await?;
        if account.provider == ProviderKind::File {
            return Err(ServiceError::Invalid(format!(
                "account {:?} uses provider file: it has nothing to verify",
                account.name.as_str(),
            )));
        }
        Ok(self
            .inner
            .providers
            .get(account.provider)?
            .verify(&account.settings)
            .await?)
    }

    /// Changes an account's settings (admin only): each value or secret in `update`
    /// replaces the account's; the result is checked as a new account's would be (and, with
    /// `verify`, by the provider) before it is stored.
    pub async fn update_account(
        &self,
        p: &Principal,
        key: &str,
        update: &Settings,
        verify: bool,
    ) -> Result<ServiceAccount, ServiceError> {
        p.require_admin("change billing accounts")?;
        let mut account = self.account(p, key).await?;
        let settings = self.checked_settings(account.provider, &account.settings.merged(update))?;
        if verify && account.provider != ProviderKind::File {
            self.inner
                .providers
                .get(account.provider)?
                .verify(&settings)
                .await?;
        }
        self.catalog_store()
            .set_account_settings(self.domain_id(), account.id, &settings)
            .await?;
        account.settings = settings;
        Ok(account)
    }

    /// `given` as settings of `provider`: every name one it declares, every value checked,
    /// every required one there (after the provider fills its defaults).
    fn checked_settings(
        &self,
        provider: ProviderKind,
        given: &Settings,
    ) -> Result<Settings, ServiceError> {
        let spec = self.inner.providers.spec(provider)?;
        let checked = spec.checked(given.values(), given.secrets())?;
        // The provider's defaults first (a deployment's endpoint), then every required one.
        let prepared = if provider == ProviderKind::File {
            checked
        } else {
            self.inner.providers.get(provider)?.prepare(checked)?
        };
        spec.complete(&prepared)?;
        Ok(prepared)
    }

    /// What every provider of this build declares, with its state in the domain (admin only).
    pub async fn provider_views(&self, p: &Principal) -> Result<Vec<ProviderView>, ServiceError> {
        p.require_admin("list providers")?;
        let states = self.catalog_store().providers(self.domain_id()).await?;
        Ok(self
            .inner
            .providers
            .specs()
            .into_iter()
            .map(|spec| ProviderView {
                spec,
                enabled: states
                    .iter()
                    .find(|e| e.kind == spec.kind)
                    .is_none_or(|e| e.state == ProviderState::Enabled),
            })
            .collect())
    }

    /// What every provider of this build declares (`file` included), for documents.
    pub fn provider_specs(&self) -> Vec<&'static ProviderSpec> {
        self.inner.providers.specs()
    }

    /// One provider (admin only): `NotFound` for a kind this build does not have.
    pub async fn provider_view(
        &self,
        p: &Principal,
        kind: &str,
    ) -> Result<ProviderView, ServiceError> {
        let kind = kind.trim().to_ascii_lowercase();
        self.provider_views(p)
            .await?
            .into_iter()
            .find(|v| v.spec.kind.as_str() == kind)
            .ok_or_else(|| ServiceError::NotFound {
                what: "provider",
                key: cloudbill_core::cut(&kind, 64).into_owned(),
            })
    }

    /// Moves an account to another project: for its whole history (`from = None`, a
    /// correction) or from a day on (admin only).
    pub async fn move_account(
        &self,
        p: &Principal,
        key: &str,
        project: &str,
        from: Option<NaiveDate>,
    ) -> Result<(), ServiceError> {
        p.require_admin("move billing accounts")?;
        if let Some(day) = from {
            cloudbill_core::check_day(day)?;
        }
        let account = self.account(p, key).await?;
        let project = self.project(p, project).await?;
        let store = self.catalog_store();
        let history = store.assignments(self.domain_id(), account.id).await?;
        let moved = ServiceAccount::moved(&history, project.id, from);
        Ok(store
            .set_assignments(self.domain_id(), account.id, &history, &moved)
            .await?)
    }

    /// Enables or disables an account (admin only).
    pub async fn set_account_state(
        &self,
        p: &Principal,
        key: &str,
        state: AccountState,
    ) -> Result<ServiceAccount, ServiceError> {
        p.require_admin("enable or disable billing accounts")?;
        let account = self.account(p, key).await?;
        self.catalog_store()
            .set_account_state(self.domain_id(), account.id, state)
            .await?;
        Ok(ServiceAccount { state, ..account })
    }

    /// Removes an account with its cost data and jobs (admin only).
    pub async fn remove_account(&self, p: &Principal, key: &str) -> Result<(), ServiceError> {
        p.require_admin("remove billing accounts")?;
        let account = self.account(p, key).await?;
        Ok(self
            .catalog_store()
            .delete_account(self.domain_id(), account.id)
            .await?)
    }

    /// The provider kind `name` names, if this deployment offers it (its registry's kinds and
    /// file imports): a kind is any well-formed name, an account or a switch needs one offered.
    pub(crate) fn offered_provider(&self, name: &str) -> Result<ProviderKind, ServiceError> {
        let kind: ProviderKind = name.parse()?;
        if kind == ProviderKind::File || self.inner.providers.get(kind).is_ok() {
            return Ok(kind);
        }
        let offered: Vec<&str> = self
            .inner
            .providers
            .kinds()
            .chain([ProviderKind::File])
            .map(ProviderKind::as_str)
            .collect();
        Err(ServiceError::Invalid(format!(
            "{name:?} is not a valid provider (expected one of: {})",
            offered.join(", ")
        )))
    }
}

/// A provider as a domain sees it: what it declares and whether it is enabled.
#[derive(Debug, Clone, Copy)]
pub struct ProviderView {
    /// Kind, title and settings.
    pub spec: &'static ProviderSpec,
    /// Whether accounts of it sync and new ones can be added.
    pub enabled: bool,
}
