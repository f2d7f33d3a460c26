//! Budgets, channels and the notification outbox.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use cloudbill_core::{
    Budget, BudgetId, BudgetScope, Channel, ChannelId, ClientSecret, Delivery, DeliveryId,
    DeliveryState, DomainId, Event, EventId, SmtpSettings,
};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::dialect::{Arg, Col, Dialect, Run, SqlRow};
use super::rows::{conflict_or, name, not_found};
use super::{corrupt, SqlStore};
use crate::store::epoch_ms;
use crate::{DeliveryOutcome, DueDelivery, FiredThreshold, StoreError, Transition};

/// What a channel row's `settings` column holds.
#[derive(Serialize, Deserialize)]
struct Settings {
    target: String,
    smtp: Option<SmtpSettings>,
}

fn channel_from(row: &impl SqlRow) -> Result<Channel, StoreError> {
    let kind: String = row.col("kind")?;
    let settings: String = row.col("settings")?;
    let settings: Settings =
        serde_json::from_str(&settings).map_err(|e| corrupt("channel settings", e))?;
    Ok(Channel {
        id: ChannelId::from_uuid(row.col("id")?),
        domain: DomainId::from_uuid(row.col("domain_id")?),
        name: name(row, "name", "channel name")?,
        kind: kind.parse().map_err(|e| corrupt("channel kind", e))?,
        target: settings.target,
        smtp: settings.smtp,
        created_at: row.col("created_at")?,
    })
}

fn budget_from(row: &impl SqlRow) -> Result<Budget, StoreError> {
    let raw: String = row.col("definition")?;
    serde_json::from_str(&raw).map_err(|e| corrupt("budget definition", e))
}

fn event_from(row: &impl SqlRow) -> Result<Event, StoreError> {
    Ok(Event {
        id: EventId::from_uuid(row.col("id")?),
        domain: DomainId::from_uuid(row.col("domain_id")?),
        kind: row.col("kind")?,
        subject: row.col("subject")?,
        subject_name: row.col("subject_name")?,
        occurred_at: row.col("occurred_at")?,
        cause: row.col("cause")?,
        payload: row.col("payload")?,
    })
}

const DELIVERY_COLUMNS: &str =
    "d.id, d.domain_id, d.event_id, e.kind AS event_kind, d.channel_id, \
     d.state, d.attempts, d.next_attempt_ms, d.last_error, d.created_at, d.finished_at";

fn delivery_from(row: &impl SqlRow) -> Result<Delivery, StoreError> {
    let state: String = row.col("state")?;
    let next: i64 = row.col("next_attempt_ms")?;
    Ok(Delivery {
        id: DeliveryId::from_uuid(row.col("id")?),
        domain: DomainId::from_uuid(row.col("domain_id")?),
        event: EventId::from_uuid(row.col("event_id")?),
        event_kind: row.col("event_kind")?,
        channel: ChannelId::from_uuid(row.col("channel_id")?),
        state: DeliveryState::parse(&state).ok_or_else(|| corrupt("delivery state", &state))?,
        attempts: u32::try_from(row.col::<i64>("attempts")?).unwrap_or(u32::MAX),
        next_attempt_at: DateTime::from_timestamp_millis(next)
            .ok_or_else(|| corrupt("delivery time", next))?,
        last_error: row.col("last_error")?,
        created_at: row.col("created_at")?,
        finished_at: row.col("finished_at")?,
    })
}

