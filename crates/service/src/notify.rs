//! Channels and the delivery of the outbox: events reach their channels after the commit
//! that recorded them, at least once, retried with backoff until they are accepted or given
//! up. How a message travels (HTTP, SMTP) is a [`Notifier`]'s business (cloudbill-notify).

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::Utc;
use cloudbill_core::{
    check_email, check_http_url, check_secret_url, Channel, ChannelId, ChannelKind, ClientSecret,
    Delivery, Event, Name, SmtpSettings,
};
use cloudbill_store::{DeliveryOutcome, DueDelivery};
use futures::StreamExt;
use serde::Serialize;

use crate::billing::matches;
use crate::{Billing, Principal, ServiceError};

/// One message to send: an event to a channel.
#[derive(Debug, Clone, Copy)]
pub struct Outgoing<'a> {
    /// Where.
    pub channel: &'a Channel,
    /// The channel's secret (a webhook's signing secret, a Slack URL, an SMTP password).
    pub secret: Option<&'a ClientSecret>,
    /// What: its `payload` is the webhook body, byte for byte.
    pub event: &'a Event,
    /// The event in one line, for people (Slack text, e-mail subject).
    pub summary: &'a str,
}

/// Sends messages to channels. cloudbill-notify implements it over HTTP and SMTP; tests
/// implement their own.
#[async_trait]
pub trait Notifier: Send + Sync {
    /// Sends one message; `Err` says why it was not accepted (it will be retried).
    async fn send(&self, message: Outgoing<'_>) -> Result<(), String>;
}

/// How deliveries are retried.
#[derive(Debug, Clone)]
pub struct DeliveryPolicy {
    /// The first retry comes within this long of a failure (between half of it and it).
    pub first_retry: Duration,
    /// Retries back off exponentially up to this.
    pub max_backoff: Duration,
    /// A delivery still failing this long after its event is given up (marked failed).
    pub give_up_after: Duration,
    /// One attempt's limit (connect, send, answer).
    pub attempt_timeout: Duration,
    /// Attempts made at once.
    pub concurrency: usize,
}

impl Default for DeliveryPolicy {
    fn default() -> Self {
        Self {
            first_retry: Duration::from_secs(5),
            max_backoff: Duration::from_secs(10 * 60),
            give_up_after: Duration::from_secs(24 * 60 * 60),
            attempt_timeout: Duration::from_secs(10),
            concurrency: 8,
        }
    }
}

impl DeliveryPolicy {
    /// The wait before the next attempt after `attempts` failed ones: `first_retry × 2^(n−1)`
    /// capped at `max_backoff`, times a random factor in [0.5, 1] (jitter, so receivers that
    /// come back are not hit by every sender at once).
    pub fn backoff(&self, attempts: u32) -> Duration {
        let exp = attempts.saturating_sub(1).min(30);
        let base = self
            .first_retry
            .saturating_mul(1u32 << exp)
            .min(self.max_backoff);
        base.mul_f64(0.5 + fastrand::f64() * 0.5)
    }
}

/// A channel to add.
#[derive(Debug, Clone)]
pub struct NewChannel {
    /// Unique name in the domain.
    pub name: String,
    /// Where it delivers.
    pub spec: ChannelSpec,
}

/// Where a new channel delivers.
#[derive(Debug, Clone)]
pub enum ChannelSpec {
    /// POST the event JSON to `url`, signed with `secret` (HMAC-SHA256).
    Webhook {
        /// http(s) URL.
        url: String,
        /// The signing secret (at least 16 characters).
        secret: ClientSecret,
    },
    /// A Slack incoming-webhook URL (a secret: anyone holding it can post).
    Slack {
        /// The URL.
        url: ClientSecret,
    },
    /// E-mail over SMTP.
    Email {
        /// Recipient.
        to: String,
        /// `HOST:PORT`.
        smtp: String,
        /// Upgrade with STARTTLS (required).
        starttls: bool,
        /// Login user.
        user: Option<String>,
        /// Login password.
        password: Option<ClientSecret>,
    },
}

/// The shortest webhook signing secret accepted.
pub const MIN_WEBHOOK_SECRET: usize = 16;

/// What `notify flush` did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct FlushReport {
    /// Deliveries accepted by their receivers.
    pub sent: u64,
    /// Attempts that failed and will be retried.
    pub retrying: u64,
    /// Deliveries given up.
    pub failed: u64,
}

/// A delivery as the log shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeliveryView {
    /// The outbox row.
    #[serde(flatten)]
    pub delivery: Delivery,
    /// The channel's name.
    pub channel_name: String,
}

/// Counts of the outbox, for metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct DeliveryCounts {
    /// Not delivered yet.
    pub pending: u64,
    /// Delivered.
    pub sent: u64,
    /// Given up.
    pub failed: u64,
}

