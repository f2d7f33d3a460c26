//! Domains, providers, project groups, projects, accounts and their history.

use async_trait::async_trait;
use chrono::{SubsecRound, Utc};
use cloudbill_core::{
    AccountId, AccountState, Assignment, Domain, DomainId, NaiveDate, Name, Project, ProjectGroup,
    ProjectId, ProviderEntry, ProviderKind, ProviderState, ServiceAccount, Settings,
};

use super::costs::bump;
use super::dialect::{Arg, Col, Dialect, Run, SqlRow};
use super::rows::{conflict_or, domain_from, group_from, name, not_found, project_from};
use super::SqlStore;
use crate::sql::{self, corrupt};
use crate::{DataChange, StoreError};

impl<D: Dialect> SqlStore<D> {
    /// An account's settings sealed for its row (`None`: none, a `file` account).
    fn seal_settings(
        &self,
        id: AccountId,
        settings: &Settings,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        if settings.is_empty() {
            return Ok(None);
        }
        Ok(Some(self.cipher.seal(
            settings.to_secret_json().as_bytes(),
            id.as_uuid().as_bytes(),
        )?))
    }

    pub(crate) fn account_from(
        &self,
        row: &impl SqlRow,
        history: &[Assignment],
    ) -> Result<ServiceAccount, StoreError> {
        let id = AccountId::from_uuid(row.col("id")?);
        let provider: String = row.col("provider")?;
        let state: String = row.col("state")?;
        // The column keeps its old name: it holds the provider's settings, sealed.
        let sealed: Option<Vec<u8>> = row.col("credentials")?;
        let settings = match sealed {
            None => Settings::default(),
            Some(blob) => {
                let plain = self.cipher.open(&blob, id.as_uuid().as_bytes())?;
                let text = std::str::from_utf8(&plain).map_err(|e| corrupt("settings", e))?;
                Settings::from_secret_json(text)?
            }
        };
        let project = history
            .last()
            .map(|a| a.project)
            .ok_or_else(|| corrupt("service account", format!("{id} has no project")))?;
        Ok(ServiceAccount {
            id,
            domain: DomainId::from_uuid(row.col("domain_id")?),
            name: name(row, "name", "account name")?,
            provider: provider.parse().map_err(|e| corrupt("provider", e))?,
            settings,
            state: match state.as_str() {
                "ENABLED" => AccountState::Enabled,
                "DISABLED" => AccountState::Disabled,
                other => return Err(corrupt("account state", other)),
            },
            project,
            created_at: row.col("created_at")?,
        })
    }

    pub(crate) async fn histories(
        &self,
        domain: DomainId,
        account: Option<AccountId>,
    ) -> Result<std::collections::BTreeMap<AccountId, Vec<Assignment>>, StoreError> {
        let rows = sqlx::query::<D>(
            "SELECT a.account_id, a.effective_from, a.project_id \
             FROM account_assignments a JOIN service_accounts s ON s.id = a.account_id \
             WHERE s.domain_id = $1 AND ($2 IS NULL OR a.account_id = $2)",
        )
        .arg(domain.as_uuid())
        .arg(account.map(|a| a.as_uuid()))
        .all(&self.pool)
        .await?;
        let mut flat = Vec::with_capacity(rows.len());
        for row in &rows {
            flat.push((
                AccountId::from_uuid(row.col("account_id")?),
                row.col::<Option<NaiveDate>>("effective_from")?,
                ProjectId::from_uuid(row.col("project_id")?),
            ));
        }
        Ok(sql::current_projects(flat))
    }

    pub(crate) async fn project_exists(
        &self,
        domain: DomainId,
        project: ProjectId,
    ) -> Result<bool, StoreError> {
        Ok(
            sqlx::query::<D>("SELECT 1 AS one FROM projects WHERE id = $1 AND domain_id = $2")
                .arg(project.as_uuid())
                .arg(domain.as_uuid())
                .optional(&self.pool)
                .await?
                .is_some(),
        )
    }

    pub(crate) async fn require_group(
        &self,
        domain: DomainId,
        id: cloudbill_core::GroupId,
    ) -> Result<(), StoreError> {
        sqlx::query::<D>("SELECT 1 AS one FROM project_groups WHERE id = $1 AND domain_id = $2")
            .arg(id.as_uuid())
            .arg(domain.as_uuid())
            .optional(&self.pool)
            .await?
            .map(|_| ())
            .ok_or_else(|| not_found("project group", id))
    }

