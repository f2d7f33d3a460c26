//! The senders against loopback receivers: what goes on the wire, and what errors say.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use cloudbill_core::{
    Channel, ChannelId, ChannelKind, ClientSecret, DomainId, Event, EventId, Name,
};
use cloudbill_notify::{signature, SenderConfig, Senders};
use cloudbill_service::{Notifier, Outgoing};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Accepts one request, answers `status`, returns the raw request.
async fn one_request(status: u16) -> (String, tokio::task::JoinHandle<String>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        let (mut stream, _) = listener.accept().await.unwrap();
        let mut buf = Vec::new();
        let mut chunk = [0u8; 4096];
        loop {
            let n = stream.read(&mut chunk).await.unwrap();
            buf.extend_from_slice(&chunk[..n]);
            let text = String::from_utf8_lossy(&buf).to_string();
            if let Some((head, body)) = text.split_once("\r\n\r\n") {
                let len: usize = head
                    .lines()
                    .find_map(|l| {
                        l.to_ascii_lowercase()
                            .strip_prefix("content-length:")
                            .map(|v| v.trim().parse().unwrap())
                    })
                    .unwrap_or(0);
                if body.len() >= len {
                    break;
                }
            }
        }
        let reply = format!("HTTP/1.1 {status} X\r\ncontent-length: 4\r\n\r\nnope");
        stream.write_all(reply.as_bytes()).await.unwrap();
        String::from_utf8(buf).unwrap()
    });
    (format!("http://{addr}"), task)
}

fn channel(kind: ChannelKind, target: &str) -> Channel {
    Channel {
        id: ChannelId::new(),
        domain: DomainId::new(),
        name: Name::parse("c", "channel name").unwrap(),
        kind,
        target: target.into(),
        smtp: None,
        created_at: chrono::Utc::now(),
    }
}

fn event() -> Event {
    let id = EventId::new();
    Event {
        id,
        domain: DomainId::new(),
        kind: "budget.threshold_crossed".into(),
        subject: uuid::Uuid::new_v4(),
        subject_name: "web".into(),
        occurred_at: chrono::Utc::now(),
        cause: "test".into(),
        payload: format!(
            r#"{{"id":"{id}","type":"budget.threshold_crossed","link":"https://cb.example.com/"}}"#
        ),
    }
}

#[tokio::test]
async fn a_webhook_carries_the_exact_body_its_signature_and_event_id() {
    let (base, request) = one_request(204).await;
    let senders = Senders::new(SenderConfig::default()).unwrap();
    let c = channel(ChannelKind::Webhook, &format!("{base}/hook"));
    let secret = ClientSecret::new("whsec-0123456789abcdef").unwrap();
    let e = event();
    senders
        .send(Outgoing {
            channel: &c,
            secret: Some(&secret),
            event: &e,
            summary: "s",
        })
        .await
        .unwrap();
    let raw = request.await.unwrap();
    let (head, body) = raw.split_once("\r\n\r\n").unwrap();
    assert!(head.starts_with("POST /hook HTTP/1.1"));
    assert_eq!(
        body, e.payload,
        "the body is the stored payload, byte for byte"
    );
    let head = head.to_ascii_lowercase();
    let sig = signature(secret.expose().as_bytes(), e.payload.as_bytes());
    assert!(
        head.contains(&format!("x-cloudbill-signature: {sig}")),
        "{head}"
    );
    assert!(
        head.contains(&format!("x-cloudbill-event-id: {}", e.id)),
        "{head}"
    );
    assert!(head.contains("content-type: application/json"));
}