impl Billing {
    /// Sets how notifications are sent (the binaries' HTTP/SMTP notifier). Without one,
    /// events stay in the outbox until a process that has one delivers them. Set once: a
    /// second call is refused (`false`) and the first notifier stays, so deliveries under way
    /// never change senders halfway.
    pub fn set_notifier(&self, notifier: Arc<dyn Notifier>) -> bool {
        self.inner.notifier.set(notifier).is_ok()
    }

    /// Adds a notification channel (admin only). Nothing is sent; `test_channel` tries it.
    pub async fn add_channel(
        &self,
        p: &Principal,
        new: NewChannel,
    ) -> Result<Channel, ServiceError> {
        p.require_admin("add notification channels")?;
        let name = Name::parse(&new.name, "channel name")?;
        let (kind, target, smtp, secret) = match new.spec {
            ChannelSpec::Webhook { url, secret } => {
                let url = check_http_url("webhook URL", &url)?;
                if secret.expose().chars().count() < MIN_WEBHOOK_SECRET {
                    return Err(ServiceError::Invalid(format!(
                        "a webhook signing secret has at least {MIN_WEBHOOK_SECRET} characters"
                    )));
                }
                (ChannelKind::Webhook, url.to_string(), None, Some(secret))
            }
            ChannelSpec::Slack { url } => {
                let parsed = check_secret_url("Slack webhook URL", url.expose())?;
                // The URL is the credential: only its origin is shown.
                let shown = format!(
                    "{}://{}/…",
                    parsed.scheme(),
                    parsed.host_str().unwrap_or_default()
                );
                (ChannelKind::Slack, shown, None, Some(url))
            }
            ChannelSpec::Email {
                to,
                smtp,
                starttls,
                user,
                password,
            } => {
                let to = check_email(&to)?;
                let smtp = SmtpSettings::parse(&smtp, starttls, user)?;
                if password.is_some() != smtp.user.is_some() {
                    return Err(ServiceError::Invalid(
                        "an SMTP user and password go together".into(),
                    ));
                }
                let loopback = smtp.host == "localhost"
                    || smtp
                        .host
                        .parse::<std::net::IpAddr>()
                        .is_ok_and(|ip| ip.is_loopback());
                if password.is_some() && !smtp.starttls && !loopback {
                    return Err(ServiceError::Invalid(
                        "an SMTP password is sent only over STARTTLS (or to a loopback host)"
                            .into(),
                    ));
                }
                (ChannelKind::Email, to, Some(smtp), password)
            }
        };
        let channel = Channel {
            id: ChannelId::new(),
            domain: self.domain_id(),
            name,
            kind,
            target,
            smtp,
            created_at: self.now(),
        };
        self.notify_store()
            .create_channel(&channel, secret.as_ref())
            .await?;
        Ok(channel)
    }

    /// The channels of the domain. Members see names and kinds only (to pick one for their
    /// budgets), not where they deliver.
    pub async fn channels(&self, p: &Principal) -> Result<Vec<Channel>, ServiceError> {
        let mut all = self.notify_store().channels(self.domain_id()).await?;
        if let Principal::ProjectMember { .. } = p {
            for c in &mut all {
                c.target.clear();
                c.smtp = None;
            }
        }
        Ok(all)
    }

    /// One channel by name or id.
    pub async fn channel(&self, p: &Principal, key: &str) -> Result<Channel, ServiceError> {
        self.channels(p)
            .await?
            .into_iter()
            .find(|c| matches(&c.name, c.id.as_uuid(), key))
            .ok_or_else(|| ServiceError::NotFound {
                what: "channel",
                key: key.to_owned(),
            })
    }

    /// Removes a channel no budget uses (admin only); its pending deliveries go with it.
    pub async fn remove_channel(&self, p: &Principal, key: &str) -> Result<(), ServiceError> {
        p.require_admin("remove notification channels")?;
        let channel = self.channel(p, key).await?;
        let users: Vec<String> = self
            .notify_store()
            .budgets(self.domain_id())
            .await?
            .into_iter()
            .filter(|b| {
                b.notifications
                    .iter()
                    .any(|n| n.channels.contains(&channel.id))
            })
            .map(|b| b.name.to_string())
            .collect();
        if !users.is_empty() {
            return Err(ServiceError::Conflict(format!(
                "channel {} is used by budget(s) {}; delete or change them first",
                channel.name,
                users.join(", ")
            )));
        }
        self.notify_store()
            .delete_channel(self.domain_id(), channel.id)
            .await?;
        Ok(())
    }

