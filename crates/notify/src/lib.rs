//! How cloudbill's notifications travel: [`Senders`] implements the service's `Notifier` for
//! every channel kind.
//!
//! - **webhook**: `POST` of the event's JSON exactly as stored, with
//!   `X-Cloudbill-Signature: sha256=<hex HMAC-SHA256 of the raw body with the channel secret>`,
//!   `X-Cloudbill-Event-Id` (the same on every retry) and `X-Cloudbill-Event-Type`;
//! - **slack**: an incoming webhook's `{"text", "blocks"}` message;
//! - **email**: a plain-text mail over SMTP (STARTTLS when the channel says so; lettre).
//!
//! A 2xx answer (SMTP: an accepted message) is a delivery; anything else is an error the
//! service retries. Redirects are not followed. Error texts never hold a channel's secret: a
//! Slack URL is the credential, so HTTP errors are reported without their URL.
//!
//! **Architecture invariant:** no business rule here — what to send and when is the
//! service's; this crate only signs, formats and transports.

use std::time::Duration;

use async_trait::async_trait;
use cloudbill_core::ChannelKind;
use cloudbill_service::{Notifier, Outgoing};
use hmac::{Hmac, Mac};
use lettre::message::header::ContentType;
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use sha2::Sha256;

/// The most bytes of a receiver's answer read (for the error of a failed delivery).
pub const MAX_RECEIVER_BODY: usize = 4096;

/// The header carrying the body's signature.
pub const SIGNATURE_HEADER: &str = "X-Cloudbill-Signature";
/// The header carrying the event id.
pub const EVENT_ID_HEADER: &str = "X-Cloudbill-Event-Id";
/// The header carrying the event type.
pub const EVENT_TYPE_HEADER: &str = "X-Cloudbill-Event-Type";

/// The `X-Cloudbill-Signature` value of `body` under `secret`: `sha256=<hex>`.
///
/// ```
/// let sig = cloudbill_notify::signature(b"whsec-0123456789abcdef", br#"{"id":"1"}"#);
/// assert!(sig.starts_with("sha256=") && sig.len() == 7 + 64);
/// ```
pub fn signature(secret: &[u8], body: &[u8]) -> String {
    // HMAC takes a key of any length; `new_from_slice` cannot fail for it.
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret) else {
        return String::new();
    };
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// Settings of the senders.
#[derive(Debug, Clone)]
pub struct SenderConfig {
    /// One HTTP request's or SMTP session's limit.
    pub timeout: Duration,
    /// The `From` of e-mails.
    pub mail_from: String,
    /// Let webhooks and Slack URLs reach link-local addresses (a cloud instance's metadata
    /// service: off, as for provider endpoints; `CLOUDBILL_ALLOW_LINK_LOCAL_ENDPOINTS=1`).
    pub allow_link_local: bool,
}

impl SenderConfig {
    fn policy(&self) -> cloudbill_outbound::Policy {
        cloudbill_outbound::Policy {
            connect_timeout: self.timeout,
            request_timeout: self.timeout,
            allow_link_local: self.allow_link_local,
            same_origin_redirects: false,
        }
    }
}

impl Default for SenderConfig {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(10),
            mail_from: "cloudbill <cloudbill@localhost>".into(),
            allow_link_local: false,
        }
    }
}

/// Sends notifications over HTTP (webhook, Slack) and SMTP (e-mail).
#[derive(Debug, Clone)]
pub struct Senders {
    http: reqwest::Client,
    config: SenderConfig,
}

impl Senders {
    /// Senders with `config`.
    pub fn new(config: SenderConfig) -> Result<Self, String> {
        // The shared outbound policy: no redirect followed, no link-local address.
        let http = config.policy().client()?;
        Ok(Self { http, config })
    }

    async fn post(
        &self,
        url: &str,
        body: String,
        headers: &[(&str, String)],
    ) -> Result<(), String> {
        self.config.policy().check_url(url)?;
        let mut request = self
            .http
            .post(url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body);
        for (k, v) in headers {
            request = request.header(*k, v);
        }
        let response = request.send().await.map_err(|e| {
            // Without the URL: a Slack URL is a credential.
            let e = e.without_url();
            if e.is_timeout() {
                "the receiver did not answer in time".to_owned()
            } else if e.is_connect() {
                format!("could not connect to the receiver: {}", chain(&e))
            } else {
                chain(&e)
            }
        })?;
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        // At most a small prefix of the receiver's answer is read: a body of gigabytes costs
        // nothing (the rest is never read; the connection is dropped).
        let prefix = cloudbill_outbound::read_prefix(response, MAX_RECEIVER_BODY).await;
        let text: String = String::from_utf8_lossy(&prefix).chars().take(200).collect();
        Err(format!(
            "the receiver answered HTTP {}{}",
            status.as_u16(),
            if text.trim().is_empty() {
                String::new()
            } else {
                format!(": {}", text.trim())
            }
        ))
    }

