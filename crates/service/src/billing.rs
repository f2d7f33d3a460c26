//! The `Billing` facade: domain, providers, projects, accounts and reports.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, NaiveDate, Utc};
use cloudbill_aggregate::{
    Catalog, CatalogAccount, CatalogGroup, CatalogProject, Engine, GroupKey, Query, Report,
};
use cloudbill_core::{
    AccountId, AccountState, Assignment, ClientSecret, Credentials, Domain, GroupId, Name, Project,
    ProjectGroup, ProjectId, ProviderEntry, ProviderKind, ProviderState, ServiceAccount,
};
use cloudbill_provider::ProviderRegistry;
use cloudbill_store::Store;

use crate::{Hint, Principal, ServiceError};

/// Tunables of the service.
#[derive(Debug, Clone)]
pub struct BillingConfig {
    /// Accounts synced at once.
    pub concurrency: usize,
    /// How far back the first sync of an account goes, in months.
    pub initial_months: u32,
    /// Later syncs start this many days before the last successful one (rounded down to the
    /// 1st of that month), because providers restate recent days.
    pub restate_days: i64,
    /// How long a sync lease lasts without renewal.
    pub lease_ttl: Duration,
    /// How long an import's lease lasts without renewal (renewed every third of it while the
    /// import runs): a killed import is shown as interrupted this long after it stopped.
    pub import_lease_ttl: Duration,
    /// The longest report range, in days.
    pub max_query_days: i64,
    /// The endpoint used for Hyperbilling accounts registered without one.
    pub default_endpoint: Option<String>,
    /// "Today" for default sync ranges; `None` means the current UTC date.
    pub today: Option<NaiveDate>,
    /// Keep the whole domain's engine in memory between reports, reloading it only when the
    /// store's data version moves (the server); otherwise each report loads the months it
    /// needs (the CLI).
    pub warm_engine: bool,
}

impl Default for BillingConfig {
    fn default() -> Self {
        Self {
            concurrency: 4,
            initial_months: 12,
            restate_days: 10,
            lease_ttl: Duration::from_secs(5 * 60),
            import_lease_ttl: Duration::from_secs(10),
            max_query_days: cloudbill_core::MAX_RANGE_DAYS,
            default_endpoint: None,
            today: None,
            warm_engine: false,
        }
    }
}

/// Credentials as typed by a user, before validation.
#[derive(Debug, Clone)]
pub struct CredentialsInput {
    /// Linked account (`""` for every account the key can read).
    pub account: String,
    /// Client id (email).
    pub email: String,
    /// Client secret.
    pub key: ClientSecret,
    /// API base URL; `None` uses the configured default.
    pub endpoint: Option<String>,
}

/// A billing account to register.
#[derive(Debug, Clone)]
pub struct NewAccount {
    /// Unique name.
    pub name: String,
    /// Provider name (`hyperbilling-aws`, `file`).
    pub provider: String,
    /// Project name or id; mandatory, `None` is refused.
    pub project: Option<String>,
    /// Credentials (required for `hyperbilling-aws`, refused for `file`).
    pub credentials: Option<CredentialsInput>,
}

pub(crate) struct Inner {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) providers: ProviderRegistry,
    pub(crate) domain: Domain,
    pub(crate) config: BillingConfig,
    /// This process's identity in sync leases.
    pub(crate) holder: String,
    /// The warm engine and the data version it was built at.
    pub(crate) engine: tokio::sync::Mutex<Option<(i64, Arc<Engine>)>>,
    /// Answers of the warm engine by (principal, query), valid for one data version:
    /// dashboards ask the same questions over and over.
    pub(crate) answers: std::sync::Mutex<(i64, Answers)>,
}

/// Cached answers of one data version, by who asked what.
pub(crate) type Answers = HashMap<(Principal, Query), Arc<Report>>;

/// Cached answers kept per data version before the cache starts over.
const ANSWER_CACHE: usize = 1024;

/// The billing service of one domain.
#[derive(Clone)]
pub struct Billing {
    pub(crate) inner: Arc<Inner>,
}

impl std::fmt::Debug for Billing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Billing")
            .field("domain", &self.inner.domain.name)
            .finish_non_exhaustive()
    }
}

/// Whether `key` names this object (the one rule: [`cloudbill_core::Lookup`]).
fn matches(name: &Name, id: uuid::Uuid, key: &str) -> bool {
    cloudbill_core::Lookup::parse(key).matches(name.as_str(), id)
}

impl Billing {
    /// The service's clock: "today" (`BillingConfig::today` when set, for tests and replays)
    /// for every date a use case defaults, and the instants it records. Leases keep the real
    /// time: they are measured against other processes.
    pub(crate) fn today(&self) -> NaiveDate {
        self.inner
            .config
            .today
            .unwrap_or_else(|| Utc::now().date_naive())
    }

