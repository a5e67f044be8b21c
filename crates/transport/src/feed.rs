//! The transport as consumers see it: an ordered feed of events, read by position.

use std::future::Future;
use std::time::Duration;

use axum::Router;
use axum::extract::{Query, State};
use axum::routing::get;
use contracts::events::Event;
use contracts::internal::{FEED_PATH, FeedPage};
use runtime::{ApiError, ApiJson, CallError, Peer};
use serde::Deserialize;

use crate::outbox::Outbox;

/// Events one feed page may carry. Big enough that a consumer applies hundreds of events per
/// local transaction, small enough that a page stays well under a megabyte.
pub const PAGE_EVENTS_MAX: i64 = 1_000;

/// The longest a feed request may wait for a new event. Past this the consumer simply asks
/// again; keeping it short bounds how long a shutdown waits for a parked request.
pub const WAIT_MS_MAX: u64 = 10_000;

/// A transport failure. Every one of them may pass (the producer restarts, the network comes
/// back), so the consumer retries with backoff; `retryable` says whether waiting can help.
#[derive(Debug, thiserror::Error)]
#[error("{source}")]
pub struct TransportError {
    #[source]
    source: anyhow::Error,
    retryable: bool,
}

impl TransportError {
    pub fn is_retryable(&self) -> bool {
        self.retryable
    }
}

impl From<CallError> for TransportError {
    fn from(error: CallError) -> Self {
        Self {
            retryable: error.is_retryable(),
            source: error.into(),
        }
    }
}

/// An ordered source of events. Positions are strictly increasing; a consumer that stores the
/// position of the last event it applied can resume from it after any crash.
pub trait EventFeed: Send + Sync + 'static {
    /// A stable name: the key of the consumer's position.
    fn name(&self) -> &str;

    /// Up to `limit` events after `after`, oldest first. If none is there yet, the feed may
    /// wait up to `wait` for one.
    fn fetch(
        &self,
        after: i64,
        limit: i64,
        wait: Duration,
    ) -> impl Future<Output = Result<Vec<Event>, TransportError>> + Send;
}

/// The embedded transport: the producer's outbox, read over HTTP.
#[derive(Debug, Clone)]
pub struct HttpFeed {
    name: String,
    producer: Peer,
}

impl HttpFeed {
    pub fn new(name: impl Into<String>, producer: Peer) -> Self {
        Self {
            name: name.into(),
            producer,
        }
    }
}

impl EventFeed for HttpFeed {
    fn name(&self) -> &str {
        &self.name
    }

    async fn fetch(
        &self,
        after: i64,
        limit: i64,
        wait: Duration,
    ) -> Result<Vec<Event>, TransportError> {
        let wait_ms = (wait.as_millis() as u64).min(WAIT_MS_MAX);
        let path = format!("{FEED_PATH}?after={after}&limit={limit}&wait_ms={wait_ms}");
        let page: FeedPage = self
            .producer
            .get_waiting(&path, Duration::from_millis(wait_ms))
            .await?;
        Ok(page.events)
    }
}

#[derive(Debug, Deserialize)]
struct FeedQuery {
    #[serde(default)]
    after: i64,
    #[serde(default = "default_limit")]
    limit: i64,
    #[serde(default)]
    wait_ms: u64,
}

fn default_limit() -> i64 {
    256
}

/// The producer's side of the embedded transport: `GET /internal/feed`.
pub fn router(outbox: Outbox) -> Router {
    Router::new()
        .route(FEED_PATH, get(serve_feed))
        .with_state(outbox)
}

async fn serve_feed(
    State(outbox): State<Outbox>,
    query: Result<Query<FeedQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<ApiJson<FeedPage>, ApiError> {
    let Query(query) = query.map_err(|e| ApiError::Invalid(e.body_text()))?;
    if query.after < 0 || !(1..=PAGE_EVENTS_MAX).contains(&query.limit) {
        return Err(ApiError::Invalid(format!(
            "after must be >= 0 and limit between 1 and {PAGE_EVENTS_MAX}"
        )));
    }
    let wait = Duration::from_millis(query.wait_ms.min(WAIT_MS_MAX));
    let events = outbox
        .read(query.after, query.limit, wait)
        .await
        .map_err(|e| ApiError::Internal(e.into()))?;
    Ok(ApiJson(FeedPage {
        events,
        head: outbox.head(),
    }))
}
