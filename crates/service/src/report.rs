//! Reports: the query through the engine — a warm one per data version with an answer
//! cache (the server), or one built for the query (the CLI) — and the member rules.

use std::collections::BTreeSet;
use std::sync::Arc;

use cloudbill_aggregate::{
    Answer, Catalog, CatalogAccount, CatalogGroup, CatalogProject, Engine, GroupKey, Query, Report,
};

use cloudbill_core::CostMetric;

use crate::{billing::AnswerCache, Billing, Principal, ServiceError};

/// Sets its flag when dropped: the scan of a report whose caller is gone stops.
#[derive(Default)]
struct StopOnDrop(Arc<std::sync::atomic::AtomicBool>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.store(true, std::sync::atomic::Ordering::Relaxed);
    }
}

/// Runs CPU work — a scan, a report built, an answer rendered — on the process's CPU pool:
/// one thread per core, shared by every domain, and at most one piece of work per core at
/// once (the rest wait their turn here, where a caller that goes away stops waiting). The
/// async workers meanwhile keep answering health checks and small requests. Fixed threads,
/// not the blocking pool's: the work allocates and frees megabytes, and the memory a thread
/// frees is reused by that thread's next piece of work rather than kept by idle threads.
pub async fn on_cpu<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, ServiceError> {
    type Job = Box<dyn FnOnce() + Send>;
    static CPU: std::sync::OnceLock<(tokio::sync::Semaphore, std::sync::mpsc::Sender<Job>)> =
        std::sync::OnceLock::new();
    let (turns, jobs) = CPU.get_or_init(|| {
        let cores = std::thread::available_parallelism().map_or(2, usize::from);
        let (tx, rx) = std::sync::mpsc::channel::<Job>();
        let rx = Arc::new(std::sync::Mutex::new(rx));
        for i in 0..cores {
            let rx = Arc::clone(&rx);
            // A pool that cannot start runs nothing: `on_cpu` then says so.
            let _ = std::thread::Builder::new()
                .name(format!("cloudbill-cpu-{i}"))
                .spawn(move || loop {
                    let job = rx
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                        .recv();
                    match job {
                        Ok(job) => job(),
                        Err(_) => return,
                    }
                });
        }
        (tokio::sync::Semaphore::new(cores), tx)
    });
    let _turn = turns
        .acquire()
        .await
        .map_err(|e| ServiceError::Internal(format!("no CPU turn: {e}")))?;
    let (tx, rx) = tokio::sync::oneshot::channel();
    let job: Job = Box::new(move || {
        let done = std::panic::catch_unwind(std::panic::AssertUnwindSafe(work));
        // The caller stopped waiting (its request ended): nobody needs the answer.
        let _ = tx.send(done);
    });
    jobs.send(job)
        .map_err(|_| ServiceError::Internal("the CPU pool is gone".into()))?;
    match rx.await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(_)) => Err(ServiceError::Internal("CPU work panicked".into())),
        Err(_) => Err(ServiceError::Internal("the CPU pool did not answer".into())),
    }
}

impl Billing {
    /// Answers a report query. Project members must filter by project or project group and
    /// see only their own projects.
    pub async fn report(&self, p: &Principal, query: &Query) -> Result<Report, ServiceError> {
        let answer = self.answer_shared(p, query).await?;
        to_report(answer).await
    }

    /// Loads the warm engine now (the server at start, so its first reports are fast); does
    /// nothing without a warm engine or with billing off.
    pub async fn warm_up(&self) -> Result<(), ServiceError> {
        if !self.inner.config.warm_engine || !self.domain().await?.billing_enabled {
            return Ok(());
        }
        self.refresh_engine().await?;
        Ok(())
    }

    /// Brings the warm engine to the store's data version if it moved since it was loaded
    /// (a replica told of another's commit; a write before it returns) — updating only the
    /// slices that changed; does nothing when no warm engine is loaded. Reports asking
    /// meanwhile are answered from the engine there before.
    pub async fn refresh(&self) -> Result<bool, ServiceError> {
        if !self.inner.config.warm_engine || self.engine_bytes() == 0 {
            return Ok(false);
        }
        Ok(self.refresh_engine().await? != crate::warm::Refreshed::Current)
    }