    pub(crate) async fn require_account(
        &self,
        domain: DomainId,
        id: AccountId,
    ) -> Result<(), StoreError> {
        sqlx::query::<D>("SELECT 1 AS one FROM service_accounts WHERE id = $1 AND domain_id = $2")
            .arg(id.as_uuid())
            .arg(domain.as_uuid())
            .optional(&self.pool)
            .await?
            .map(|_| ())
            .ok_or_else(|| not_found("service account", id))
    }
}

/// A project or a project group: both are stored alike (id, domain, a name unique in the
/// domain, an optional group that must exist — the parent of a group, the group of a project —
/// and the creation time), in tables with the same columns.
struct Node<'a> {
    id: uuid::Uuid,
    domain: DomainId,
    name: &'a Name,
    group: Option<cloudbill_core::GroupId>,
    created_at: chrono::DateTime<Utc>,
}

/// Where nodes of one kind live: the table, its group column, what to call one in errors.
struct NodeTable {
    table: &'static str,
    group_column: &'static str,
    what: &'static str,
}

const GROUPS: NodeTable = NodeTable {
    table: "project_groups",
    group_column: "parent_id",
    what: "project group",
};

const PROJECTS: NodeTable = NodeTable {
    table: "projects",
    group_column: "group_id",
    what: "project",
};

impl<D: Dialect> SqlStore<D> {
    async fn insert_node(&self, kind: &NodeTable, node: Node<'_>) -> Result<(), StoreError> {
        if let Some(group) = node.group {
            self.require_group(node.domain, group).await?;
        }
        // Table and column names are constants, never input.
        let sql = format!(
            "INSERT INTO {} (id, domain_id, name, {}, created_at) VALUES ($1, $2, $3, $4, $5)",
            kind.table, kind.group_column
        );
        let mut tx = D::write_tx(&self.pool).await?;
        sqlx::query::<D>(&sql)
            .arg(node.id)
            .arg(node.domain.as_uuid())
            .arg(node.name.as_str())
            .arg(node.group.map(|g| g.as_uuid()))
            .arg(node.created_at)
            .run(&mut *tx)
            .await
            .map_err(|e| conflict_or(e, StoreError::exists(kind.what, node.name)))?;
        bump::<D>(&mut *tx, node.domain, &[DataChange::Catalog]).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn nodes(&self, kind: &NodeTable, domain: DomainId) -> Result<Vec<D::Row>, StoreError> {
        let sql = format!(
            "SELECT id, domain_id, name, {}, created_at FROM {} \
             WHERE domain_id = $1 ORDER BY name",
            kind.group_column, kind.table
        );
        Ok(sqlx::query::<D>(&sql)
            .arg(domain.as_uuid())
            .all(&self.pool)
            .await?)
    }
}

#[async_trait]
impl<D: Dialect> crate::CatalogStore for SqlStore<D> {
    async fn ensure_domain(&self, name: &Name) -> Result<Domain, StoreError> {
        let select = "SELECT id, name, billing_enabled, created_at, disabled_at FROM domains WHERE name = $1";
        if let Some(row) = sqlx::query::<D>(select)
            .arg(name.as_str())
            .optional(&self.pool)
            .await?
        {
            return domain_from(&row);
        }
        let mut tx = D::write_tx(&self.pool).await?;
        let id = DomainId::new();
        let inserted = sqlx::query::<D>(
            "INSERT INTO domains (id, name, billing_enabled, created_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (name) DO NOTHING",
        )
        .arg(id.as_uuid())
        .arg(name.as_str())
        .arg(false)
        .arg(Utc::now())
        .run(&mut *tx)
        .await?
        .rows_affected();
        if inserted == 1 {
            for kind in ProviderKind::ALL {
                sqlx::query::<D>(
                    "INSERT INTO providers (domain_id, kind, state) VALUES ($1, $2, $3)",
                )
                .arg(id.as_uuid())
                .arg(kind.as_str())
                .arg(ProviderState::Enabled.as_str())
                .run(&mut *tx)
                .await?;
            }
        }
        tx.commit().await?;
        let row = sqlx::query::<D>(select)
            .arg(name.as_str())
            .one(&self.pool)
            .await?;
        domain_from(&row)
    }