    /// Sends a `channel.test` message to a channel now (admin only), outside the outbox:
    /// `Ok` when the receiver accepted it.
    pub async fn test_channel(&self, p: &Principal, key: &str) -> Result<Event, ServiceError> {
        p.require_admin("test notification channels")?;
        let channel = self.channel(p, key).await?;
        let notifier = self.notifier()?;
        let secret = self
            .notify_store()
            .channel_secret(self.domain_id(), channel.id)
            .await?;
        let now = Utc::now();
        let id = cloudbill_core::EventId::new();
        let domain = self.inner.domain.name.to_string();
        let payload = cloudbill_core::EventPayload::ChannelTest(cloudbill_core::ChannelTestEvent {
            id,
            kind: "channel.test".into(),
            occurred_at: now,
            domain,
            channel: channel.name.to_string(),
        })
        .to_json();
        let event = Event {
            id,
            domain: self.domain_id(),
            kind: "channel.test".into(),
            subject: channel.id.as_uuid(),
            subject_name: channel.name.to_string(),
            occurred_at: now,
            cause: "test".into(),
            payload,
        };
        let summary = format!("cloudbill test message for channel {}", channel.name);
        let attempt = notifier.send(Outgoing {
            channel: &channel,
            secret: secret.as_ref(),
            event: &event,
            summary: &summary,
        });
        match tokio::time::timeout(self.inner.config.delivery.attempt_timeout, attempt).await {
            Ok(Ok(())) => Ok(event),
            Ok(Err(e)) => Err(ServiceError::Receiver(format!(
                "channel {} did not accept the test message: {e}",
                channel.name
            ))),
            Err(_) => Err(ServiceError::Receiver(format!(
                "channel {} did not answer within {} s",
                channel.name,
                self.inner.config.delivery.attempt_timeout.as_secs()
            ))),
        }
    }

    fn notifier(&self) -> Result<Arc<dyn Notifier>, ServiceError> {
        self.inner.notifier.get().cloned().ok_or_else(|| {
            ServiceError::Invalid("this process has no notifier to send with".into())
        })
    }

    /// Delivers every due delivery of the outbox (admin only): each attempt bounded by the
    /// policy's timeout, failures rescheduled with backoff, given up after the policy's limit.
    pub async fn flush_notifications(&self, p: &Principal) -> Result<FlushReport, ServiceError> {
        p.require_admin("deliver notifications")?;
        self.deliver_due().await
    }

    /// [`Billing::flush_notifications`] without the principal: the process that recorded an
    /// event delivers it at once after its commit, and the server's worker retries.
    pub(crate) async fn deliver_due(&self) -> Result<FlushReport, ServiceError> {
        let notifier = self.notifier()?;
        let policy = self.inner.config.delivery.clone();
        let store = self.notify_store();
        let domain = self.domain_id();
        let mut report = FlushReport::default();
        // Rounds until nothing is due (a retry is due later, so this ends).
        for _ in 0..100 {
            let now = Utc::now();
            let claim = chrono::Duration::from_std(policy.attempt_timeout * 3)
                .unwrap_or_else(|_| chrono::Duration::minutes(1));
            let due = store.claim_deliveries(domain, now, now + claim, 64).await?;
            if due.is_empty() {
                break;
            }
            let channels = store.channels(domain).await?;
            let (notifier, policy_ref, channels) = (&notifier, &policy, &channels);
            let outcomes: Vec<Result<DeliveryOutcome, ServiceError>> = futures::stream::iter(due)
                .map(|d| async move {
                    self.attempt(notifier.as_ref(), policy_ref, channels, &d)
                        .await
                })
                .buffer_unordered(policy.concurrency.max(1))
                .collect()
                .await;
            for outcome in outcomes {
                match outcome? {
                    DeliveryOutcome::Sent => report.sent += 1,
                    DeliveryOutcome::Retry { .. } => report.retrying += 1,
                    DeliveryOutcome::Failed { .. } => report.failed += 1,
                }
            }
        }
        Ok(report)
    }

