//! Billing accounts: register (with a mandatory project), look up, verify, move, enable or
//! disable, remove.

use chrono::NaiveDate;
use cloudbill_core::{
    AccountId, AccountState, Assignment, Credentials, Name, ProviderKind, ProviderState,
    ServiceAccount,
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
            .inner
            .store
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
        let credentials = match (provider.needs_credentials(), new.credentials) {
            (true, None) => {
                return Err(
                    ServiceError::Invalid(format!("provider {provider} needs credentials"))
                        .with_hint(Hint::GiveCredentials),
                )
            }
            (false, Some(_)) => {
                return Err(ServiceError::Invalid(format!(
                    "provider {provider} takes no credentials"
                )))
            }
            (false, None) => None,
            (true, Some(c)) => {
                let endpoint = c
                    .endpoint
                    .or_else(|| self.inner.config.default_endpoint.clone())
                    .unwrap_or_default();
                Some(Credentials::new(&c.account, &c.email, c.key, &endpoint)?)
            }
        };
        if verify {
            if let Some(c) = &credentials {
                self.inner.providers.get(provider)?.verify(c).await?;
            }
        }
        let account = ServiceAccount {
            id: AccountId::new(),
            domain: self.domain_id(),
            name,
            provider,
            credentials,
            state: AccountState::Enabled,
            project: project.id,
            created_at: self.now(),
        };
        self.inner.store.create_account(&account).await?;
        Ok(account)
    }

    /// The accounts the principal may see.
    pub async fn accounts(&self, p: &Principal) -> Result<Vec<ServiceAccount>, ServiceError> {
        let all = self.inner.store.accounts(self.domain_id()).await?;
        Ok(all.into_iter().filter(|a| p.may_read(a.project)).collect())
    }

    /// One account, by name or id.
    pub async fn account(&self, p: &Principal, key: &str) -> Result<ServiceAccount, ServiceError> {
        let account = self
            .inner
            .store
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
            .inner
            .store
            .assignments(self.domain_id(), account.id)
            .await?)
    }

    /// Calls the provider with the account's credentials; returns the cloud accounts readable.
    pub async fn verify_account(
        &self,
        p: &Principal,
        key: &str,
    ) -> Result<Vec<String>, ServiceError> {
        p.require_admin("verify billing accounts")?;
        let account = self.account(p, key).await?;
        let Some(c) = &account.credentials else {
            return Err(ServiceError::Invalid(format!(
                "account {:?} uses provider {} and has no credentials to verify",
                account.name.as_str(),
                account.provider
            )));
        };
        Ok(self
            .inner
            .providers
            .get(account.provider)?
            .verify(c)
            .await?)
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
        let store = &self.inner.store;
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
        self.inner
            .store
            .set_account_state(self.domain_id(), account.id, state)
            .await?;
        Ok(ServiceAccount { state, ..account })
    }

    /// Removes an account with its cost data and jobs (admin only).
    pub async fn remove_account(&self, p: &Principal, key: &str) -> Result<(), ServiceError> {
        p.require_admin("remove billing accounts")?;
        let account = self.account(p, key).await?;
        Ok(self
            .inner
            .store
            .delete_account(self.domain_id(), account.id)
            .await?)
    }
}

impl Billing {
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
