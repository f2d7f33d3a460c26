//! Domains, providers, project groups, projects and accounts (`CatalogStore`).

#[allow(clippy::wildcard_imports)]
use super::*;

#[async_trait]
impl crate::CatalogStore for MemoryStore {
    async fn ensure_domain(&self, name: &Name) -> Result<Domain, StoreError> {
        let mut state = self.lock();
        if let Some(d) = state.domains.iter().find(|d| &d.name == name) {
            return Ok(d.clone());
        }
        let domain = Domain {
            id: DomainId::new(),
            name: name.clone(),
            billing_enabled: false,
            created_at: Utc::now(),
            disabled_at: None,
        };
        state.domains.push(domain.clone());
        for kind in ProviderKind::ALL {
            state.providers.push((
                domain.id,
                ProviderEntry {
                    kind,
                    state: ProviderState::Enabled,
                },
            ));
        }
        Ok(domain)
    }

    async fn set_billing_enabled(
        &self,
        domain: DomainId,
        enabled: bool,
    ) -> Result<Domain, StoreError> {
        let mut state = self.lock();
        let d = state
            .domains
            .iter_mut()
            .find(|d| d.id == domain)
            .ok_or_else(|| not_found("domain", domain))?;
        d.billing_enabled = enabled;
        Ok(d.clone())
    }

    async fn domains(&self) -> Result<Vec<Domain>, StoreError> {
        let mut out = self.lock().domains.clone();
        out.sort_by(|a, b| a.name.as_str().cmp(b.name.as_str()));
        Ok(out)
    }

    async fn domain(&self, id: DomainId) -> Result<Domain, StoreError> {
        self.lock()
            .domains
            .iter()
            .find(|d| d.id == id)
            .cloned()
            .ok_or_else(|| not_found("domain", id))
    }

    async fn set_domain_disabled(
        &self,
        domain: DomainId,
        at: Option<chrono::DateTime<Utc>>,
    ) -> Result<Domain, StoreError> {
        let mut state = self.lock();
        let d = state
            .domains
            .iter_mut()
            .find(|d| d.id == domain)
            .ok_or_else(|| not_found("domain", domain))?;
        d.disabled_at = at.map(|t| t.trunc_subsecs(6));
        Ok(d.clone())
    }

    async fn providers(&self, domain: DomainId) -> Result<Vec<ProviderEntry>, StoreError> {
        let state = self.lock();
        Ok(state
            .providers
            .iter()
            .filter(|(d, _)| *d == domain)
            .map(|(_, p)| *p)
            .collect())
    }

    async fn set_provider_state(
        &self,
        domain: DomainId,
        kind: ProviderKind,
        new_state: ProviderState,
    ) -> Result<ProviderEntry, StoreError> {
        let mut state = self.lock();
        let entry = state
            .providers
            .iter_mut()
            .find(|(d, p)| *d == domain && p.kind == kind)
            .ok_or_else(|| not_found("provider", kind))?;
        entry.1.state = new_state;
        Ok(entry.1)
    }

    async fn create_group(&self, group: &ProjectGroup) -> Result<(), StoreError> {
        let mut state = self.lock();
        if state
            .groups
            .iter()
            .any(|g| g.domain == group.domain && g.name == group.name)
        {
            return Err(StoreError::exists("project group", &group.name));
        }
        if let Some(parent) = group.parent {
            state.require_group(group.domain, parent)?;
        }
        state.groups.push(group.clone());
        state.bump(group.domain, [DataChange::Catalog]);
        Ok(())
    }

