//! Row mappers and error helpers every SQL concern uses.

/// Row mappers and error helpers, expanded into the adapter's module by `impl_sql_store!`.
macro_rules! sql_rows {
    ($store:ty, $db:ty) => {
        #[allow(clippy::needless_pass_by_value)] // Called with owned ids and kinds alike.
        fn not_found(what: &'static str, key: impl ToString) -> StoreError {
            StoreError::NotFound {
                what,
                key: key.to_string(),
            }
        }

        fn conflict_or(err: sqlx::Error, message: String) -> StoreError {
            if is_unique_violation(&err) {
                StoreError::Conflict(message)
            } else {
                StoreError::from(err)
            }
        }

        fn name(row: &DbRow, col: &str, what: &'static str) -> Result<Name, StoreError> {
            let raw: String = row.try_get(col)?;
            Name::parse(&raw, what).map_err(|e| corrupt(what, e))
        }

        fn domain_from(row: &DbRow) -> Result<Domain, StoreError> {
            Ok(Domain {
                id: DomainId::from_uuid(row.try_get("id")?),
                name: name(row, "name", "domain name")?,
                billing_enabled: row.try_get("billing_enabled")?,
                created_at: row.try_get("created_at")?,
            })
        }

        fn group_from(row: &DbRow) -> Result<ProjectGroup, StoreError> {
            Ok(ProjectGroup {
                id: cloudbill_core::GroupId::from_uuid(row.try_get("id")?),
                domain: DomainId::from_uuid(row.try_get("domain_id")?),
                name: name(row, "name", "project group name")?,
                parent: row
                    .try_get::<Option<Uuid>, _>("parent_id")?
                    .map(cloudbill_core::GroupId::from_uuid),
                created_at: row.try_get("created_at")?,
            })
        }

        fn project_from(row: &DbRow) -> Result<Project, StoreError> {
            Ok(Project {
                id: ProjectId::from_uuid(row.try_get("id")?),
                domain: DomainId::from_uuid(row.try_get("domain_id")?),
                name: name(row, "name", "project name")?,
                group: row
                    .try_get::<Option<Uuid>, _>("group_id")?
                    .map(cloudbill_core::GroupId::from_uuid),
                created_at: row.try_get("created_at")?,
            })
        }

        fn job_from(row: &DbRow) -> Result<SyncJob, StoreError> {
            let kind: String = row.try_get("kind")?;
            let state: String = row.try_get("state")?;
            let changed: String = row.try_get("changed_days")?;
            let rows: i64 = row.try_get("rows_written")?;
            Ok(SyncJob {
                id: JobId::from_uuid(row.try_get("id")?),
                domain: DomainId::from_uuid(row.try_get("domain_id")?),
                account: AccountId::from_uuid(row.try_get("account_id")?),
                kind: sql::parse_job_kind(&kind)?,
                window: sql::window(row.try_get("window_start")?, row.try_get("window_end")?)?,
                state: sql::parse_job_state(&state)?,
                rows: u64::try_from(rows).map_err(|e| corrupt("job rows", e))?,
                changed_days: sql::parse_changed_days(&changed)?,
                error: row.try_get("error")?,
                started_at: row.try_get("started_at")?,
                finished_at: row.try_get("finished_at")?,
            })
        }

        fn token_from(row: &DbRow) -> Result<ApiToken, StoreError> {
            let role: String = row.try_get("role")?;
            Ok(ApiToken {
                id: TokenId::from_uuid(row.try_get("id")?),
                domain: DomainId::from_uuid(row.try_get("domain_id")?),
                role: role
                    .parse::<TokenRole>()
                    .map_err(|e| corrupt("token role", e))?,
                project: row
                    .try_get::<Option<Uuid>, _>("project_id")?
                    .map(ProjectId::from_uuid),
                label: row.try_get("label")?,
                created_at: row.try_get("created_at")?,
                revoked_at: row.try_get("revoked_at")?,
            })
        }

        fn decode_failed(e: cloudbill_core::ValidationError) -> StoreError {
            corrupt("cost segment", e)
        }
    };
}

pub(crate) use sql_rows;
