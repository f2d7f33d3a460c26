//! Anomaly monitors and the anomalies they keep.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use cloudbill_core::{AnomalyState, DomainId, EventId, Monitor, MonitorId, StoredAnomaly};

use super::dialect::{Arg, Col, Dialect, Run, SqlRow};
use super::notify::queue_event;
use super::rows::{conflict_or, not_found};
use super::{corrupt, SqlStore};
use crate::{AnomalyChange, StoreError};

fn anomaly_from(row: &impl SqlRow) -> Result<StoredAnomaly, StoreError> {
    let body: String = row.col("body")?;
    let mut a: StoredAnomaly = serde_json::from_str(&body).map_err(|e| corrupt("anomaly", e))?;
    let state: String = row.col("state")?;
    a.state = AnomalyState::parse(&state).ok_or_else(|| corrupt("anomaly state", &state))?;
    a.version = row.col("version")?;
    Ok(a)
}

#[async_trait]
impl<D: Dialect> crate::AnomalyStore for SqlStore<D> {
    async fn create_monitor(&self, monitor: &Monitor) -> Result<(), StoreError> {
        let definition =
            serde_json::to_string(monitor).map_err(|e| corrupt("monitor definition", e))?;
        sqlx::query::<D>(
            "INSERT INTO anomaly_monitors (id, domain_id, name, definition, created_at) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .arg(monitor.id.as_uuid())
        .arg(monitor.domain.as_uuid())
        .arg(monitor.name.as_str())
        .arg(definition)
        .arg(monitor.created_at)
        .run(&self.pool)
        .await
        .map_err(|e| conflict_or(e, StoreError::exists("anomaly monitor", &monitor.name)))?;
        Ok(())
    }

    async fn monitors(&self, domain: DomainId) -> Result<Vec<Monitor>, StoreError> {
        let rows = sqlx::query::<D>(
            "SELECT definition FROM anomaly_monitors WHERE domain_id = $1 ORDER BY name",
        )
        .arg(domain.as_uuid())
        .all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                let raw: String = row.col("definition")?;
                serde_json::from_str(&raw).map_err(|e| corrupt("monitor definition", e))
            })
            .collect()
    }

    async fn delete_monitor(&self, domain: DomainId, id: MonitorId) -> Result<(), StoreError> {
        let mut tx = D::write_tx(&self.pool).await?;
        sqlx::query::<D>("DELETE FROM anomalies WHERE monitor_id = $1 AND domain_id = $2")
            .arg(id.as_uuid())
            .arg(domain.as_uuid())
            .run(&mut *tx)
            .await?;
        let done =
            sqlx::query::<D>("DELETE FROM anomaly_monitors WHERE id = $1 AND domain_id = $2")
                .arg(id.as_uuid())
                .arg(domain.as_uuid())
                .run(&mut *tx)
                .await?;
        if done.rows_affected() == 0 {
            return Err(not_found("anomaly monitor", id));
        }
        tx.commit().await?;
        Ok(())
    }

    async fn stored_anomalies(
        &self,
        domain: DomainId,
        monitor: Option<MonitorId>,
    ) -> Result<Vec<StoredAnomaly>, StoreError> {
        let rows = sqlx::query::<D>(
            "SELECT state, version, body FROM anomalies WHERE domain_id = $1 \
             AND ($2 IS NULL OR monitor_id = $2)",
        )
        .arg(domain.as_uuid())
        .arg(monitor.map(|m| m.as_uuid()))
        .all(&self.pool)
        .await?;
        let mut out = rows
            .iter()
            .map(anomaly_from)
            .collect::<Result<Vec<_>, _>>()?;
        out.sort_by(|a, b| (a.start, &a.id).cmp(&(b.start, &b.id)));
        Ok(out)
    }

    async fn apply_anomalies(
        &self,
        domain: DomainId,
        changes: &[AnomalyChange],
    ) -> Result<Vec<EventId>, StoreError> {
        let mut stored = Vec::new();
        if changes.is_empty() {
            return Ok(stored);
        }
        let mut tx = D::write_tx(&self.pool).await?;
        for c in changes {
            let a = &c.anomaly;
            let body = serde_json::to_string(a).map_err(|e| corrupt("anomaly", e))?;
            let done =
                match c.expected_version {
                    None => sqlx::query::<D>(
                        "INSERT INTO anomalies (monitor_id, id, domain_id, state, version, body) \
                         SELECT $1, $2, $3, $4, $5, $6 WHERE EXISTS \
                         (SELECT 1 FROM anomaly_monitors WHERE id = $1 AND domain_id = $3) \
                         ON CONFLICT (monitor_id, id) DO NOTHING",
                    )
                    .arg(a.monitor.as_uuid())
                    .arg(a.id.as_str())
                    .arg(domain.as_uuid())
                    .arg(a.state.as_str())
                    .arg(a.version)
                    .arg(body)
                    .run(&mut *tx)
                    .await?,
                    Some(expected) => {
                        sqlx::query::<D>(
                            "UPDATE anomalies SET state = $1, version = $2, body = $3 \
                         WHERE monitor_id = $4 AND id = $5 AND domain_id = $6 AND version = $7",
                        )
                        .arg(a.state.as_str())
                        .arg(a.version)
                        .arg(body)
                        .arg(a.monitor.as_uuid())
                        .arg(a.id.as_str())
                        .arg(domain.as_uuid())
                        .arg(expected)
                        .run(&mut *tx)
                        .await?
                    }
                };
            if done.rows_affected() == 0 {
                continue;
            }
            if let Some((event, channels)) = &c.event {
                queue_event::<D>(&mut tx, domain, event, channels).await?;
                stored.push(event.id);
            }
        }
        tx.commit().await?;
        Ok(stored)
    }

    async fn set_anomaly_state(
        &self,
        domain: DomainId,
        monitors: &[MonitorId],
        id: &str,
        state: AnomalyState,
        at: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        let mut tx = D::write_tx(&self.pool).await?;
        let rows = sqlx::query::<D>(
            "SELECT state, version, body FROM anomalies WHERE domain_id = $1 AND id = $2",
        )
        .arg(domain.as_uuid())
        .arg(id)
        .all(&mut *tx)
        .await?;
        let mut n = 0;
        for row in &rows {
            let mut a = anomaly_from(row)?;
            if !monitors.contains(&a.monitor) {
                continue;
            }
            n += 1;
            a.state = state;
            a.updated_at = at;
            a.version += 1;
            let body = serde_json::to_string(&a).map_err(|e| corrupt("anomaly", e))?;
            sqlx::query::<D>(
                "UPDATE anomalies SET state = $1, version = $2, body = $3 \
                 WHERE monitor_id = $4 AND id = $5",
            )
            .arg(state.as_str())
            .arg(a.version)
            .arg(body)
            .arg(a.monitor.as_uuid())
            .arg(a.id.as_str())
            .run(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(n)
    }
}