    /// [`Billing::report`]'s answer before its text (ids and sums): a server writes its JSON
    /// straight from it ([`Answer::write_json`]). With a warm engine, a repeated question over
    /// unchanged data is answered from a cache without scanning again.
    pub async fn answer_shared(
        &self,
        p: &Principal,
        query: &Query,
    ) -> Result<Arc<Answer>, ServiceError> {
        // Checked on every call: turning billing off must not leave cached answers reachable.
        self.require_billing().await?;
        // The rules go into the query (and so into the cache key): a changed rule is a new
        // question.
        let allocated = self.with_allocation(p, query).await?;
        let query = allocated.as_ref().unwrap_or(query);
        if !self.inner.config.warm_engine {
            return Ok(Arc::new(self.compute_answer(p, query, None).await?.0));
        }
        let version = self.cost_store().data_version(self.domain_id()).await?;
        let key = (p.clone(), query.clone());
        {
            let cache = self
                .inner
                .answers
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if cache.version == version {
                if let Some(hit) = cache.answers.get(&key) {
                    return Ok(Arc::clone(hit));
                }
            }
        }
        let (answer, used) = self.compute_answer(p, query, Some(version)).await?;
        let answer = Arc::new(answer);
        let size = answer.memory_bytes() + key_bytes(&key);
        let config = &self.inner.config;
        if size > config.answer_max_bytes || used != Some(version) {
            // Too big to keep (computed each time), or answered by an engine of another
            // version while this one loads.
            return Ok(answer);
        }
        let mut cache = self
            .inner
            .answers
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if cache.version != version || cache.bytes + size > config.answer_cache_bytes {
            *cache = AnswerCache {
                version,
                ..AnswerCache::default()
            };
        }
        cache.bytes += size;
        cache.answers.insert(key, Arc::clone(&answer));
        Ok(answer)
    }

    /// `version`: the data version of the warm engine to use, or `None` to build one for the
    /// query's months. Returns the answer and the data version of the warm engine that gave
    /// it (`None`: a one-off engine).
    async fn compute_answer(
        &self,
        p: &Principal,
        query: &Query,
        version: Option<i64>,
    ) -> Result<(Answer, Option<i64>), ServiceError> {
        let max = self.inner.config.max_query_days;
        if query.range.days() > max {
            return Err(cloudbill_aggregate::QueryError::RangeTooLong {
                days: query.range.days(),
                max,
            }
            .into());
        }
        let mut query = query.clone();
        let (engine, used) = self.engine_for(&query, version).await?;
        Self::scope(p, &mut query, &engine, true)?;
        // The scan is CPU work (milliseconds to seconds): on the CPU pool. A caller that goes
        // away (its future dropped: the client closed the connection, the request timed out)
        // stops the scan too.
        let stop = StopOnDrop::default();
        let flag = Arc::clone(&stop.0);
        let answer = on_cpu(move || engine.answer_until(&query, &flag)).await??;
        Ok((answer, used))
    }

    /// Narrows `query` to what `p` may see: a member's query must name its own projects
    /// (with `must_name`; else it is narrowed to all of them); an admin's is unchanged.
    fn scope(
        p: &Principal,
        query: &mut Query,
        engine: &Engine,
        must_name: bool,
    ) -> Result<(), ServiceError> {
        if let Principal::ProjectMember { projects } = p {
            if must_name
                && !query.filters.contains_key(&GroupKey::Project)
                && !query.filters.contains_key(&GroupKey::ProjectGroup)
            {
                return Err(ServiceError::Forbidden(
                    "the consolidated view is for domain admins; filter by one of your projects"
                        .into(),
                ));
            }
            let mine: Vec<&CatalogProject> = engine
                .catalog()
                .projects
                .iter()
                .filter(|x| projects.contains(&x.id))
                .collect();
            if let Some(asked) = query.filters.get(&GroupKey::Project) {
                for key in asked {
                    if !mine.iter().any(|x| {
                        cloudbill_core::Lookup::parse(key).matches(&x.name, x.id.as_uuid())
                    }) {
                        // As for a project that does not exist (see `project`).
                        return Err(ServiceError::NotFound {
                            what: "project",
                            key: key.clone(),
                        });
                    }
                }
            } else {
                query.filters.insert(
                    GroupKey::Project,
                    mine.iter().map(|x| x.id.to_string()).collect(),
                );
            }
            Self::hide_others(projects, query, engine)?;
        }
        Ok(())
    }

