//! The transport as consumers see it: an ordered feed of events, read by cursor. And the
//! embedded transport's two ends: the producer serving its outbox over HTTP, and
//! [`HttpFeed`], the consumer's side.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{Query, State};
use axum::routing::get;
use contracts::events::{Cursor, Event};
use contracts::internal::{FEED_PATH, FeedPage};
use runtime::{ApiError, ApiJson, CallError, Peer};
use serde::Deserialize;
use storage::Db;

use crate::outbox::{Outbox, PAGE_EVENTS_MAX};

/// The longest a feed request may wait for a new event. Past this the consumer simply asks
/// again; keeping it short bounds how long a shutdown waits for a parked request.
pub const WAIT_MS_MAX: u64 = 10_000;

/// A transport failure. Every one may pass (the producer restarts, the network or the broker
/// comes back), so the consumer retries with backoff; `retryable` says whether waiting can
/// help at all.
#[derive(Debug, thiserror::Error)]
#[error("{source}")]
pub struct TransportError {
    #[source]
    source: anyhow::Error,
    retryable: bool,
}

impl TransportError {
    pub fn new(source: impl Into<anyhow::Error>, retryable: bool) -> Self {
        Self {
            source: source.into(),
            retryable,
        }
    }

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

/// An ordered source of events. Cursors strictly increase along a feed; a consumer that
/// stores the cursor of the last event it applied resumes after it, after any crash.
pub trait EventFeed: Send + Sync + 'static {
    /// The producer's name: the key of the consumer's position.
    fn name(&self) -> &str;

    /// Up to `limit` events after `after`, oldest first. If none is there yet, the feed may
    /// wait up to `wait` for one.
    fn fetch(
        &self,
        after: Cursor,
        limit: i64,
        wait: Duration,
    ) -> impl Future<Output = Result<Vec<Event>, TransportError>> + Send;

    /// Told once everything up to `upto` is applied and committed: a broker acknowledges it
    /// (the second half of "store the position, then acknowledge"). Nothing, by default.
    fn applied(&self, upto: Cursor) -> impl Future<Output = ()> + Send {
        let _ = upto;
        async {}
    }
}

/// The embedded transport: the producer's outbox, read over HTTP.
#[derive(Debug, Clone)]
pub struct HttpFeed {
    name: String,
    producer: Peer,
    /// Who is reading, so that the producer knows how far each consumer has got.
    consumer: String,
}

impl HttpFeed {
    pub fn new(name: impl Into<String>, producer: Peer, consumer: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            producer,
            consumer: consumer.into(),
        }
    }
}

impl EventFeed for HttpFeed {
    fn name(&self) -> &str {
        &self.name
    }

    async fn fetch(
        &self,
        after: Cursor,
        limit: i64,
        wait: Duration,
    ) -> Result<Vec<Event>, TransportError> {
        let wait_ms = (wait.as_millis() as u64).min(WAIT_MS_MAX);
        let path = format!(
            "{FEED_PATH}?after={after}&limit={limit}&wait_ms={wait_ms}&consumer={}",
            self.consumer
        );
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
    after: Option<String>,
    #[serde(default = "default_limit")]
    limit: i64,
    #[serde(default)]
    wait_ms: u64,
    #[serde(default)]
    consumer: Option<String>,
}

fn default_limit() -> i64 {
    256
}

/// How often a consumer's read position is written down at most: it only bounds pruning,
/// so a second's staleness costs nothing, and a write per fetch would.
const READER_RECORD_INTERVAL: Duration = Duration::from_secs(1);

#[derive(Clone)]
struct Producer {
    outbox: Outbox,
    db: Db,
    /// When each consumer's position was last written down.
    recorded: Arc<Mutex<HashMap<String, Instant>>>,
}

/// The producer's side of the embedded transport: `GET /internal/feed`.
pub fn router(outbox: Outbox, db: Db) -> Router {
    Router::new()
        .route(FEED_PATH, get(serve_feed))
        .with_state(Producer {
            outbox,
            db,
            recorded: Default::default(),
        })
}

async fn serve_feed(
    State(producer): State<Producer>,
    query: Result<Query<FeedQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<ApiJson<FeedPage>, ApiError> {
    let Query(query) = query.map_err(|e| ApiError::Invalid(e.body_text()))?;
    let after: Cursor = match &query.after {
        Some(text) => text.parse()?,
        None => Cursor::START,
    };
    if !(1..=PAGE_EVENTS_MAX).contains(&query.limit) {
        return Err(ApiError::Invalid(format!(
            "limit must be between 1 and {PAGE_EVENTS_MAX}"
        )));
    }
    if let Some(consumer) = &query.consumer {
        producer.note_reader(consumer, after);
    }
    let wait = Duration::from_millis(query.wait_ms.min(WAIT_MS_MAX));
    let events = producer.outbox.read(after, query.limit, wait).await?;
    let head = producer.outbox.head().await?;
    Ok(ApiJson(FeedPage { events, head }))
}

impl Producer {
    /// Writes down, now and then, that `consumer` has applied everything up to `after`.
    fn note_reader(&self, consumer: &str, after: Cursor) {
        if consumer.len() > 64 || !consumer.chars().all(|c| c.is_ascii_alphanumeric()) {
            return;
        }
        {
            let mut recorded = self.recorded.lock().expect("never poisoned");
            if recorded
                .get(consumer)
                .is_some_and(|at| at.elapsed() < READER_RECORD_INTERVAL)
            {
                return;
            }
            recorded.insert(consumer.to_owned(), Instant::now());
        }
        let db = self.db.clone();
        let consumer = consumer.to_owned();
        tokio::spawn(async move {
            let recorded = db
                .write(move |tx| crate::prune::note_reader(tx, &consumer, after))
                .await;
            if let Err(error) = recorded {
                tracing::debug!(%error, "cannot note a feed reader's position");
            }
        });
    }
}
