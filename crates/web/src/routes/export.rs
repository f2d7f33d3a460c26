//! An export streamed as the response body: the service writes on a blocking thread into a
//! small bounded channel (at most [`CHANNEL_CHUNKS`] chunks of [`CHUNK_BYTES`] in flight) that
//! the body reads from, so a response of any size holds about a megabyte of memory. An error
//! before the first bytes is the response's status; after them, the body ends early (the
//! client sees an incomplete transfer). A client that goes away, or the request's deadline
//! passing, stops the export.

use std::future::Future;
use std::io::Write;
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::time::Instant;

use axum::body::Body;
use cloudbill_service::{Billing, Principal, ServiceError};

use crate::ApiError;

/// Bytes per body chunk.
pub(crate) const CHUNK_BYTES: usize = 256 * 1024;
/// Chunks waiting for the client, at most.
pub(crate) const CHANNEL_CHUNKS: usize = 4;

type Message = Result<Vec<u8>, ServiceError>;

/// What the service writes into: chunks to the body, until the deadline.
pub(crate) struct ChannelWriter {
    tx: SyncSender<Message>,
    buf: Vec<u8>,
    deadline: Instant,
}

impl ChannelWriter {
    fn send(&mut self) -> std::io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK_BYTES));
        self.tx
            .send(Ok(chunk))
            .map_err(|_| std::io::Error::other("the client went away"))
    }
}

impl Write for ChannelWriter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        if Instant::now() >= self.deadline {
            return Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "the export took longer than the request may and was stopped",
            ));
        }
        self.buf.extend_from_slice(data);
        if self.buf.len() >= CHUNK_BYTES {
            self.send()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.send()
    }
}

/// Runs `export` (given the service, the principal and the writer) on a blocking thread and
/// returns the body it writes — or its error, when it fails before writing anything.
pub(crate) async fn stream<F, Fut>(
    billing: Billing,
    principal: Principal,
    deadline: Instant,
    export: F,
) -> Result<Body, ApiError>
where
    F: FnOnce(Billing, Principal, ChannelWriter) -> Fut + Send + 'static,
    Fut: Future<Output = Result<usize, ServiceError>> + Send,
{
    let (tx, rx) = sync_channel::<Message>(CHANNEL_CHUNKS);
    let handle = tokio::runtime::Handle::current();
    let writer = ChannelWriter {
        tx: tx.clone(),
        buf: Vec::with_capacity(CHUNK_BYTES),
        deadline,
    };
    tokio::task::spawn_blocking(move || {
        // A blocking thread of its own: the writer blocks it while the client reads.
        if let Err(e) = handle.block_on(export(billing, principal, writer)) {
            // The body (or the status, before any byte) carries it; a client gone: nobody.
            let _ = tx.send(Err(e));
        }
    });
    let (first, rx) = next(rx).await;
    match first {
        Some(Err(e)) => Err(e.into()),
        first => {
            let head = futures::stream::iter(first.map(|m| m.map_err(as_io)));
            let rest = futures::stream::unfold(rx, |rx| async move {
                let (message, rx) = next(rx).await;
                message.map(|m| (m.map_err(as_io), rx))
            });
            Ok(Body::from_stream(futures::StreamExt::chain(head, rest)))
        }
    }
}

#[allow(clippy::needless_pass_by_value)] // A `map_err` target.
fn as_io(e: ServiceError) -> std::io::Error {
    tracing::warn!(error = %e, "an export stopped after its first bytes");
    std::io::Error::other(e.to_string())
}

/// The next message (`None`: the export is over), waited for off the async workers.
async fn next(rx: Receiver<Message>) -> (Option<Message>, Receiver<Message>) {
    match tokio::task::spawn_blocking(move || (rx.recv().ok(), rx)).await {
        Ok(pair) => pair,
        Err(e) => {
            tracing::error!(error = %e, "an export's reader failed");
            let (_, rx) = sync_channel(1);
            (None, rx)
        }
    }
}
