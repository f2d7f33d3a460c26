//! Domains, providers, project groups, projects, accounts and their history.

/// `CatalogStore` for an SQL adapter.
macro_rules! sql_catalog {
    ($store:ty, $db:ty) => {
        impl $store {
            fn account_from(
                &self,
                row: &DbRow,
                history: &[Assignment],
            ) -> Result<ServiceAccount, StoreError> {
                let id = AccountId::from_uuid(row.try_get("id")?);
                let provider: String = row.try_get("provider")?;
                let state: String = row.try_get("state")?;
                let sealed: Option<Vec<u8>> = row.try_get("credentials")?;
                let credentials = match sealed {
                    None => None,
                    Some(blob) => {
                        let plain = self.cipher.open(&blob, id.as_uuid().as_bytes())?;
                        let text = std::str::from_utf8(&plain)
                            .map_err(|e| corrupt("credentials", e))?;
                        Some(Credentials::from_secret_json(text)?)
                    }
                };
                let project = history
                    .last()
                    .map(|a| a.project)
                    .ok_or_else(|| corrupt("service account", format!("{id} has no project")))?;
                Ok(ServiceAccount {
                    id,
                    domain: DomainId::from_uuid(row.try_get("domain_id")?),
                    name: name(row, "name", "account name")?,
                    provider: provider.parse().map_err(|e| corrupt("provider", e))?,
                    credentials,
                    state: match state.as_str() {
                        "ENABLED" => AccountState::Enabled,
                        "DISABLED" => AccountState::Disabled,
                        other => return Err(corrupt("account state", other)),
                    },
                    project,
                    created_at: row.try_get("created_at")?,
                })
            }

            async fn histories(
                &self,
                domain: DomainId,
                account: Option<AccountId>,
            ) -> Result<std::collections::BTreeMap<AccountId, Vec<Assignment>>, StoreError> {
                let rows = sqlx::query(
                    "SELECT a.account_id, a.effective_from, a.project_id \
                     FROM account_assignments a JOIN service_accounts s ON s.id = a.account_id \
                     WHERE s.domain_id = $1 AND ($2 IS NULL OR a.account_id = $2)",
                )
                .bind(domain.as_uuid())
                .bind(account.map(|a| a.as_uuid()))
                .fetch_all(&self.pool)
                .await?;
                let mut flat = Vec::with_capacity(rows.len());
                for row in &rows {
                    flat.push((
                        AccountId::from_uuid(row.try_get("account_id")?),
                        row.try_get::<Option<NaiveDate>, _>("effective_from")?,
                        ProjectId::from_uuid(row.try_get("project_id")?),
                    ));
                }
                Ok(sql::current_projects(flat))
            }

            async fn project_exists(
                &self,
                domain: DomainId,
                project: ProjectId,
            ) -> Result<bool, StoreError> {
                Ok(
                    sqlx::query("SELECT 1 AS one FROM projects WHERE id = $1 AND domain_id = $2")
                        .bind(project.as_uuid())
                        .bind(domain.as_uuid())
                        .fetch_optional(&self.pool)
                        .await?
                        .is_some(),
                )
            }

            async fn require_group(
                &self,
                domain: DomainId,
                id: cloudbill_core::GroupId,
            ) -> Result<(), StoreError> {
                sqlx::query("SELECT 1 AS one FROM project_groups WHERE id = $1 AND domain_id = $2")
                    .bind(id.as_uuid())
                    .bind(domain.as_uuid())
                    .fetch_optional(&self.pool)
                    .await?
                    .map(|_| ())
                    .ok_or_else(|| not_found("project group", id))
            }

            async fn require_account(
                &self,
                domain: DomainId,
                id: AccountId,
            ) -> Result<(), StoreError> {
                sqlx::query("SELECT 1 AS one FROM service_accounts WHERE id = $1 AND domain_id = $2")
                    .bind(id.as_uuid())
                    .bind(domain.as_uuid())
                    .fetch_optional(&self.pool)
                    .await?
                    .map(|_| ())
                    .ok_or_else(|| not_found("service account", id))
            }
        }

        #[async_trait]
        impl crate::CatalogStore for $store {
            async fn ensure_domain(&self, name: &Name) -> Result<Domain, StoreError> {
                let select = "SELECT id, name, billing_enabled, created_at FROM domains WHERE name = $1";
                if let Some(row) = sqlx::query(select)
                    .bind(name.as_str())
                    .fetch_optional(&self.pool)
                    .await?
                {
                    return domain_from(&row);
                }
                let mut tx = self.write_tx().await?;
                let id = DomainId::new();
                let inserted = sqlx::query(
                    "INSERT INTO domains (id, name, billing_enabled, created_at) VALUES ($1, $2, $3, $4) \
                     ON CONFLICT (name) DO NOTHING",
                )
                .bind(id.as_uuid())
                .bind(name.as_str())
                .bind(false)
                .bind(Utc::now())
                .execute(&mut *tx)
                .await?
                .rows_affected();
                if inserted == 1 {
                    for kind in ProviderKind::ALL {
                        sqlx::query("INSERT INTO providers (domain_id, kind, state) VALUES ($1, $2, $3)")
                            .bind(id.as_uuid())
                            .bind(kind.as_str())
                            .bind(ProviderState::Enabled.as_str())
                            .execute(&mut *tx)
                            .await?;
                    }
                }
                tx.commit().await?;
                let row = sqlx::query(select)
                    .bind(name.as_str())
                    .fetch_one(&self.pool)
                    .await?;
                domain_from(&row)
            }

            async fn set_billing_enabled(
                &self,
                domain: DomainId,
                enabled: bool,
            ) -> Result<Domain, StoreError> {
                let row = sqlx::query(
                    "UPDATE domains SET billing_enabled = $1 WHERE id = $2 \
                     RETURNING id, name, billing_enabled, created_at",
                )
                .bind(enabled)
                .bind(domain.as_uuid())
                .fetch_optional(&self.pool)
                .await?
                .ok_or_else(|| not_found("domain", domain))?;
                domain_from(&row)
            }

            async fn providers(&self, domain: DomainId) -> Result<Vec<ProviderEntry>, StoreError> {
                let rows = sqlx::query("SELECT kind, state FROM providers WHERE domain_id = $1")
                    .bind(domain.as_uuid())
                    .fetch_all(&self.pool)
                    .await?;
                let mut out = Vec::with_capacity(rows.len());
                for row in &rows {
                    let kind: String = row.try_get("kind")?;
                    let state: String = row.try_get("state")?;
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
                let updated = sqlx::query(
                    "UPDATE providers SET state = $1 WHERE domain_id = $2 AND kind = $3",
                )
                .bind(state.as_str())
                .bind(domain.as_uuid())
                .bind(kind.as_str())
                .execute(&self.pool)
                .await?
                .rows_affected();
                if updated == 0 {
                    return Err(not_found("provider", kind));
                }
                Ok(ProviderEntry { kind, state })
            }

            async fn create_group(&self, group: &ProjectGroup) -> Result<(), StoreError> {
                if let Some(parent) = group.parent {
                    self.require_group(group.domain, parent).await?;
                }
                sqlx::query(
                    "INSERT INTO project_groups (id, domain_id, name, parent_id, created_at) \
                     VALUES ($1, $2, $3, $4, $5)",
                )
                .bind(group.id.as_uuid())
                .bind(group.domain.as_uuid())
                .bind(group.name.as_str())
                .bind(group.parent.map(|p| p.as_uuid()))
                .bind(group.created_at)
                .execute(&self.pool)
                .await
                .map_err(|e| {
                    conflict_or(e, format!("project group {:?} already exists", group.name.as_str()))
                })?;
                bump(&self.pool, group.domain).await
            }

            async fn groups(&self, domain: DomainId) -> Result<Vec<ProjectGroup>, StoreError> {
                let rows = sqlx::query(
                    "SELECT id, domain_id, name, parent_id, created_at FROM project_groups \
                     WHERE domain_id = $1 ORDER BY name",
                )
                .bind(domain.as_uuid())
                .fetch_all(&self.pool)
                .await?;
                rows.iter().map(group_from).collect()
            }

            async fn create_project(&self, project: &Project) -> Result<(), StoreError> {
                if let Some(group) = project.group {
                    self.require_group(project.domain, group).await?;
                }
                sqlx::query(
                    "INSERT INTO projects (id, domain_id, name, group_id, created_at) \
                     VALUES ($1, $2, $3, $4, $5)",
                )
                .bind(project.id.as_uuid())
                .bind(project.domain.as_uuid())
                .bind(project.name.as_str())
                .bind(project.group.map(|g| g.as_uuid()))
                .bind(project.created_at)
                .execute(&self.pool)
                .await
                .map_err(|e| conflict_or(e, format!("project {:?} already exists", project.name.as_str())))?;
                bump(&self.pool, project.domain).await
            }

            async fn projects(&self, domain: DomainId) -> Result<Vec<Project>, StoreError> {
                let rows = sqlx::query(
                    "SELECT id, domain_id, name, group_id, created_at FROM projects \
                     WHERE domain_id = $1 ORDER BY name",
                )
                .bind(domain.as_uuid())
                .fetch_all(&self.pool)
                .await?;
                rows.iter().map(project_from).collect()
            }

            async fn delete_project(&self, domain: DomainId, id: ProjectId) -> Result<(), StoreError> {
                let mut tx = self.write_tx().await?;
                let used = sqlx::query("SELECT 1 AS one FROM account_assignments WHERE project_id = $1 LIMIT 1")
                    .bind(id.as_uuid())
                    .fetch_optional(&mut *tx)
                    .await?;
                if used.is_some() {
                    return Err(StoreError::Conflict(
                        "project has billing accounts assigned (now or in its history); move or remove them first".into(),
                    ));
                }
                let deleted = sqlx::query("DELETE FROM projects WHERE id = $1 AND domain_id = $2")
                    .bind(id.as_uuid())
                    .bind(domain.as_uuid())
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                if deleted == 0 {
                    return Err(not_found("project", id));
                }
                bump(&mut *tx, domain).await?;
                tx.commit().await?;
                Ok(())
            }

            async fn create_account(&self, account: &ServiceAccount) -> Result<(), StoreError> {
                if !self.project_exists(account.domain, account.project).await? {
                    return Err(not_found("project", account.project));
                }
                let sealed = match &account.credentials {
                    Some(c) => Some(self.cipher.seal(
                        c.to_secret_json().as_bytes(),
                        account.id.as_uuid().as_bytes(),
                    )?),
                    None => None,
                };
                let mut tx = self.write_tx().await?;
                sqlx::query(
                    "INSERT INTO service_accounts (id, domain_id, name, provider, credentials, state, created_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7)",
                )
                .bind(account.id.as_uuid())
                .bind(account.domain.as_uuid())
                .bind(account.name.as_str())
                .bind(account.provider.as_str())
                .bind(sealed)
                .bind(account.state.as_str())
                .bind(account.created_at)
                .execute(&mut *tx)
                .await
                .map_err(|e| conflict_or(e, format!("service account {:?} already exists", account.name.as_str())))?;
                sqlx::query(
                    "INSERT INTO account_assignments (account_id, effective_from, project_id) VALUES ($1, $2, $3)",
                )
                .bind(account.id.as_uuid())
                .bind(Option::<NaiveDate>::None)
                .bind(account.project.as_uuid())
                .execute(&mut *tx)
                .await?;
                bump(&mut *tx, account.domain).await?;
                tx.commit().await?;
                Ok(())
            }

            async fn accounts(&self, domain: DomainId) -> Result<Vec<ServiceAccount>, StoreError> {
                let histories = self.histories(domain, None).await?;
                let rows = sqlx::query(
                    "SELECT id, domain_id, name, provider, credentials, state, created_at \
                     FROM service_accounts WHERE domain_id = $1 ORDER BY name",
                )
                .bind(domain.as_uuid())
                .fetch_all(&self.pool)
                .await?;
                rows.iter()
                    .map(|row| {
                        let id = AccountId::from_uuid(row.try_get("id")?);
                        let history = histories.get(&id).map(Vec::as_slice).unwrap_or_default();
                        self.account_from(row, history)
                    })
                    .collect()
            }

            async fn account(&self, domain: DomainId, id: AccountId) -> Result<ServiceAccount, StoreError> {
                let row = sqlx::query(
                    "SELECT id, domain_id, name, provider, credentials, state, created_at \
                     FROM service_accounts WHERE domain_id = $1 AND id = $2",
                )
                .bind(domain.as_uuid())
                .bind(id.as_uuid())
                .fetch_optional(&self.pool)
                .await?
                .ok_or_else(|| not_found("service account", id))?;
                let histories = self.histories(domain, Some(id)).await?;
                let history = histories.get(&id).map(Vec::as_slice).unwrap_or_default();
                self.account_from(&row, history)
            }

            async fn set_account_state(
                &self,
                domain: DomainId,
                id: AccountId,
                state: AccountState,
            ) -> Result<(), StoreError> {
                let updated = sqlx::query("UPDATE service_accounts SET state = $1 WHERE id = $2 AND domain_id = $3")
                    .bind(state.as_str())
                    .bind(id.as_uuid())
                    .bind(domain.as_uuid())
                    .execute(&self.pool)
                    .await?
                    .rows_affected();
                if updated == 0 {
                    return Err(not_found("service account", id));
                }
                Ok(())
            }

            async fn delete_account(&self, domain: DomainId, id: AccountId) -> Result<(), StoreError> {
                let mut tx = self.write_tx().await?;
                for table in ["cost_segments", "sync_jobs", "sync_leases", "account_assignments"] {
                    sqlx::query(&format!("DELETE FROM {table} WHERE account_id = $1 AND EXISTS \
                        (SELECT 1 FROM service_accounts WHERE id = $1 AND domain_id = $2)"))
                        .bind(id.as_uuid())
                        .bind(domain.as_uuid())
                        .execute(&mut *tx)
                        .await?;
                }
                let deleted = sqlx::query("DELETE FROM service_accounts WHERE id = $1 AND domain_id = $2")
                    .bind(id.as_uuid())
                    .bind(domain.as_uuid())
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                if deleted == 0 {
                    return Err(not_found("service account", id));
                }
                bump(&mut *tx, domain).await?;
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
                let mut tx = self.write_tx().await?;
                // The account row locked first (PostgreSQL; SQLite's write transaction excludes
                // every other writer): the history compared is the one replaced.
                sqlx::query("UPDATE service_accounts SET id = id WHERE id = $1")
                    .bind(id.as_uuid())
                    .execute(&mut *tx)
                    .await?;
                let rows = sqlx::query(
                    "SELECT effective_from, project_id FROM account_assignments WHERE account_id = $1",
                )
                .bind(id.as_uuid())
                .fetch_all(&mut *tx)
                .await?;
                let mut current = Vec::with_capacity(rows.len());
                for row in &rows {
                    current.push(Assignment {
                        from: row.try_get::<Option<NaiveDate>, _>("effective_from")?,
                        project: ProjectId::from_uuid(row.try_get("project_id")?),
                    });
                }
                current.sort_by_key(|a| a.from);
                if current != expected {
                    return Err(StoreError::Conflict("the account was moved meanwhile; try again".into()));
                }
                sqlx::query("DELETE FROM account_assignments WHERE account_id = $1")
                    .bind(id.as_uuid())
                    .execute(&mut *tx)
                    .await?;
                for step in history {
                    sqlx::query("INSERT INTO account_assignments (account_id, effective_from, project_id) VALUES ($1, $2, $3)")
                        .bind(id.as_uuid())
                        .bind(step.from)
                        .bind(step.project.as_uuid())
                        .execute(&mut *tx)
                        .await?;
                }
                bump(&mut *tx, domain).await?;
                tx.commit().await?;
                Ok(())
            }

            async fn assignments(&self, domain: DomainId, id: AccountId) -> Result<Vec<Assignment>, StoreError> {
                self.require_account(domain, id).await?;
                Ok(self.histories(domain, Some(id)).await?.remove(&id).unwrap_or_default())
            }

            async fn assignment_histories(
                &self,
                domain: DomainId,
            ) -> Result<std::collections::BTreeMap<AccountId, Vec<Assignment>>, StoreError> {
                self.histories(domain, None).await
            }
        }
    };
}

pub(crate) use sql_catalog;