    async fn webhook(&self, m: Outgoing<'_>) -> Result<(), String> {
        let secret = m
            .secret
            .ok_or("the webhook channel has no signing secret")?;
        let body = m.event.payload.clone();
        let sig = signature(secret.expose().as_bytes(), body.as_bytes());
        self.post(
            &m.channel.target,
            body,
            &[
                (SIGNATURE_HEADER, sig),
                (EVENT_ID_HEADER, m.event.id.to_string()),
                (EVENT_TYPE_HEADER, m.event.kind.clone()),
            ],
        )
        .await
    }

    async fn slack(&self, m: Outgoing<'_>) -> Result<(), String> {
        let url = m.secret.ok_or("the Slack channel has no webhook URL")?;
        let link = m.event.link().filter(|l| l.starts_with("http"));
        let mut text = format!("*{}*", escape_slack(m.summary));
        if let Some(link) = link {
            text = format!("{text}\n<{}|Open in cloudbill>", escape_slack(&link));
        }
        let body = serde_json::json!({
            "text": m.summary,
            "blocks": [
                {"type": "section", "text": {"type": "mrkdwn", "text": text}},
                {"type": "context", "elements": [
                    {"type": "mrkdwn", "text": format!("event `{}` · {}", m.event.id, escape_slack(&m.event.kind))}
                ]}
            ]
        });
        self.post(url.expose(), body.to_string(), &[]).await
    }

    async fn email(&self, m: Outgoing<'_>) -> Result<(), String> {
        let smtp = m
            .channel
            .smtp
            .as_ref()
            .ok_or("the e-mail channel has no SMTP server")?;
        let pretty = serde_json::from_str::<serde_json::Value>(&m.event.payload)
            .and_then(|v| serde_json::to_string_pretty(&v))
            .unwrap_or_else(|_| m.event.payload.clone());
        let message = Message::builder()
            .from(
                self.config
                    .mail_from
                    .parse()
                    .map_err(|e| format!("the From address is not valid: {e}"))?,
            )
            .to(m
                .channel
                .target
                .parse()
                .map_err(|e| format!("the recipient is not valid: {e}"))?)
            .subject(m.summary)
            .header(ContentType::TEXT_PLAIN)
            .message_id(Some(format!("<{}@cloudbill>", m.event.id)))
            .body(format!(
                "{}\n\nEvent {} ({}).\n\n{pretty}\n",
                m.summary, m.event.id, m.event.kind
            ))
            .map_err(|e| format!("could not build the message: {e}"))?;
        let builder = if smtp.starttls {
            AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(&smtp.host)
                .map_err(|e| format!("SMTP: {e}"))?
        } else {
            AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&smtp.host)
        };
        let mut builder = builder.port(smtp.port).timeout(Some(self.config.timeout));
        if let (Some(user), Some(password)) = (&smtp.user, m.secret) {
            builder =
                builder.credentials(Credentials::new(user.clone(), password.expose().to_owned()));
        }
        builder
            .build()
            .send(message)
            .await
            .map(drop)
            .map_err(|e| format!("SMTP: {e}"))
    }
}

/// An error with its causes (`error sending request: … : connection refused`); reqwest's
/// errors here carry no URL (`without_url`), and their causes name hosts, not paths.
fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut next = e.source();
    while let Some(s) = next {
        let text = s.to_string();
        if !out.contains(&text) {
            out = format!("{out}: {text}");
        }
        next = s.source();
    }
    out
}

/// Escapes Slack's mrkdwn control characters.
fn escape_slack(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[async_trait]
impl Notifier for Senders {
    async fn send(&self, message: Outgoing<'_>) -> Result<(), String> {
        match message.channel.kind {
            ChannelKind::Webhook => self.webhook(message).await,
            ChannelKind::Slack => self.slack(message).await,
            ChannelKind::Email => self.email(message).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signature_is_hmac_sha256_of_the_raw_body() {
        // RFC 4231 test case 2.
        let sig = signature(b"Jefe", b"what do ya want for nothing?");
        assert_eq!(
            sig,
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn slack_text_is_escaped() {
        assert_eq!(escape_slack("<a&b>"), "&lt;a&amp;b&gt;");
    }
}
