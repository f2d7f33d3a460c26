//! Sync jobs, per-account leases (`JobStore`) and API tokens (`TokenStore`).

#[allow(clippy::wildcard_imports)]
use super::*;

#[async_trait]
impl crate::JobStore for MemoryStore {
    async fn save_job(&self, job: &SyncJob) -> Result<(), StoreError> {
        let mut state = self.lock();
        state.account_mut(job.domain, job.account)?;
        match state.jobs.iter_mut().find(|j| j.id == job.id) {
            Some(existing) => *existing = job.clone(),
            None => state.jobs.push(job.clone()),
        }
        Ok(())
    }

    async fn jobs(
        &self,
        domain: DomainId,
        account: Option<AccountId>,
        limit: u32,
    ) -> Result<Vec<SyncJob>, StoreError> {
        let state = self.lock();
        let mut out: Vec<_> = state
            .jobs
            .iter()
            .filter(|j| j.domain == domain && account.is_none_or(|a| a == j.account))
            .cloned()
            .collect();
        out.sort_by(|a, b| b.started_at.cmp(&a.started_at).then(b.id.cmp(&a.id)));
        out.truncate(limit as usize);
        Ok(out)
    }

    async fn job(&self, domain: DomainId, id: JobId) -> Result<SyncJob, StoreError> {
        self.lock()
            .jobs
            .iter()
            .find(|j| j.domain == domain && j.id == id)
            .cloned()
            .ok_or_else(|| not_found("job", id))
    }

    async fn try_lease(
        &self,
        account: AccountId,
        holder: &str,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let mut state = self.lock();
        match state.leases.iter_mut().find(|(a, _, _)| *a == account) {
            Some(lease) if lease.1 == holder || lease.2 < now => {
                *lease = (account, holder.to_owned(), until);
                Ok(true)
            }
            Some(_) => Ok(false),
            None => {
                state.leases.push((account, holder.to_owned(), until));
                Ok(true)
            }
        }
    }

    async fn release_lease(&self, account: AccountId, holder: &str) -> Result<(), StoreError> {
        self.lock()
            .leases
            .retain(|(a, h, _)| *a != account || h != holder);
        Ok(())
    }

    async fn source_revision(
        &self,
        account: AccountId,
        window: DateRange,
    ) -> Result<Option<String>, StoreError> {
        Ok(self
            .lock()
            .revisions
            .iter()
            .find(|(a, w, _)| *a == account && *w == window)
            .map(|(_, _, r)| r.clone()))
    }

    async fn set_source_revision(
        &self,
        account: AccountId,
        window: DateRange,
        revision: Option<String>,
    ) -> Result<(), StoreError> {
        let mut state = self.lock();
        if !state.accounts.iter().any(|a| a.id == account) {
            return Ok(());
        }
        state
            .revisions
            .retain(|(a, w, _)| *a != account || *w != window);
        if let Some(revision) = revision {
            state.revisions.push((account, window, revision));
        }
        Ok(())
    }
}

#[async_trait]
impl crate::TokenStore for MemoryStore {
    async fn create_token(&self, token: &ApiToken, hash: &[u8; 32]) -> Result<(), StoreError> {
        let mut state = self.lock();
        if state.tokens.iter().any(|(_, h)| h == hash) {
            return Err(StoreError::Conflict("token already exists".into()));
        }
        state.tokens.push((token.clone(), *hash));
        Ok(())
    }

    async fn tokens(&self, domain: DomainId) -> Result<Vec<ApiToken>, StoreError> {
        let state = self.lock();
        let mut out: Vec<_> = state
            .tokens
            .iter()
            .filter(|(t, _)| t.domain == domain)
            .map(|(t, _)| t.clone())
            .collect();
        out.sort_by(|a, b| b.created_at.cmp(&a.created_at).then(b.id.cmp(&a.id)));
        Ok(out)
    }

    async fn revoke_token(&self, domain: DomainId, id: TokenId) -> Result<(), StoreError> {
        let mut state = self.lock();
        let (token, _) = state
            .tokens
            .iter_mut()
            .find(|(t, _)| t.domain == domain && t.id == id)
            .ok_or_else(|| not_found("token", id))?;
        token.revoked_at.get_or_insert_with(Utc::now);
        Ok(())
    }

    async fn token_by_hash(&self, hash: &[u8; 32]) -> Result<Option<ApiToken>, StoreError> {
        let state = self.lock();
        Ok(state
            .tokens
            .iter()
            .find(|(_, h)| h == hash)
            .map(|(t, _)| t.clone()))
    }
}