    async fn attempt(
        &self,
        notifier: &dyn Notifier,
        policy: &DeliveryPolicy,
        channels: &[Channel],
        due: &DueDelivery,
    ) -> Result<DeliveryOutcome, ServiceError> {
        let d = &due.delivery;
        let attempts = d.attempts.saturating_add(1);
        let result = match channels.iter().find(|c| c.id == d.channel) {
            None => Err("the channel was removed".to_owned()),
            Some(channel) => {
                let secret = self
                    .notify_store()
                    .channel_secret(self.domain_id(), channel.id)
                    .await?;
                let summary = summary(&due.event);
                let send = notifier.send(Outgoing {
                    channel,
                    secret: secret.as_ref(),
                    event: &due.event,
                    summary: &summary,
                });
                match tokio::time::timeout(policy.attempt_timeout, send).await {
                    Ok(r) => r,
                    Err(_) => Err(format!(
                        "no answer within {} s",
                        policy.attempt_timeout.as_secs()
                    )),
                }
            }
        };
        let now = Utc::now();
        let outcome = match result {
            Ok(()) => DeliveryOutcome::Sent,
            Err(error) => {
                let next = now
                    + chrono::Duration::from_std(policy.backoff(attempts))
                        .unwrap_or_else(|_| chrono::Duration::minutes(10));
                let deadline = d.created_at
                    + chrono::Duration::from_std(policy.give_up_after)
                        .unwrap_or_else(|_| chrono::Duration::days(1));
                tracing::warn!(delivery = %d.id, event = %d.event, attempts, error = %error, "notification not delivered");
                if next > deadline {
                    DeliveryOutcome::Failed { error }
                } else {
                    DeliveryOutcome::Retry { next, error }
                }
            }
        };
        self.notify_store()
            .finish_delivery(self.domain_id(), d.id, attempts, &outcome, now)
            .await?;
        Ok(outcome)
    }

    /// The outbox, newest first (admin only), at most `limit` rows.
    pub async fn delivery_log(
        &self,
        p: &Principal,
        limit: u32,
    ) -> Result<Vec<DeliveryView>, ServiceError> {
        p.require_admin("read the notification log")?;
        let channels = self.notify_store().channels(self.domain_id()).await?;
        Ok(self
            .notify_store()
            .deliveries(self.domain_id(), limit)
            .await?
            .into_iter()
            .map(|delivery| DeliveryView {
                channel_name: channels
                    .iter()
                    .find(|c| c.id == delivery.channel)
                    .map(|c| c.name.to_string())
                    .unwrap_or_default(),
                delivery,
            })
            .collect())
    }

    /// How many deliveries are pending, sent and failed (for metrics).
    pub async fn delivery_counts(&self) -> Result<DeliveryCounts, ServiceError> {
        let [pending, sent, failed] = self
            .notify_store()
            .delivery_counts(self.domain_id())
            .await?;
        Ok(DeliveryCounts {
            pending,
            sent,
            failed,
        })
    }

    /// Delivers what is due until `shutdown` turns true, every `tick` (the server's worker:
    /// retries, and events recorded by processes that could not deliver them).
    pub async fn run_delivery(
        &self,
        tick: Duration,
        mut shutdown: tokio::sync::watch::Receiver<bool>,
    ) {
        loop {
            tokio::select! {
                () = tokio::time::sleep(tick) => {}
                _ = shutdown.changed() => return,
            }
            if *shutdown.borrow() {
                return;
            }
            self.deliver_logged().await;
        }
    }

    /// Delivers what is due, logging the outcome.
    pub(crate) async fn deliver_logged(&self) {
        match self.deliver_due().await {
            Ok(r) if r == FlushReport::default() => {}
            Ok(r) => tracing::info!(
                domain = %self.domain_name(),
                sent = r.sent,
                retrying = r.retrying,
                failed = r.failed,
                "notifications delivered"
            ),
            Err(e) => {
                tracing::error!(domain = %self.domain_name(), error = %e, "notification delivery failed");
            }
        }
    }
}

/// An event in one line, for people.
pub(crate) fn summary(event: &Event) -> String {
    match event.said() {
        Ok(cloudbill_core::EventPayload::Budget(b)) => {
            let verb = if b.kind.ends_with("crossed") {
                "crossed"
            } else {
                "back under"
            };
            let value = if b.threshold.kind == "forecast" {
                b.forecast.map(|f| f.to_string()).unwrap_or_default()
            } else {
                b.actual.to_string()
            };
            format!(
                "Budget {}: {basis} spend {value} {cur} {verb} {level} of {amount} {cur} ({start} to {end})",
                b.budget,
                basis = b.threshold.kind,
                level = b.threshold.value,
                cur = b.currency,
                amount = b.amount,
                start = b.period.start,
                end = b.period.end,
            )
        }
        Ok(cloudbill_core::EventPayload::Anomaly(e)) => {
            let a = &e.anomaly;
            let days = if a.start == a.end {
                a.start.to_string()
            } else {
                format!("{} to {}", a.start, a.end)
            };
            format!(
                "Anomaly ({}) in {} {}: {} {cur} against {} expected, impact {} {cur}, {days} (monitor {})",
                a.kind,
                e.dimension,
                e.value,
                a.actual,
                a.expected,
                a.impact,
                e.monitor,
                cur = a.currency,
            )
        }
        // A test message, or a payload this version cannot read: its kind and subject.
        Ok(cloudbill_core::EventPayload::ChannelTest(_)) | Err(_) => {
            format!("cloudbill {}: {}", event.kind, event.subject_name)
        }
    }
}