#[tokio::test]
async fn slack_gets_text_and_blocks_and_errors_never_show_its_url() {
    let (base, request) = one_request(200).await;
    let senders = Senders::new(SenderConfig::default()).unwrap();
    let c = channel(ChannelKind::Slack, "http://127.0.0.1/…");
    let url = ClientSecret::new(&format!("{base}/services/T000/B000/XXXXSECRETXXXX")).unwrap();
    let e = event();
    senders
        .send(Outgoing {
            channel: &c,
            secret: Some(&url),
            event: &e,
            summary: "Budget web: crossed <80%>",
        })
        .await
        .unwrap();
    let raw = request.await.unwrap();
    let body: serde_json::Value =
        serde_json::from_str(raw.split_once("\r\n\r\n").unwrap().1).unwrap();
    assert_eq!(body["text"], "Budget web: crossed <80%>");
    let block = body["blocks"][0]["text"]["text"].as_str().unwrap();
    assert!(
        block.contains("&lt;80%&gt;")
            && block.contains("<https://cb.example.com/|Open in cloudbill>"),
        "{block}"
    );

    // A refusing receiver and an unreachable one: the error says why, never the URL's secret.
    let (base, _request) = one_request(403).await;
    let url = ClientSecret::new(&format!("{base}/services/T000/B000/XXXXSECRETXXXX")).unwrap();
    let err = senders
        .send(Outgoing {
            channel: &c,
            secret: Some(&url),
            event: &e,
            summary: "s",
        })
        .await
        .unwrap_err();
    assert!(err.contains("HTTP 403"), "{err}");
    let dead = ClientSecret::new("http://127.0.0.1:9/services/T000/B000/XXXXSECRETXXXX").unwrap();
    let err = senders
        .send(Outgoing {
            channel: &c,
            secret: Some(&dead),
            event: &e,
            summary: "s",
        })
        .await
        .unwrap_err();
    assert!(err.contains("could not connect"), "{err}");
    assert!(
        !err.contains("SECRET") && !err.contains("/services/"),
        "{err}"
    );
}

#[tokio::test]
async fn link_local_receivers_are_refused() {
    let senders = Senders::new(SenderConfig::default()).unwrap();
    let e = event();
    let secret = ClientSecret::new("whsec-0123456789abcdef").unwrap();
    for url in [
        "http://169.254.169.254/latest/meta-data/",
        "http://[fe80::1]/x",
        "http://[fd00:ec2::254]/x",
    ] {
        let c = channel(ChannelKind::Webhook, url);
        let err = senders
            .send(Outgoing {
                channel: &c,
                secret: Some(&secret),
                event: &e,
                summary: "s",
            })
            .await
            .unwrap_err();
        assert!(err.contains("link-local"), "{url}: {err}");
    }
}

/// #30: a receiver answering 500 with an endless body (1.5 GB took the server to 3.37 GB
/// RSS): the delivery fails with a short message after reading a small prefix, and the
/// receiver sees the client stop reading long before its body ends.
#[tokio::test]
async fn a_receivers_endless_error_body_is_read_only_as_a_prefix() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let sent = tokio::spawn(async move {
        let (mut stream, _) = listener.accept().await.unwrap();
        let mut chunk = vec![0u8; 65536];
        // The request: read until its headers and (small) body have arrived.
        let mut seen = Vec::new();
        while !String::from_utf8_lossy(&seen).contains("\r\n\r\n") {
            let n = stream.read(&mut chunk).await.unwrap();
            seen.extend_from_slice(&chunk[..n]);
        }
        stream
            .write_all(b"HTTP/1.1 500 X\r\ncontent-length: 1500000000\r\n\r\n")
            .await
            .unwrap();
        let block = vec![b'x'; 65536];
        let mut written: u64 = 0;
        // Until the client hangs up (or 1.5 GB, which would be the bug).
        while written < 1_500_000_000 {
            if stream.write_all(&block).await.is_err() {
                break;
            }
            written += block.len() as u64;
        }
        written
    });
    let senders = Senders::new(SenderConfig::default()).unwrap();
    let c = channel(ChannelKind::Webhook, &format!("http://{addr}/hook"));
    let secret = ClientSecret::new("whsec-0123456789abcdef").unwrap();
    let e = event();
    let error = senders
        .send(Outgoing {
            channel: &c,
            secret: Some(&secret),
            event: &e,
            summary: "s",
        })
        .await
        .unwrap_err();
    assert!(
        error.starts_with("the receiver answered HTTP 500: xxx"),
        "{error}"
    );
    assert!(error.len() < 300, "{}", error.len());
    let written = sent.await.unwrap();
    // What the kernel's socket buffers hold plus the prefix: megabytes at most, not 1.5 GB.
    assert!(written < 64 * 1024 * 1024, "{written} bytes were sent");
}