    async fn set_billing_enabled(
        &self,
        domain: DomainId,
        enabled: bool,
    ) -> Result<Domain, StoreError> {
        let row = sqlx::query::<D>(
            "UPDATE domains SET billing_enabled = $1 WHERE id = $2 \
             RETURNING id, name, billing_enabled, created_at, disabled_at",
        )
        .arg(enabled)
        .arg(domain.as_uuid())
        .optional(&self.pool)
        .await?
        .ok_or_else(|| not_found("domain", domain))?;
        domain_from(&row)
    }

    async fn domains(&self) -> Result<Vec<Domain>, StoreError> {
        let rows = sqlx::query::<D>(
            "SELECT id, name, billing_enabled, created_at, disabled_at FROM domains ORDER BY name",
        )
        .all(&self.pool)
        .await?;
        rows.iter().map(domain_from).collect()
    }

    async fn domain(&self, id: DomainId) -> Result<Domain, StoreError> {
        let row = sqlx::query::<D>(
            "SELECT id, name, billing_enabled, created_at, disabled_at FROM domains WHERE id = $1",
        )
        .arg(id.as_uuid())
        .optional(&self.pool)
        .await?
        .ok_or_else(|| not_found("domain", id))?;
        domain_from(&row)
    }

    async fn set_domain_disabled(
        &self,
        domain: DomainId,
        at: Option<chrono::DateTime<Utc>>,
    ) -> Result<Domain, StoreError> {
        let row = sqlx::query::<D>(
            "UPDATE domains SET disabled_at = $1 WHERE id = $2 \
             RETURNING id, name, billing_enabled, created_at, disabled_at",
        )
        .arg(at.map(|t| t.trunc_subsecs(6)))
        .arg(domain.as_uuid())
        .optional(&self.pool)
        .await?
        .ok_or_else(|| not_found("domain", domain))?;
        domain_from(&row)
    }

    async fn providers(&self, domain: DomainId) -> Result<Vec<ProviderEntry>, StoreError> {
        let rows = sqlx::query::<D>("SELECT kind, state FROM providers WHERE domain_id = $1")
            .arg(domain.as_uuid())
            .all(&self.pool)
            .await?;
        let mut out = Vec::with_capacity(rows.len());
        for row in &rows {
            let kind: String = row.col("kind")?;
            let state: String = row.col("state")?;
            out.push(ProviderEntry {
                kind: kind.parse().map_err(|e| corrupt("provider", e))?,
                state: if state == "ENABLED" {
                    ProviderState::Enabled
                } else {
                    ProviderState::Disabled
                },
            });
        }
        out.sort_by_key(|p| ProviderKind::ALL.iter().position(|k| *k == p.kind));
        Ok(out)
    }

    async fn set_provider_state(
        &self,
        domain: DomainId,
        kind: ProviderKind,
        state: ProviderState,
    ) -> Result<ProviderEntry, StoreError> {
        let updated =
            sqlx::query::<D>("UPDATE providers SET state = $1 WHERE domain_id = $2 AND kind = $3")
                .arg(state.as_str())
                .arg(domain.as_uuid())
                .arg(kind.as_str())
                .run(&self.pool)
                .await?
                .rows_affected();
        if updated == 0 {
            return Err(not_found("provider", kind));
        }
        Ok(ProviderEntry { kind, state })
    }

    async fn create_group(&self, group: &ProjectGroup) -> Result<(), StoreError> {
        self.insert_node(
            &GROUPS,
            Node {
                id: group.id.as_uuid(),
                domain: group.domain,
                name: &group.name,
                group: group.parent,
                created_at: group.created_at,
            },
        )
        .await
    }

    async fn groups(&self, domain: DomainId) -> Result<Vec<ProjectGroup>, StoreError> {
        let rows = self.nodes(&GROUPS, domain).await?;
        rows.iter().map(group_from).collect()
    }

    async fn create_project(&self, project: &Project) -> Result<(), StoreError> {
        self.insert_node(
            &PROJECTS,
            Node {
                id: project.id.as_uuid(),
                domain: project.domain,
                name: &project.name,
                group: project.group,
                created_at: project.created_at,
            },
        )
        .await
    }