    /// A member's filter on an account or a project group it cannot see is answered as one
    /// on a name that does not exist (`unknown … in filter`): the answer never tells "exists
    /// but not yours" from "does not exist". It sees the accounts ever assigned to one of its
    /// projects and the groups holding one of them (with their parent groups).
    fn hide_others(
        projects: &[cloudbill_core::ProjectId],
        query: &Query,
        engine: &Engine,
    ) -> Result<(), ServiceError> {
        let catalog = engine.catalog();
        let unknown = |what: &'static str, value: &str| {
            ServiceError::Query(cloudbill_aggregate::QueryError::UnknownFilterValue {
                what,
                value: value.to_owned(),
            })
        };
        if let Some(asked) = query.filters.get(&GroupKey::ServiceAccount) {
            for key in asked {
                let lookup = cloudbill_core::Lookup::parse(key);
                let visible = catalog.accounts.iter().any(|a| {
                    lookup.matches(&a.name, a.id.as_uuid())
                        && a.history.iter().any(|h| projects.contains(&h.project))
                });
                if !visible {
                    return Err(unknown("service_account", key));
                }
            }
        }
        if let Some(asked) = query.filters.get(&GroupKey::ProjectGroup) {
            // The groups holding a member's project, and every group above them.
            let mut seen = BTreeSet::new();
            for p in catalog.projects.iter().filter(|p| projects.contains(&p.id)) {
                let mut at = p.group;
                // Bounded: a tree of groups has no cycle, but never trust it.
                for _ in 0..64 {
                    let Some(g) = at else { break };
                    if !seen.insert(g) {
                        break;
                    }
                    at = catalog
                        .groups
                        .iter()
                        .find(|x| x.id == g)
                        .and_then(|x| x.parent);
                }
            }
            for key in asked {
                let lookup = cloudbill_core::Lookup::parse(key);
                let visible = catalog
                    .groups
                    .iter()
                    .any(|g| seen.contains(&g.id) && lookup.matches(&g.name, g.id.as_uuid()));
                if !visible {
                    return Err(unknown("project_group", key));
                }
            }
        }
        Ok(())
    }

    /// The tags of the records in `range` — a member's: of its projects — optionally of one
    /// `project`: each key with its values (the most used first, at most
    /// `MAX_TAG_VALUES_LISTED`) and how many records carry each. Group a report by one with
    /// `tag:KEY`.
    pub async fn tags(
        &self,
        p: &Principal,
        range: cloudbill_core::DateRange,
        project: Option<&str>,
    ) -> Result<Vec<cloudbill_aggregate::TagSummary>, ServiceError> {
        self.require_billing().await?;
        let max = self.inner.config.max_query_days;
        if range.days() > max {
            return Err(cloudbill_aggregate::QueryError::RangeTooLong {
                days: range.days(),
                max,
            }
            .into());
        }
        let mut query = Query::new(range, cloudbill_core::Granularity::Monthly);
        if let Some(project) = project {
            query
                .filters
                .insert(GroupKey::Project, vec![project.to_owned()]);
        }
        let version = if self.inner.config.warm_engine {
            Some(self.cost_store().data_version(self.domain_id()).await?)
        } else {
            None
        };
        // A one-off engine loads only the dimensions its query names: name the tags.
        let mut loading = query.clone();
        loading.group_by.push(GroupKey::tag("key")?);
        let (engine, _) = self.engine_for(&loading, version).await?;
        Self::scope(p, &mut query, &engine, false)?;
        tokio::task::spawn_blocking(move || engine.tag_summary(&query))
            .await
            .map_err(|e| ServiceError::Internal(format!("the tags' scan stopped: {e}")))?
            .map_err(ServiceError::from)
    }

    /// The engine to answer `query`: the warm one at data version `version` (brought to it
    /// when the version moved, see [`Billing::warm_engine`]) with the version it holds, or,
    /// with `None`, one built for this query alone — the months of its range and the
    /// dimensions it names.
    async fn engine_for(
        &self,
        query: &Query,
        version: Option<i64>,
    ) -> Result<(Arc<Engine>, Option<i64>), ServiceError> {
        // The warm engine holds billed cost; another metric is loaded for its query.
        if let Some(version) = version.filter(|_| query.metric == CostMetric::Billed) {
            let (engine, at) = self.warm_engine(version).await?;
            return Ok((engine, Some(at)));
        }
        // The dimensions it names, and those its allocation rules read.
        let rules = query.allocation.iter().flat_map(|a| &a.slices);
        let keys: Vec<GroupKey> = query
            .group_by
            .iter()
            .chain(query.filters.keys())
            .chain(rules.flat_map(|s| s.source.keys().chain([&s.target])))
            .cloned()
            .collect();
        let engine = self
            .load_engine(Some(query.range), Some(&keys), query.metric)
            .await?;
        Ok((Arc::new(engine), None))
    }

    /// Builds an engine from the store's partitions of the months overlapping `range` (all with
    /// `None`), streamed one at a time; with `keys`, only the dimensions they name.
    pub(crate) async fn load_engine(
        &self,
        range: Option<cloudbill_core::DateRange>,
        keys: Option<&[GroupKey]>,
        metric: CostMetric,
    ) -> Result<Engine, ServiceError> {
        let mut loader = Engine::loader(self.catalog().await?).metric(metric);
        if let Some(keys) = keys {
            loader = loader.only(keys);
        }
        let mut failed = None;
        self.cost_store()
            .for_each_partition(
                self.domain_id(),
                range,
                &mut |account, blob: &[u8]| match loader.add(account, blob) {
                    Ok(()) => true,
                    Err(e) => {
                        failed = Some(e);
                        false
                    }
                },
            )
            .await?;
        match failed {
            Some(e) => Err(e.into()),
            None => Ok(loader.finish()),
        }
    }

    pub(crate) async fn catalog(&self) -> Result<Catalog, ServiceError> {
        let store = self.catalog_store();
        let d = self.domain_id();
        let mut histories = store.assignment_histories(d).await?;
        let accounts = store
            .accounts(d)
            .await?
            .into_iter()
            .map(|a| CatalogAccount {
                id: a.id,
                name: a.name.to_string(),
                history: histories.remove(&a.id).unwrap_or_default(),
            })
            .collect();
        let projects = store
            .projects(d)
            .await?
            .into_iter()
            .map(|x| CatalogProject {
                id: x.id,
                name: x.name.to_string(),
                group: x.group,
            })
            .collect();
        let groups = store
            .groups(d)
            .await?
            .into_iter()
            .map(|g| CatalogGroup {
                id: g.id,
                name: g.name.to_string(),
                parent: g.parent,
            })
            .collect();
        Ok(Catalog {
            accounts,
            projects,
            groups,
        })
    }
}

