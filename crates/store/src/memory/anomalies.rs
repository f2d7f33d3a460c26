//! Anomaly monitors and the anomalies they keep (`AnomalyStore`).

#[allow(clippy::wildcard_imports)]
use super::*;

#[async_trait]
impl crate::AnomalyStore for MemoryStore {
    async fn create_monitor(&self, monitor: &cloudbill_core::Monitor) -> Result<(), StoreError> {
        let mut state = self.lock();
        if state
            .monitors
            .iter()
            .any(|m| m.domain == monitor.domain && m.name == monitor.name)
        {
            return Err(StoreError::exists("anomaly monitor", &monitor.name));
        }
        state.monitors.push(monitor.clone());
        Ok(())
    }

    async fn monitors(&self, domain: DomainId) -> Result<Vec<cloudbill_core::Monitor>, StoreError> {
        let state = self.lock();
        let mut out: Vec<_> = state
            .monitors
            .iter()
            .filter(|m| m.domain == domain)
            .cloned()
            .collect();
        out.sort_by(|a, b| a.name.as_str().cmp(b.name.as_str()));
        Ok(out)
    }

    async fn delete_monitor(
        &self,
        domain: DomainId,
        id: cloudbill_core::MonitorId,
    ) -> Result<(), StoreError> {
        let mut state = self.lock();
        let before = state.monitors.len();
        state
            .monitors
            .retain(|m| !(m.domain == domain && m.id == id));
        if state.monitors.len() == before {
            return Err(not_found("anomaly monitor", id));
        }
        state.anomalies.retain(|a| a.monitor != id);
        Ok(())
    }

    async fn stored_anomalies(
        &self,
        domain: DomainId,
        monitor: Option<cloudbill_core::MonitorId>,
    ) -> Result<Vec<cloudbill_core::StoredAnomaly>, StoreError> {
        let state = self.lock();
        let mut out: Vec<_> = state
            .anomalies
            .iter()
            .filter(|a| a.domain == domain && monitor.is_none_or(|m| a.monitor == m))
            .cloned()
            .collect();
        out.sort_by(|a, b| (a.start, &a.id).cmp(&(b.start, &b.id)));
        Ok(out)
    }

    async fn apply_anomalies(
        &self,
        domain: DomainId,
        changes: &[crate::AnomalyChange],
    ) -> Result<Vec<EventId>, StoreError> {
        let mut state = self.lock();
        let mut next = state.clone();
        let mut stored = Vec::new();
        for c in changes {
            let a = &c.anomaly;
            let at = next
                .anomalies
                .iter()
                .position(|x| x.monitor == a.monitor && x.id == a.id);
            let applies = match (c.expected_version, at) {
                (None, None) => next
                    .monitors
                    .iter()
                    .any(|m| m.domain == domain && m.id == a.monitor),
                (Some(v), Some(i)) => {
                    next.anomalies[i].version == v && next.anomalies[i].domain == domain
                }
                _ => false,
            };
            if !applies {
                continue;
            }
            let mut a = a.clone();
            a.domain = domain;
            match at {
                Some(i) => next.anomalies[i] = a,
                None => next.anomalies.push(a),
            }
            if let Some((event, channels)) = &c.event {
                next.queue_event(domain, event, channels);
                stored.push(event.id);
            }
        }
        *state = next;
        Ok(stored)
    }

    async fn set_anomaly_state(
        &self,
        domain: DomainId,
        monitors: &[cloudbill_core::MonitorId],
        id: &str,
        to: cloudbill_core::AnomalyState,
        at: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        let mut state = self.lock();
        let mut n = 0;
        for a in state
            .anomalies
            .iter_mut()
            .filter(|a| a.domain == domain && a.id == id && monitors.contains(&a.monitor))
        {
            a.state = to;
            a.updated_at = at;
            a.version += 1;
            n += 1;
        }
        Ok(n)
    }
}

/// Adds `items` to a domain's `rows`, all or nothing: each item passes `check`, then one
/// already stored under the same key (`same`) is kept unless `conflict` says how it differs
/// (the whole call then fails with that, nothing added); returns how many were new.
pub(super) fn put_all<T: Clone>(
    rows: &mut Vec<(DomainId, T)>,
    domain: DomainId,
    items: &[T],
    check: impl Fn(&T) -> Result<(), StoreError>,
    same: impl Fn(&T, &T) -> bool,
    conflict: impl Fn(&T, &T) -> Option<String>,
) -> Result<usize, StoreError> {
    let mut next = rows.clone();
    let mut new = 0;
    for item in items {
        check(item)?;
        match next.iter().find(|(d, x)| *d == domain && same(x, item)) {
            Some((_, x)) => {
                if let Some(why) = conflict(x, item) {
                    return Err(StoreError::Conflict(why));
                }
            }
            None => {
                next.push((domain, item.clone()));
                new += 1;
            }
        }
    }
    *rows = next;
    Ok(new)
}