    /// Now, on [`Billing::today`]'s day.
    pub(crate) fn now(&self) -> DateTime<Utc> {
        let now = Utc::now();
        match self.inner.config.today {
            Some(day) => day.and_time(now.time()).and_utc(),
            None => now,
        }
    }

    /// Opens the service for the domain `domain` (created, with billing off, on first use).
    pub async fn open(
        store: Arc<dyn Store>,
        providers: ProviderRegistry,
        domain: &str,
        config: BillingConfig,
    ) -> Result<Self, ServiceError> {
        let name = Name::parse(domain, "domain name")?;
        let domain = store.ensure_domain(&name).await?;
        Ok(Self {
            inner: Arc::new(Inner {
                store,
                providers,
                domain,
                config,
                holder: format!("pid{}-{}", std::process::id(), cloudbill_core::JobId::new()),
                engine: tokio::sync::Mutex::new(None),
                answers: std::sync::Mutex::new((-1, HashMap::new())),
            }),
        })
    }

    /// The store (for binaries that need direct access, e.g. to close it).
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.inner.store
    }

    /// The domain as it is now.
    pub async fn domain(&self) -> Result<Domain, ServiceError> {
        Ok(self
            .inner
            .store
            .ensure_domain(&self.inner.domain.name)
            .await?)
    }

    pub(crate) async fn require_billing(&self) -> Result<Domain, ServiceError> {
        let d = self.domain().await?;
        if d.billing_enabled {
            Ok(d)
        } else {
            Err(ServiceError::BillingDisabled {
                domain: d.name.to_string(),
            })
        }
    }

    pub(crate) fn domain_id(&self) -> cloudbill_core::DomainId {
        self.inner.domain.id
    }

    /// Turns billing on or off (admin only).
    pub async fn set_billing(&self, p: &Principal, enabled: bool) -> Result<Domain, ServiceError> {
        p.require_admin("turn billing on or off")?;
        Ok(self
            .inner
            .store
            .set_billing_enabled(self.domain_id(), enabled)
            .await?)
    }

    /// The provider registry of the domain.
    pub async fn providers(&self, p: &Principal) -> Result<Vec<ProviderEntry>, ServiceError> {
        p.require_admin("list providers")?;
        Ok(self.inner.store.providers(self.domain_id()).await?)
    }

    /// Enables or disables a provider by name (admin only).
    pub async fn set_provider_state(
        &self,
        p: &Principal,
        name: &str,
        state: ProviderState,
    ) -> Result<ProviderEntry, ServiceError> {
        p.require_admin("enable or disable providers")?;
        let kind: ProviderKind = name.parse()?;
        Ok(self
            .inner
            .store
            .set_provider_state(self.domain_id(), kind, state)
            .await?)
    }

    /// Creates a project group, optionally under `parent` (admin only).
    pub async fn create_group(
        &self,
        p: &Principal,
        name: &str,
        parent: Option<&str>,
    ) -> Result<ProjectGroup, ServiceError> {
        p.require_admin("create project groups")?;
        let name = Name::parse(name, "project group name")?;
        let parent = match parent {
            Some(key) => Some(self.group(key).await?.id),
            None => None,
        };
        let group = ProjectGroup {
            id: GroupId::new(),
            domain: self.domain_id(),
            name,
            parent,
            created_at: self.now(),
        };
        self.inner.store.create_group(&group).await?;
        Ok(group)
    }

    /// Every project group.
    pub async fn groups(&self, p: &Principal) -> Result<Vec<ProjectGroup>, ServiceError> {
        p.require_admin("list project groups")?;
        Ok(self.inner.store.groups(self.domain_id()).await?)
    }

    async fn group(&self, key: &str) -> Result<ProjectGroup, ServiceError> {
        self.inner
            .store
            .groups(self.domain_id())
            .await?
            .into_iter()
            .find(|g| matches(&g.name, g.id.as_uuid(), key))
            .ok_or_else(|| ServiceError::NotFound {
                what: "project group",
                key: key.to_owned(),
            })
    }

    /// Creates a project, optionally in `group` (admin only).
    pub async fn create_project(
        &self,
        p: &Principal,
        name: &str,
        group: Option<&str>,
    ) -> Result<Project, ServiceError> {
        p.require_admin("create projects")?;
        let name = Name::parse(name, "project name")?;
        let group = match group {
            Some(key) => Some(self.group(key).await?.id),
            None => None,
        };
        let project = Project {
            id: ProjectId::new(),
            domain: self.domain_id(),
            name,
            group,
            created_at: self.now(),
        };
        self.inner.store.create_project(&project).await?;
        Ok(project)
    }

    /// The projects the principal may see.
    pub async fn projects(&self, p: &Principal) -> Result<Vec<Project>, ServiceError> {
        let all = self.inner.store.projects(self.domain_id()).await?;
        Ok(all.into_iter().filter(|x| p.may_read(x.id)).collect())
    }

    /// One project, by name or id.
    pub async fn project(&self, p: &Principal, key: &str) -> Result<Project, ServiceError> {
        let project = self
            .inner
            .store
            .projects(self.domain_id())
            .await?
            .into_iter()
            .find(|x| matches(&x.name, x.id.as_uuid(), key))
            .ok_or_else(|| ServiceError::NotFound {
                what: "project",
                key: key.to_owned(),
            })?;
        if !p.may_read(project.id) {
            // The same answer as for a project that does not exist: a member learns nothing
            // of other projects, not even that a name is taken.
            return Err(ServiceError::NotFound {
                what: "project",
                key: key.to_owned(),
            });
        }
        Ok(project)
    }

    /// Deletes a project no account was ever assigned to (admin only).
    pub async fn delete_project(&self, p: &Principal, key: &str) -> Result<(), ServiceError> {
        p.require_admin("delete projects")?;
        let project = self.project(p, key).await?;
        Ok(self
            .inner
            .store
            .delete_project(self.domain_id(), project.id)
            .await?)
    }

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
        let provider: ProviderKind = new.provider.parse()?;
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
        let account = self.account(p, key).await?;
        let project = self.project(p, project).await?;
        Ok(self
            .inner
            .store
            .assign_account(self.domain_id(), account.id, project.id, from)
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

    /// Answers a report query. Project members must filter by project or project group and
    /// see only their own projects.
    pub async fn report(&self, p: &Principal, query: &Query) -> Result<Report, ServiceError> {
        Ok(Arc::unwrap_or_clone(self.report_shared(p, query).await?))
    }

    /// [`Billing::report`], shared: with a warm engine, a repeated question over unchanged
    /// data is answered from a cache without scanning again.
    pub async fn report_shared(
        &self,
        p: &Principal,
        query: &Query,
    ) -> Result<Arc<Report>, ServiceError> {
        // Checked on every call: turning billing off must not leave cached answers reachable.
        self.require_billing().await?;
        if !self.inner.config.warm_engine {
            return Ok(Arc::new(self.compute_report(p, query, None).await?));
        }
        let version = self.inner.store.data_version(self.domain_id()).await?;
        let key = (p.clone(), query.clone());
        {
            let cache = self
                .inner
                .answers
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if cache.0 == version {
                if let Some(hit) = cache.1.get(&key) {
                    return Ok(Arc::clone(hit));
                }
            }
        }
        let answer = Arc::new(self.compute_report(p, query, Some(version)).await?);
        let mut cache = self
            .inner
            .answers
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if cache.0 != version || cache.1.len() >= ANSWER_CACHE {
            *cache = (version, HashMap::new());
        }
        cache.1.insert(key, Arc::clone(&answer));
        Ok(answer)
    }

    /// `version`: the data version of the warm engine to use, or `None` to build one for the
    /// query's months.
    async fn compute_report(
        &self,
        p: &Principal,
        query: &Query,
        version: Option<i64>,
    ) -> Result<Report, ServiceError> {
        let max = self.inner.config.max_query_days;
        if query.range.days() > max {
            return Err(cloudbill_aggregate::QueryError::RangeTooLong {
                days: query.range.days(),
                max,
            }
            .into());
        }
        let mut query = query.clone();
        let engine = self.engine_for(&query, version).await?;
        if let Principal::ProjectMember { projects } = p {
            if !query.filters.contains_key(&GroupKey::Project)
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
        }
        Ok(engine.query(&query)?)
    }

    /// The engine to answer `query`: the warm one at data version `version` (rebuilt when the
    /// version moved), or, with `None`, one built for this query alone — the months of its
    /// range and the dimensions it names.
    async fn engine_for(
        &self,
        query: &Query,
        version: Option<i64>,
    ) -> Result<Arc<Engine>, ServiceError> {
        let Some(version) = version else {
            let keys: Vec<GroupKey> = query
                .group_by
                .iter()
                .chain(query.filters.keys())
                .copied()
                .collect();
            return Ok(Arc::new(
                self.load_engine(Some(query.range), Some(&keys)).await?,
            ));
        };
        let mut cached = self.inner.engine.lock().await;
        if let Some((v, engine)) = cached.as_ref() {
            if *v == version {
                return Ok(Arc::clone(engine));
            }
        }
        let engine = Arc::new(self.load_engine(None, None).await?);
        *cached = Some((version, Arc::clone(&engine)));
        Ok(engine)
    }

    /// Builds an engine from the store's partitions of the months overlapping `range` (all with
    /// `None`), streamed one at a time; with `keys`, only the dimensions they name.
    async fn load_engine(
        &self,
        range: Option<cloudbill_core::DateRange>,
        keys: Option<&[GroupKey]>,
    ) -> Result<Engine, ServiceError> {
        let mut loader = Engine::loader(self.catalog().await?);
        if let Some(keys) = keys {
            loader = loader.only(keys);
        }
        let mut failed = None;
        self.inner
            .store
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

    async fn catalog(&self) -> Result<Catalog, ServiceError> {
        let store = &self.inner.store;
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