/// Stores `e` with one pending delivery (due at once) per channel of the domain, in `conn`'s
/// transaction: the outbox row is written with the state change that caused it.
pub(crate) async fn queue_event<D: Dialect>(
    conn: &mut D::Connection,
    domain: DomainId,
    e: &Event,
    channels: &[ChannelId],
) -> Result<(), StoreError> {
    sqlx::query::<D>(
        "INSERT INTO events (id, domain_id, kind, subject, subject_name, cause, occurred_at, payload) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .arg(e.id.as_uuid())
    .arg(domain.as_uuid())
    .arg(e.kind.as_str())
    .arg(e.subject)
    .arg(e.subject_name.as_str())
    .arg(e.cause.as_str())
    .arg(e.occurred_at)
    .arg(e.payload.as_str())
    .run(&mut *conn)
    .await?;
    for channel in channels {
        sqlx::query::<D>(
            "INSERT INTO deliveries (id, domain_id, event_id, channel_id, state, attempts, \
             next_attempt_ms, last_error, created_at, finished_at) \
             SELECT $1, $2, $3, $4, 'pending', 0, $5, NULL, $6, NULL WHERE EXISTS \
             (SELECT 1 FROM channels WHERE id = $4 AND domain_id = $2)",
        )
        .arg(DeliveryId::new().as_uuid())
        .arg(domain.as_uuid())
        .arg(e.id.as_uuid())
        .arg(channel.as_uuid())
        .arg(epoch_ms(e.occurred_at))
        .arg(e.occurred_at)
        .run(&mut *conn)
        .await?;
    }
    Ok(())
}

#[async_trait]
impl<D: Dialect> crate::NotifyStore for SqlStore<D> {
    async fn create_channel(
        &self,
        channel: &Channel,
        secret: Option<&ClientSecret>,
    ) -> Result<(), StoreError> {
        let sealed = match secret {
            Some(s) => Some(
                self.cipher
                    .seal(s.expose().as_bytes(), channel.id.as_uuid().as_bytes())?,
            ),
            None => None,
        };
        let settings = serde_json::to_string(&Settings {
            target: channel.target.clone(),
            smtp: channel.smtp.clone(),
        })
        .map_err(|e| corrupt("channel settings", e))?;
        sqlx::query::<D>(
            "INSERT INTO channels (id, domain_id, name, kind, settings, secret, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .arg(channel.id.as_uuid())
        .arg(channel.domain.as_uuid())
        .arg(channel.name.as_str())
        .arg(channel.kind.as_str())
        .arg(settings)
        .arg(sealed)
        .arg(channel.created_at)
        .run(&self.pool)
        .await
        .map_err(|e| conflict_or(e, StoreError::exists("channel", &channel.name)))?;
        Ok(())
    }

    async fn channels(&self, domain: DomainId) -> Result<Vec<Channel>, StoreError> {
        let rows = sqlx::query::<D>(
            "SELECT id, domain_id, name, kind, settings, created_at FROM channels \
             WHERE domain_id = $1 ORDER BY name",
        )
        .arg(domain.as_uuid())
        .all(&self.pool)
        .await?;
        rows.iter().map(channel_from).collect()
    }

    async fn channel_secret(
        &self,
        domain: DomainId,
        id: ChannelId,
    ) -> Result<Option<ClientSecret>, StoreError> {
        let row = sqlx::query::<D>("SELECT secret FROM channels WHERE id = $1 AND domain_id = $2")
            .arg(id.as_uuid())
            .arg(domain.as_uuid())
            .optional(&self.pool)
            .await?
            .ok_or_else(|| not_found("channel", id))?;
        let Some(blob) = row.col::<Option<Vec<u8>>>("secret")? else {
            return Ok(None);
        };
        let plain = self.cipher.open(&blob, id.as_uuid().as_bytes())?;
        let text = std::str::from_utf8(&plain).map_err(|e| corrupt("channel secret", e))?;
        Ok(Some(
            ClientSecret::new(text).map_err(|e| corrupt("channel secret", e))?,
        ))
    }

    async fn delete_channel(&self, domain: DomainId, id: ChannelId) -> Result<(), StoreError> {
        let done = sqlx::query::<D>("DELETE FROM channels WHERE id = $1 AND domain_id = $2")
            .arg(id.as_uuid())
            .arg(domain.as_uuid())
            .run(&self.pool)
            .await?;
        if done.rows_affected() == 0 {
            return Err(not_found("channel", id));
        }
        Ok(())
    }

    async fn create_budget(&self, budget: &Budget) -> Result<(), StoreError> {
        let definition =
            serde_json::to_string(budget).map_err(|e| corrupt("budget definition", e))?;
        let project = match budget.scope {
            BudgetScope::Project(p) => Some(p.as_uuid()),
            _ => None,
        };
        sqlx::query::<D>(
            "INSERT INTO budgets (id, domain_id, name, project_id, definition, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .arg(budget.id.as_uuid())
        .arg(budget.domain.as_uuid())
        .arg(budget.name.as_str())
        .arg(project)
        .arg(definition)
        .arg(budget.created_at)
        .run(&self.pool)
        .await
        .map_err(|e| conflict_or(e, StoreError::exists("budget", &budget.name)))?;
        Ok(())
    }

    async fn budgets(&self, domain: DomainId) -> Result<Vec<Budget>, StoreError> {
        let rows =
            sqlx::query::<D>("SELECT definition FROM budgets WHERE domain_id = $1 ORDER BY name")
                .arg(domain.as_uuid())
                .all(&self.pool)
                .await?;
        rows.iter().map(budget_from).collect()
    }

    async fn update_budget(&self, budget: &Budget) -> Result<(), StoreError> {
        let definition =
            serde_json::to_string(budget).map_err(|e| corrupt("budget definition", e))?;
        let project = match budget.scope {
            BudgetScope::Project(p) => Some(p.as_uuid()),
            _ => None,
        };
        let mut tx = D::write_tx(&self.pool).await?;
        let done = sqlx::query::<D>(
            "UPDATE budgets SET name = $1, project_id = $2, definition = $3 \
             WHERE id = $4 AND domain_id = $5",
        )
        .arg(budget.name.as_str())
        .arg(project)
        .arg(definition)
        .arg(budget.id.as_uuid())
        .arg(budget.domain.as_uuid())
        .run(&mut *tx)
        .await
        .map_err(|e| conflict_or(e, StoreError::exists("budget", &budget.name)))?;
        if done.rows_affected() == 0 {
            return Err(not_found("budget", budget.id));
        }
        sqlx::query::<D>("DELETE FROM budget_thresholds WHERE budget_id = $1")
            .arg(budget.id.as_uuid())
            .run(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn delete_budget(&self, domain: DomainId, id: BudgetId) -> Result<(), StoreError> {
        let mut tx = D::write_tx(&self.pool).await?;
        sqlx::query::<D>("DELETE FROM budget_thresholds WHERE budget_id = $1")
            .arg(id.as_uuid())
            .run(&mut *tx)
            .await?;
        let done = sqlx::query::<D>("DELETE FROM budgets WHERE id = $1 AND domain_id = $2")
            .arg(id.as_uuid())
            .arg(domain.as_uuid())
            .run(&mut *tx)
            .await?;
        if done.rows_affected() == 0 {
            return Err(not_found("budget", id));
        }
        tx.commit().await?;
        Ok(())
    }

    async fn fired_thresholds(&self, domain: DomainId) -> Result<Vec<FiredThreshold>, StoreError> {
        let rows = sqlx::query::<D>(
            "SELECT t.budget_id, t.notification, t.period_start, t.fired_at \
             FROM budget_thresholds t JOIN budgets b ON b.id = t.budget_id \
             WHERE b.domain_id = $1 ORDER BY t.budget_id, t.period_start, t.notification",
        )
        .arg(domain.as_uuid())
        .all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(FiredThreshold {
                    budget: BudgetId::from_uuid(row.col("budget_id")?),
                    notification: u32::try_from(row.col::<i64>("notification")?)
                        .map_err(|e| corrupt("notification index", e))?,
                    period_start: row.col("period_start")?,
                    fired_at: row.col("fired_at")?,
                })
            })
            .collect()
    }

    async fn record_transitions(
        &self,
        domain: DomainId,
        transitions: &[Transition],
    ) -> Result<Vec<EventId>, StoreError> {
        let mut stored = Vec::new();
        if transitions.is_empty() {
            return Ok(stored);
        }
        let mut tx = D::write_tx(&self.pool).await?;
        for t in transitions {
            let changed = if t.fire {
                sqlx::query::<D>(
                    "INSERT INTO budget_thresholds (budget_id, notification, period_start, fired_at) \
                     SELECT $1, $2, $3, $4 WHERE EXISTS \
                     (SELECT 1 FROM budgets WHERE id = $1 AND domain_id = $5) \
                     ON CONFLICT (budget_id, notification, period_start) DO NOTHING",
                )
                .arg(t.budget.as_uuid())
                .arg(i64::from(t.notification))
                .arg(t.period_start)
                .arg(t.event.occurred_at)
                .arg(domain.as_uuid())
                .run(&mut *tx)
                .await?
            } else {
                sqlx::query::<D>(
                    "DELETE FROM budget_thresholds WHERE budget_id = $1 AND notification = $2 \
                     AND period_start = $3",
                )
                .arg(t.budget.as_uuid())
                .arg(i64::from(t.notification))
                .arg(t.period_start)
                .run(&mut *tx)
                .await?
            };
            if changed.rows_affected() == 0 {
                continue;
            }
            queue_event::<D>(&mut tx, domain, &t.event, &t.channels).await?;
            stored.push(t.event.id);
        }
        tx.commit().await?;
        Ok(stored)
    }

    async fn events(
        &self,
        domain: DomainId,
        subject: Option<Uuid>,
        limit: u32,
    ) -> Result<Vec<Event>, StoreError> {
        let rows = sqlx::query::<D>(
            "SELECT id, domain_id, kind, subject, subject_name, cause, occurred_at, payload \
             FROM events WHERE domain_id = $1 AND ($2 IS NULL OR subject = $2) \
             ORDER BY occurred_at DESC, id DESC LIMIT $3",
        )
        .arg(domain.as_uuid())
        .arg(subject)
        .arg(i64::from(limit))
        .all(&self.pool)
        .await?;
        rows.iter().map(event_from).collect()
    }

    async fn claim_deliveries(
        &self,
        domain: DomainId,
        now: DateTime<Utc>,
        claim_until: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<DueDelivery>, StoreError> {
        let sql = format!(
            "SELECT {DELIVERY_COLUMNS}, e.subject, e.subject_name, e.cause, e.occurred_at, \
             e.payload FROM deliveries d JOIN events e ON e.id = d.event_id \
             WHERE d.domain_id = $1 AND d.state = 'pending' AND d.next_attempt_ms <= $2 \
             ORDER BY d.next_attempt_ms, d.id LIMIT $3"
        );
        let rows = sqlx::query::<D>(&sql)
            .arg(domain.as_uuid())
            .arg(epoch_ms(now))
            .arg(i64::from(limit))
            .all(&self.pool)
            .await?;
        let mut out = Vec::new();
        for row in &rows {
            let delivery = delivery_from(row)?;
            // Compare-and-set on the due time: of processes racing for a row, one claims it.
            let claimed = sqlx::query::<D>(
                "UPDATE deliveries SET next_attempt_ms = $1 WHERE id = $2 \
                 AND state = 'pending' AND next_attempt_ms = $3",
            )
            .arg(epoch_ms(claim_until))
            .arg(delivery.id.as_uuid())
            .arg(epoch_ms(delivery.next_attempt_at))
            .run(&self.pool)
            .await?;
            if claimed.rows_affected() == 0 {
                continue;
            }
            out.push(DueDelivery {
                event: Event {
                    id: delivery.event,
                    domain,
                    kind: delivery.event_kind.clone(),
                    subject: row.col("subject")?,
                    subject_name: row.col("subject_name")?,
                    occurred_at: row.col("occurred_at")?,
                    cause: row.col("cause")?,
                    payload: row.col("payload")?,
                },
                delivery,
            });
        }
        Ok(out)
    }

    async fn finish_delivery(
        &self,
        domain: DomainId,
        id: DeliveryId,
        attempts: u32,
        outcome: &DeliveryOutcome,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let (state, next, error, finished) = match outcome {
            DeliveryOutcome::Sent => ("sent", at, None, Some(at)),
            DeliveryOutcome::Retry { next, error } => ("pending", *next, Some(error), None),
            DeliveryOutcome::Failed { error } => ("failed", at, Some(error), Some(at)),
        };
        let done = sqlx::query::<D>(
            "UPDATE deliveries SET state = $1, attempts = $2, next_attempt_ms = $3, \
             last_error = COALESCE($4, last_error), finished_at = $5 WHERE id = $6 AND domain_id = $7",
        )
        .arg(state)
        .arg(i64::from(attempts))
        .arg(epoch_ms(next))
        .arg(error.map(|e| cloudbill_core::cut(e, 500).into_owned()))
        .arg(finished)
        .arg(id.as_uuid())
        .arg(domain.as_uuid())
        .run(&self.pool)
        .await?;
        if done.rows_affected() == 0 {
            return Err(not_found("delivery", id));
        }
        Ok(())
    }

    async fn deliveries(&self, domain: DomainId, limit: u32) -> Result<Vec<Delivery>, StoreError> {
        let sql = format!(
            "SELECT {DELIVERY_COLUMNS} FROM deliveries d JOIN events e ON e.id = d.event_id \
             WHERE d.domain_id = $1 ORDER BY d.created_at DESC, d.id DESC LIMIT $2"
        );
        let rows = sqlx::query::<D>(&sql)
            .arg(domain.as_uuid())
            .arg(i64::from(limit))
            .all(&self.pool)
            .await?;
        rows.iter().map(delivery_from).collect()
    }

    async fn delivery_counts(&self, domain: DomainId) -> Result<[u64; 3], StoreError> {
        let rows = sqlx::query::<D>(
            "SELECT state, COUNT(*) AS n FROM deliveries WHERE domain_id = $1 GROUP BY state",
        )
        .arg(domain.as_uuid())
        .all(&self.pool)
        .await?;
        let mut counts = [0u64; 3];
        for row in &rows {
            let state: String = row.col("state")?;
            let state =
                DeliveryState::parse(&state).ok_or_else(|| corrupt("delivery state", &state))?;
            counts[state as usize] = u64::try_from(row.col::<i64>("n")?).unwrap_or(0);
        }
        Ok(counts)
    }
}
