//! Allocation rules, kept as their versions.

use async_trait::async_trait;
use cloudbill_core::{AllocationId, AllocationRule, AllocationSpec, DomainId, Name};

use super::dialect::{Arg, Col, Dialect, Run, SqlRow};
use super::{corrupt, SqlStore};
use crate::StoreError;

const COLUMNS: &str =
    "rule_id, domain_id, version, name, start_day, spec, deleted, changed_by, changed_at";

fn rule_from(row: &impl SqlRow) -> Result<AllocationRule, StoreError> {
    let name: String = row.col("name")?;
    let spec: String = row.col("spec")?;
    let version: i64 = row.col("version")?;
    Ok(AllocationRule {
        id: AllocationId::from_uuid(row.col("rule_id")?),
        domain: DomainId::from_uuid(row.col("domain_id")?),
        version: u32::try_from(version).map_err(|e| corrupt("allocation version", e))?,
        name: Name::parse(&name, "allocation rule name")
            .map_err(|e| corrupt("allocation name", e))?,
        start: row.col("start_day")?,
        spec: serde_json::from_str::<AllocationSpec>(&spec)
            .map_err(|e| corrupt("allocation spec", e))?,
        deleted: row.col("deleted")?,
        changed_by: row.col("changed_by")?,
        changed_at: row.col("changed_at")?,
    })
}

#[async_trait]
impl<D: Dialect> crate::AllocationStore for SqlStore<D> {
    async fn add_allocation_version(&self, rule: &AllocationRule) -> Result<(), StoreError> {
        let mut tx = D::write_tx(&self.pool).await?;
        let latest = sqlx::query::<D>(&format!(
            "SELECT {COLUMNS} FROM allocation_versions WHERE domain_id = $1 AND rule_id = $2 \
             ORDER BY version DESC LIMIT 1"
        ))
        .arg(rule.domain.as_uuid())
        .arg(rule.id.as_uuid())
        .optional(&mut *tx)
        .await?
        .map(|row| rule_from(&row))
        .transpose()?;
        crate::rules::check_allocation_version(rule, latest.as_ref())?;
        if !rule.deleted {
            // The latest version of each other rule of the domain with this name.
            let clash = sqlx::query::<D>(
                "SELECT 1 AS one FROM allocation_versions v WHERE v.domain_id = $1 \
                 AND v.rule_id <> $2 AND v.name = $3 AND NOT v.deleted AND v.version = \
                 (SELECT MAX(w.version) FROM allocation_versions w WHERE w.rule_id = v.rule_id) \
                 LIMIT 1",
            )
            .arg(rule.domain.as_uuid())
            .arg(rule.id.as_uuid())
            .arg(rule.name.as_str())
            .optional(&mut *tx)
            .await?;
            if clash.is_some() {
                return Err(crate::rules::allocation_name_taken(&rule.name));
            }
        }
        let spec = serde_json::to_string(&rule.spec).map_err(|e| corrupt("allocation spec", e))?;
        sqlx::query::<D>(&format!(
            "INSERT INTO allocation_versions ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
        ))
        .arg(rule.id.as_uuid())
        .arg(rule.domain.as_uuid())
        .arg(i64::from(rule.version))
        .arg(rule.name.as_str())
        .arg(rule.start)
        .arg(spec)
        .arg(rule.deleted)
        .arg(rule.changed_by.as_str())
        .arg(rule.changed_at)
        .run(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn allocation_versions(
        &self,
        domain: DomainId,
    ) -> Result<Vec<AllocationRule>, StoreError> {
        let rows = sqlx::query::<D>(&format!(
            "SELECT {COLUMNS} FROM allocation_versions WHERE domain_id = $1 ORDER BY rule_id, version"
        ))
        .arg(domain.as_uuid())
        .all(&self.pool)
        .await?;
        rows.iter().map(rule_from).collect()
    }
}