/// The heap a cache key holds besides its map slot: the query's group-by keys, its filters'
/// B-tree node and values, a member's projects. (Small answers weigh about as much as their
/// keys: uncounted, keys let the cache hold twice its bound.)
fn key_bytes((p, q): &(Principal, Query)) -> usize {
    use std::mem::size_of;
    /// Entries of a std B-tree node.
    const NODE_SLOTS: usize = 11;
    let heap = |len: usize| len.next_multiple_of(16);
    let filters = q.filters.len().div_ceil(NODE_SLOTS)
        * (NODE_SLOTS * size_of::<(GroupKey, Vec<String>)>() + 16)
        + q.filters
            .values()
            .map(|v| {
                v.capacity() * size_of::<String>() + v.iter().map(|x| heap(x.len())).sum::<usize>()
            })
            .sum::<usize>();
    let member = match p {
        Principal::Admin => 0,
        Principal::ProjectMember { projects } => {
            projects.capacity() * size_of::<cloudbill_core::ProjectId>()
        }
    };
    size_of::<(Principal, Query, Arc<Answer>)>()
        + q.group_by.capacity() * size_of::<GroupKey>()
        + filters
        + member
}

/// `answer` as a report: built on the CPU pool when it is big (a report of many
/// amounts takes milliseconds to build), in the caller's turn when small.
async fn to_report(answer: Arc<Answer>) -> Result<Report, ServiceError> {
    /// Amounts a report is built from inline.
    const INLINE: usize = 4096;
    if answer.amounts() <= INLINE {
        return Ok(answer.to_report()?);
    }
    Ok(on_cpu(move || answer.to_report()).await??)
}

#[cfg(test)]
mod tests {
    use super::on_cpu;
    use crate::ServiceError;

    /// Work on the CPU pool returns its value; work that panics is an internal error, and the
    /// pool goes on running what comes next (every thread of it).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_cpu_pool_survives_a_panic() {
        assert_eq!(on_cpu(|| 6 * 7).await.unwrap(), 42);
        let cores = std::thread::available_parallelism().map_or(2, usize::from);
        for _ in 0..cores * 2 {
            let err = on_cpu(|| -> u8 { panic!("boom") }).await.unwrap_err();
            assert!(
                matches!(err, ServiceError::Internal(ref m) if m.contains("panicked")),
                "{err}"
            );
        }
        let names = futures::future::join_all(
            (0..cores * 4)
                .map(|i| on_cpu(move || (i, std::thread::current().name().map(str::to_owned)))),
        )
        .await;
        for (i, r) in names.into_iter().enumerate() {
            let (j, name) = r.unwrap();
            assert_eq!(i, j);
            assert!(name.is_some_and(|n| n.starts_with("cloudbill-cpu-")));
        }
    }
}
