//! Row mappers and error helpers every SQL concern uses.

use cloudbill_core::{
    AccountId, ApiToken, Domain, DomainId, JobId, Name, Project, ProjectGroup, ProjectId, SyncJob,
    TokenId, TokenRole,
};
use uuid::Uuid;

use super::dialect::{Col, SqlRow};
use crate::sql::{self, corrupt, is_unique_violation};
use crate::StoreError;

#[allow(clippy::needless_pass_by_value)] // Called with owned ids and kinds alike.
pub(crate) fn not_found(what: &'static str, key: impl ToString) -> StoreError {
    StoreError::NotFound {
        what,
        key: key.to_string(),
    }
}

/// `conflict` if `err` broke a uniqueness constraint, else `err` itself.
pub(crate) fn conflict_or(err: sqlx::Error, conflict: StoreError) -> StoreError {
    if is_unique_violation(&err) {
        conflict
    } else {
        StoreError::from(err)
    }
}

pub(crate) fn name(row: &impl SqlRow, col: &str, what: &'static str) -> Result<Name, StoreError> {
    let raw: String = row.col(col)?;
    Name::parse(&raw, what).map_err(|e| corrupt(what, e))
}

pub(crate) fn domain_from(row: &impl SqlRow) -> Result<Domain, StoreError> {
    Ok(Domain {
        id: DomainId::from_uuid(row.col("id")?),
        name: name(row, "name", "domain name")?,
        billing_enabled: row.col("billing_enabled")?,
        created_at: row.col("created_at")?,
        disabled_at: row.col("disabled_at")?,
    })
}

pub(crate) fn group_from(row: &impl SqlRow) -> Result<ProjectGroup, StoreError> {
    Ok(ProjectGroup {
        id: cloudbill_core::GroupId::from_uuid(row.col("id")?),
        domain: DomainId::from_uuid(row.col("domain_id")?),
        name: name(row, "name", "project group name")?,
        parent: row
            .col::<Option<Uuid>>("parent_id")?
            .map(cloudbill_core::GroupId::from_uuid),
        created_at: row.col("created_at")?,
    })
}

pub(crate) fn project_from(row: &impl SqlRow) -> Result<Project, StoreError> {
    Ok(Project {
        id: ProjectId::from_uuid(row.col("id")?),
        domain: DomainId::from_uuid(row.col("domain_id")?),
        name: name(row, "name", "project name")?,
        group: row
            .col::<Option<Uuid>>("group_id")?
            .map(cloudbill_core::GroupId::from_uuid),
        created_at: row.col("created_at")?,
    })
}

pub(crate) fn job_from(row: &impl SqlRow) -> Result<SyncJob, StoreError> {
    let kind: String = row.col("kind")?;
    let state: String = row.col("state")?;
    let changed: String = row.col("changed_days")?;
    let rows: i64 = row.col("rows_written")?;
    Ok(SyncJob {
        id: JobId::from_uuid(row.col("id")?),
        domain: DomainId::from_uuid(row.col("domain_id")?),
        account: AccountId::from_uuid(row.col("account_id")?),
        kind: sql::parse_job_kind(&kind)?,
        window: sql::window(row.col("window_start")?, row.col("window_end")?)?,
        state: sql::parse_job_state(&state)?,
        rows: u64::try_from(rows).map_err(|e| corrupt("job rows", e))?,
        changed_days: sql::parse_changed_days(&changed)?,
        error: row.col("error")?,
        started_at: row.col("started_at")?,
        finished_at: row.col("finished_at")?,
    })
}

pub(crate) fn token_from(row: &impl SqlRow) -> Result<ApiToken, StoreError> {
    let role: String = row.col("role")?;
    Ok(ApiToken {
        id: TokenId::from_uuid(row.col("id")?),
        domain: DomainId::from_uuid(row.col("domain_id")?),
        role: role
            .parse::<TokenRole>()
            .map_err(|e| corrupt("token role", e))?,
        project: row
            .col::<Option<Uuid>>("project_id")?
            .map(ProjectId::from_uuid),
        label: row.col("label")?,
        created_at: row.col("created_at")?,
        revoked_at: row.col("revoked_at")?,
    })
}

pub(crate) fn decode_failed(e: cloudbill_core::ValidationError) -> StoreError {
    corrupt("cost segment", e)
}
