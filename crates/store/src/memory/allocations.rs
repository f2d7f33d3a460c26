//! Allocation rules (`AllocationStore`).

#[allow(clippy::wildcard_imports)]
use super::*;

use cloudbill_core::AllocationRule;

#[async_trait]
impl crate::AllocationStore for MemoryStore {
    async fn add_allocation_version(&self, rule: &AllocationRule) -> Result<(), StoreError> {
        let mut state = self.lock();
        let latest = |id| {
            state
                .allocations
                .iter()
                .filter(|r| r.domain == rule.domain && r.id == id)
                .max_by_key(|r| r.version)
        };
        crate::rules::check_allocation_version(rule, latest(rule.id))?;
        if !rule.deleted {
            let mut ids: Vec<cloudbill_core::AllocationId> = state
                .allocations
                .iter()
                .filter(|r| r.domain == rule.domain && r.id != rule.id)
                .map(|r| r.id)
                .collect();
            ids.sort();
            ids.dedup();
            for id in ids {
                if let Some(other) = latest(id) {
                    if !other.deleted && other.name == rule.name {
                        return Err(crate::rules::allocation_name_taken(&rule.name));
                    }
                }
            }
        }
        let mut stored = rule.clone();
        stored.changed_at = stored.changed_at.trunc_subsecs(6);
        state.allocations.push(stored);
        Ok(())
    }

    async fn allocation_versions(
        &self,
        domain: DomainId,
    ) -> Result<Vec<AllocationRule>, StoreError> {
        let state = self.lock();
        let mut out: Vec<AllocationRule> = state
            .allocations
            .iter()
            .filter(|r| r.domain == domain)
            .cloned()
            .collect();
        out.sort_by_key(|r| (r.id, r.version));
        Ok(out)
    }
}