    async fn groups(&self, domain: DomainId) -> Result<Vec<ProjectGroup>, StoreError> {
        let state = self.lock();
        let mut out: Vec<_> = state
            .groups
            .iter()
            .filter(|g| g.domain == domain)
            .cloned()
            .collect();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    async fn create_project(&self, project: &Project) -> Result<(), StoreError> {
        let mut state = self.lock();
        if state
            .projects
            .iter()
            .any(|p| p.domain == project.domain && p.name == project.name)
        {
            return Err(StoreError::exists("project", &project.name));
        }
        if let Some(group) = project.group {
            state.require_group(project.domain, group)?;
        }
        state.projects.push(project.clone());
        state.bump(project.domain, [DataChange::Catalog]);
        Ok(())
    }

    async fn projects(&self, domain: DomainId) -> Result<Vec<Project>, StoreError> {
        let state = self.lock();
        let mut out: Vec<_> = state
            .projects
            .iter()
            .filter(|p| p.domain == domain)
            .cloned()
            .collect();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    async fn delete_project(&self, domain: DomainId, id: ProjectId) -> Result<(), StoreError> {
        let mut state = self.lock();
        if !state.project_exists(domain, id) {
            return Err(not_found("project", id));
        }
        if state.assignments.iter().any(|(_, a)| a.project == id) {
            return Err(StoreError::project_in_use());
        }
        state.projects.retain(|p| p.id != id);
        state.bump(domain, [DataChange::Catalog]);
        Ok(())
    }

    async fn create_account(&self, account: &ServiceAccount) -> Result<(), StoreError> {
        let mut state = self.lock();
        if state
            .accounts
            .iter()
            .any(|a| a.domain == account.domain && a.name == account.name)
        {
            return Err(StoreError::exists("service account", &account.name));
        }
        if !state.project_exists(account.domain, account.project) {
            return Err(not_found("project", account.project));
        }
        state.accounts.push(account.clone());
        state.assignments.push((
            account.id,
            Assignment {
                project: account.project,
                from: None,
            },
        ));
        state.bump(account.domain, [DataChange::Catalog]);
        Ok(())
    }

    async fn accounts(&self, domain: DomainId) -> Result<Vec<ServiceAccount>, StoreError> {
        let state = self.lock();
        let mut out: Vec<_> = state
            .accounts
            .iter()
            .filter(|a| a.domain == domain)
            .cloned()
            .collect();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    async fn account(&self, domain: DomainId, id: AccountId) -> Result<ServiceAccount, StoreError> {
        let mut state = self.lock();
        state.account_mut(domain, id).map(|a| a.clone())
    }

    async fn set_account_state(
        &self,
        domain: DomainId,
        id: AccountId,
        new_state: AccountState,
    ) -> Result<(), StoreError> {
        let mut state = self.lock();
        state.account_mut(domain, id)?.state = new_state;
        Ok(())
    }

    async fn set_account_settings(
        &self,
        domain: DomainId,
        id: AccountId,
        settings: &cloudbill_core::Settings,
    ) -> Result<(), StoreError> {
        let mut state = self.lock();
        state.account_mut(domain, id)?.settings = settings.clone();
        Ok(())
    }

    async fn delete_account(&self, domain: DomainId, id: AccountId) -> Result<(), StoreError> {
        let mut state = self.lock();
        state.account_mut(domain, id)?;
        state.accounts.retain(|a| a.id != id);
        state.assignments.retain(|(a, _)| *a != id);
        state.records.retain(|r| r.service_account != id);
        state.jobs.retain(|j| j.account != id);
        state.leases.retain(|(a, _, _)| *a != id);
        state.revisions.retain(|(a, _, _)| *a != id);
        state.invoices.retain(|(_, i)| i.account != id);
        state.bump(domain, [DataChange::Catalog, DataChange::Account(id)]);
        Ok(())
    }

    async fn set_assignments(
        &self,
        domain: DomainId,
        id: AccountId,
        expected: &[Assignment],
        history: &[Assignment],
    ) -> Result<(), StoreError> {
        crate::store::check_history(history)?;
        let mut state = self.lock();
        if let Some(missing) = history
            .iter()
            .find(|a| !state.project_exists(domain, a.project))
        {
            return Err(not_found("project", missing.project));
        }
        state.account_mut(domain, id)?;
        let current: Vec<Assignment> = state
            .assignments
            .iter()
            .filter(|(a, _)| *a == id)
            .map(|(_, asg)| *asg)
            .collect();
        if current != expected {
            return Err(StoreError::moved_meanwhile());
        }
        state.assignments.retain(|(a, _)| *a != id);
        state
            .assignments
            .extend(history.iter().map(|asg| (id, *asg)));
        if let Some(last) = history.last() {
            state.account_mut(domain, id)?.project = last.project;
        }
        state.bump(domain, [DataChange::Catalog]);
        Ok(())
    }

    async fn assignments(
        &self,
        domain: DomainId,
        id: AccountId,
    ) -> Result<Vec<Assignment>, StoreError> {
        let mut state = self.lock();
        state.account_mut(domain, id)?;
        let mut out: Vec<_> = state
            .assignments
            .iter()
            .filter(|(a, _)| *a == id)
            .map(|(_, asg)| *asg)
            .collect();
        out.sort_by_key(|a| a.from);
        Ok(out)
    }

    async fn assignment_histories(
        &self,
        domain: DomainId,
    ) -> Result<std::collections::BTreeMap<AccountId, Vec<Assignment>>, StoreError> {
        let state = self.lock();
        let mut out: std::collections::BTreeMap<AccountId, Vec<Assignment>> =
            std::collections::BTreeMap::new();
        for (account, asg) in &state.assignments {
            if state
                .accounts
                .iter()
                .any(|a| a.id == *account && a.domain == domain)
            {
                out.entry(*account).or_default().push(*asg);
            }
        }
        for history in out.values_mut() {
            history.sort_by_key(|a| a.from);
        }
        Ok(out)
    }
}
