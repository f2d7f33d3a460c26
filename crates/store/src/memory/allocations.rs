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
        match (rule.version, latest(rule.id)) {
            (1, Some(_)) => {
                return Err(StoreError::Conflict(format!(
                    "allocation rule {} exists already",
                    rule.id
                )))
            }
            (1, None) => {}
            (_, None) => return Err(not_found("allocation rule", rule.id)),
            (v, Some(last)) if last.version + 1 != v => {
                return Err(StoreError::Conflict(format!(
                    "allocation rule {:?} was changed meanwhile (it is at version {}): nothing was written",
                    last.name.as_str(),
                    last.version
                )))
            }
            _ => {}
        }
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
                        return Err(StoreError::Conflict(format!(
                            "an allocation rule named {:?} exists already",
                            rule.name.as_str()
                        )));
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