    async fn projects(&self, domain: DomainId) -> Result<Vec<Project>, StoreError> {
        let rows = self.nodes(&PROJECTS, domain).await?;
        rows.iter().map(project_from).collect()
    }

    async fn delete_project(&self, domain: DomainId, id: ProjectId) -> Result<(), StoreError> {
        let mut tx = D::write_tx(&self.pool).await?;
        let used = sqlx::query::<D>(
            "SELECT 1 AS one FROM account_assignments WHERE project_id = $1 LIMIT 1",
        )
        .arg(id.as_uuid())
        .optional(&mut *tx)
        .await?;
        if used.is_some() {
            return Err(StoreError::project_in_use());
        }
        let deleted = sqlx::query::<D>("DELETE FROM projects WHERE id = $1 AND domain_id = $2")
            .arg(id.as_uuid())
            .arg(domain.as_uuid())
            .run(&mut *tx)
            .await?
            .rows_affected();
        if deleted == 0 {
            return Err(not_found("project", id));
        }
        bump::<D>(&mut *tx, domain, &[DataChange::Catalog]).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn create_account(&self, account: &ServiceAccount) -> Result<(), StoreError> {
        if !self.project_exists(account.domain, account.project).await? {
            return Err(not_found("project", account.project));
        }
        let sealed = self.seal_settings(account.id, &account.settings)?;
        let mut tx = D::write_tx(&self.pool).await?;
        sqlx::query::<D>(
            "INSERT INTO service_accounts (id, domain_id, name, provider, credentials, state, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .arg(account.id.as_uuid())
        .arg(account.domain.as_uuid())
        .arg(account.name.as_str())
        .arg(account.provider.as_str())
        .arg(sealed)
        .arg(account.state.as_str())
        .arg(account.created_at)
        .run(&mut *tx)
        .await
        .map_err(|e| conflict_or(e, StoreError::exists("service account", &account.name)))?;
        sqlx::query::<D>(
            "INSERT INTO account_assignments (account_id, effective_from, project_id) VALUES ($1, $2, $3)",
        )
        .arg(account.id.as_uuid())
        .arg(Option::<NaiveDate>::None)
        .arg(account.project.as_uuid())
        .run(&mut *tx)
        .await?;
        bump::<D>(&mut *tx, account.domain, &[DataChange::Catalog]).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn accounts(&self, domain: DomainId) -> Result<Vec<ServiceAccount>, StoreError> {
        let histories = self.histories(domain, None).await?;
        let rows = sqlx::query::<D>(
            "SELECT id, domain_id, name, provider, credentials, state, created_at \
             FROM service_accounts WHERE domain_id = $1 ORDER BY name",
        )
        .arg(domain.as_uuid())
        .all(&self.pool)
        .await?;
        let mut out = Vec::with_capacity(rows.len());
        for row in &rows {
            let id = AccountId::from_uuid(row.col("id")?);
            match histories.get(&id) {
                Some(history) => out.push(self.account_from(row, history)?),
                // Added after the histories were read (the two reads are not one snapshot):
                // its own history now.
                None => {
                    let own = self.histories(domain, Some(id)).await?;
                    let history = own.get(&id).map(Vec::as_slice).unwrap_or_default();
                    out.push(self.account_from(row, history)?);
                }
            }
        }
        Ok(out)
    }

    async fn account(&self, domain: DomainId, id: AccountId) -> Result<ServiceAccount, StoreError> {
        // The history first: an account removed between the two reads is then not found
        // (read the other way round, its row without its history looked corrupt).
        let histories = self.histories(domain, Some(id)).await?;
        let row = sqlx::query::<D>(
            "SELECT id, domain_id, name, provider, credentials, state, created_at \
             FROM service_accounts WHERE domain_id = $1 AND id = $2",
        )
        .arg(domain.as_uuid())
        .arg(id.as_uuid())
        .optional(&self.pool)
        .await?
        .ok_or_else(|| not_found("service account", id))?;
        let history = histories.get(&id).map(Vec::as_slice).unwrap_or_default();
        self.account_from(&row, history)
    }

    async fn set_account_state(
        &self,
        domain: DomainId,
        id: AccountId,
        state: AccountState,
    ) -> Result<(), StoreError> {
        let updated = sqlx::query::<D>(
            "UPDATE service_accounts SET state = $1 WHERE id = $2 AND domain_id = $3",
        )
        .arg(state.as_str())
        .arg(id.as_uuid())
        .arg(domain.as_uuid())
        .run(&self.pool)
        .await?
        .rows_affected();
        if updated == 0 {
            return Err(not_found("service account", id));
        }
        Ok(())
    }

    async fn set_account_settings(
        &self,
        domain: DomainId,
        id: AccountId,
        settings: &Settings,
    ) -> Result<(), StoreError> {
        let sealed = self.seal_settings(id, settings)?;
        let updated = sqlx::query::<D>(
            "UPDATE service_accounts SET credentials = $1 WHERE id = $2 AND domain_id = $3",
        )
        .arg(sealed)
        .arg(id.as_uuid())
        .arg(domain.as_uuid())
        .run(&self.pool)
        .await?
        .rows_affected();
        if updated == 0 {
            return Err(not_found("service account", id));
        }
        Ok(())
    }

    async fn delete_account(&self, domain: DomainId, id: AccountId) -> Result<(), StoreError> {
        let mut tx = D::write_tx(&self.pool).await?;
        for table in [
            "cost_segments",
            "sync_jobs",
            "sync_leases",
            "source_revisions",
            "account_assignments",
        ] {
            sqlx::query::<D>(&format!(
                "DELETE FROM {table} WHERE account_id = $1 AND EXISTS \
                (SELECT 1 FROM service_accounts WHERE id = $1 AND domain_id = $2)"
            ))
            .arg(id.as_uuid())
            .arg(domain.as_uuid())
            .run(&mut *tx)
            .await?;
        }
        let deleted =
            sqlx::query::<D>("DELETE FROM service_accounts WHERE id = $1 AND domain_id = $2")
                .arg(id.as_uuid())
                .arg(domain.as_uuid())
                .run(&mut *tx)
                .await?
                .rows_affected();
        if deleted == 0 {
            return Err(not_found("service account", id));
        }
        bump::<D>(
            &mut *tx,
            domain,
            &[DataChange::Catalog, DataChange::Account(id)],
        )
        .await?;
        tx.commit().await?;
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
        self.require_account(domain, id).await?;
        for step in history {
            if !self.project_exists(domain, step.project).await? {
                return Err(not_found("project", step.project));
            }
        }
        let mut tx = D::write_tx(&self.pool).await?;
        // The account row locked first (PostgreSQL; SQLite's write transaction excludes
        // every other writer): the history compared is the one replaced.
        sqlx::query::<D>("UPDATE service_accounts SET id = id WHERE id = $1")
            .arg(id.as_uuid())
            .run(&mut *tx)
            .await?;
        let rows = sqlx::query::<D>(
            "SELECT effective_from, project_id FROM account_assignments WHERE account_id = $1",
        )
        .arg(id.as_uuid())
        .all(&mut *tx)
        .await?;
        let mut current = Vec::with_capacity(rows.len());
        for row in &rows {
            current.push(Assignment {
                from: row.col::<Option<NaiveDate>>("effective_from")?,
                project: ProjectId::from_uuid(row.col("project_id")?),
            });
        }
        current.sort_by_key(|a| a.from);
        if current != expected {
            return Err(StoreError::moved_meanwhile());
        }
        sqlx::query::<D>("DELETE FROM account_assignments WHERE account_id = $1")
            .arg(id.as_uuid())
            .run(&mut *tx)
            .await?;
        for step in history {
            sqlx::query::<D>("INSERT INTO account_assignments (account_id, effective_from, project_id) VALUES ($1, $2, $3)")
                .arg(id.as_uuid())
                .arg(step.from)
                .arg(step.project.as_uuid())
                .run(&mut *tx)
                .await?;
        }
        bump::<D>(&mut *tx, domain, &[DataChange::Catalog]).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn assignments(
        &self,
        domain: DomainId,
        id: AccountId,
    ) -> Result<Vec<Assignment>, StoreError> {
        self.require_account(domain, id).await?;
        Ok(self
            .histories(domain, Some(id))
            .await?
            .remove(&id)
            .unwrap_or_default())
    }

    async fn assignment_histories(
        &self,
        domain: DomainId,
    ) -> Result<std::collections::BTreeMap<AccountId, Vec<Assignment>>, StoreError> {
        self.histories(domain, None).await
    }
}
