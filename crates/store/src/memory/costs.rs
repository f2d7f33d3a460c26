//! Cost segments, window replaces and the change log (`CostStore`).

#[allow(clippy::wildcard_imports)]
use super::*;

#[async_trait]
impl crate::CostStore for MemoryStore {
    async fn replace_window(
        &self,
        domain: DomainId,
        account: AccountId,
        job: JobId,
        window: DateRange,
        records: &[CostRecord],
    ) -> Result<WriteOutcome, StoreError> {
        self.replace(domain, account, job, &Scope::Window(window), records, false)
    }

    async fn replace_window_streamed(
        &self,
        domain: DomainId,
        account: AccountId,
        job: JobId,
        window: Option<DateRange>,
        chunks: &mut dyn crate::ChunkSource,
    ) -> Result<WriteOutcome, StoreError> {
        // Memory holds everything anyway: gather, then write as one replace.
        let mut records = Vec::new();
        let mut span = crate::store::SeenDays::default();
        loop {
            match chunks.next_chunk().await {
                Some(crate::Chunk::Records(chunk)) => {
                    for r in &chunk {
                        check_record(domain, account, window, r)?;
                        span.add(r.date);
                    }
                    records.extend(chunk);
                }
                Some(crate::Chunk::Partition(blob)) => {
                    crate::store::check_partition(window, &blob)?;
                    let decoded = cloudbill_columnar::Partition::decode(blob.as_bytes())
                        .and_then(|p| p.records(domain, account))
                        .map_err(crate::store::refused)?;
                    for r in &decoded {
                        span.add(r.date);
                    }
                    records.extend(decoded);
                }
                Some(crate::Chunk::End) => break,
                None => return Err(crate::store::ended_early()),
            }
        }
        match span.scope(window) {
            Some(scope) => self.replace(domain, account, job, &scope, &records, window.is_none()),
            None => Ok(WriteOutcome::default()),
        }
    }

    async fn cost_partitions(
        &self,
        domain: DomainId,
        range: Option<DateRange>,
    ) -> Result<Vec<(AccountId, Vec<u8>)>, StoreError> {
        use chrono::Datelike;
        let state = self.lock();
        let mut groups: std::collections::BTreeMap<(NaiveDate, AccountId), Vec<&CostRecord>> =
            std::collections::BTreeMap::new();
        let wanted = range.map(crate::store::months);
        for r in state.records.iter().filter(|r| r.domain == domain) {
            let month = r.date.with_day(1).unwrap_or(r.date);
            if wanted.as_ref().is_some_and(|w| !w.contains(&month)) {
                continue;
            }
            groups
                .entry((month, r.service_account))
                .or_default()
                .push(r);
        }
        Ok(groups
            .into_iter()
            .map(|((month, account), rows)| {
                (
                    account,
                    cloudbill_columnar::encode_partition(month, &rows).into_bytes(),
                )
            })
            .collect())
    }

    async fn for_each_partition<'v>(
        &self,
        domain: DomainId,
        range: Option<DateRange>,
        visit: &'v mut crate::store::SinkRef<'v>,
    ) -> Result<(), StoreError> {
        // `cost_partitions` groups by (month, account): already in month order.
        for (account, blob) in self.cost_partitions(domain, range).await? {
            if !visit.partition(account, &blob) {
                break;
            }
        }
        Ok(())
    }

    async fn change_feed(&self) -> Result<Option<crate::ChangeFeed>, StoreError> {
        Ok(None) // one process: its own writes are seen at once
    }

    async fn changes_since(
        &self,
        domain: DomainId,
        version: i64,
    ) -> Result<Option<DataChanges>, StoreError> {
        let state = self.lock();
        if version > state.version || version + 1 < state.log_from.max(1) {
            return Ok(None);
        }
        let changes = state
            .log
            .iter()
            .filter(|(v, d, _)| *v > version && *d == domain)
            .map(|(_, _, c)| *c)
            .collect();
        Ok(Some(DataChanges::new(state.version, changes)))
    }

    async fn for_each_slice<'v>(
        &self,
        domain: DomainId,
        slices: &[DataChange],
        visit: &'v mut crate::store::SinkRef<'v>,
    ) -> Result<(), StoreError> {
        for (account, blob) in self.cost_partitions(domain, None).await? {
            // A partition that does not decode is a broken store, never a slice to skip.
            let month = cloudbill_columnar::Partition::decode(&blob)
                .map_err(|e| StoreError::Corrupt(format!("a cost partition: {e}")))?
                .month;
            if crate::store::in_slices(slices, account, month) && !visit.partition(account, &blob) {
                break;
            }
        }
        Ok(())
    }

    async fn data_version(&self, _domain: DomainId) -> Result<i64, StoreError> {
        Ok(self.lock().version)
    }

    async fn cost_records(
        &self,
        domain: DomainId,
        range: DateRange,
        account: Option<AccountId>,
    ) -> Result<Vec<CostRecord>, StoreError> {
        let state = self.lock();
        Ok(state
            .records
            .iter()
            .filter(|r| {
                r.domain == domain
                    && range.contains(r.date)
                    && account.is_none_or(|a| a == r.service_account)
            })
            .cloned()
            .collect())
    }
}
