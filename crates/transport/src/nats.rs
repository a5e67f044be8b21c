//! NATS JetStream as the message queue: for users who outgrow one machine, or who run a broker
//! already.
//!
//! The outbox stays the source of truth. Each producer has a stream (`<PREFIX>_<PRODUCER>`,
//! subject `<prefix>.<producer>`, file storage); its [`relay`] publishes every outbox row to
//! it in order, with the event's id as `Nats-Msg-Id`. Each consumer has a durable pull
//! consumer on that stream, named after the consuming service: it applies a batch and stores
//! the stream sequence of its last event in the same local transaction, then acknowledges
//! (double ack, so the server has it). A redelivery after a crash is at or below the stored
//! position and is skipped.
//!
//! The stream keeps a message until every consumer of the feed has acknowledged it
//! (interest-based retention, with the durable consumers created with the stream), so a
//! consumer that is down for a day loses nothing and the stream stays as small as the
//! slowest consumer's backlog.
//!
//! "Durable" on NATS: the server acknowledges a publish once the message is in its file store,
//! which it syncs to disk every two minutes by default. A publish acknowledged just before a
//! power cut can be lost unless the server runs with `sync_interval: always` (NATS 2.10+, in
//! the `jetstream` block of its configuration). Converge does not rely on it: the outbox keeps
//! every event until the relay's progress is committed, and the relay publishes again what
//! the server lost (de-duplicated by `Nats-Msg-Id` within the stream's window).
//!
//! [`relay`]: crate::relay

use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::{self, consumer::PullConsumer, stream::Stream};
use contracts::events::{Cursor, Event};
use futures::StreamExt;
use tokio::sync::{Mutex, OnceCell};

use crate::feed::{EventFeed, TransportError};

/// How long the server waits for an acknowledgement before it delivers a message again: what
/// a consumer that restarts after a crash waits to get back the batch it held. Well above a
/// batch's apply time (a slow batch only gets delivered twice, and the second copy is below the
/// stored position), short enough that a restart costs seconds.
const ACK_WAIT: Duration = Duration::from_secs(5);

/// Messages delivered and not yet acknowledged, per consumer: one batch. The server delivers
/// no more until the batch is acknowledged, so after a crash the new consumer gets the old
/// batch again (after [`ACK_WAIT`]) before anything newer.
const ACK_PENDING_MAX: i64 = 500;

/// How long the stream remembers a message id to drop a duplicate publish: longer than a
/// relay takes to come back after a crash.
const DUPLICATE_WINDOW: Duration = Duration::from_secs(10 * 60);

/// The shortest wait of a fetch: the server needs some, even when the consumer (cron mode)
/// wants only what is there now.
const FETCH_WAIT_MIN: Duration = Duration::from_millis(20);

/// A service's connection to the broker. Cloning shares it.
#[derive(Clone)]
pub struct Broker {
    jetstream: jetstream::Context,
    prefix: String,
    streams: Arc<Mutex<std::collections::HashMap<String, Stream>>>,
}

impl std::fmt::Debug for Broker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Broker")
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

impl Broker {
    /// Connects in the background: a service starts while the broker is down, and its
    /// consumers and relay wait (and say so) until it is up.
    pub async fn connect(url: &str, prefix: &str) -> Result<Self, TransportError> {
        let client = async_nats::ConnectOptions::new()
            .retry_on_initial_connect()
            .connect(url)
            .await
            .map_err(|e| TransportError::new(e, true))?;
        Ok(Self {
            jetstream: jetstream::new(client),
            prefix: prefix.to_owned(),
            streams: Default::default(),
        })
    }

    /// The stream that carries `producer`'s feed.
    pub fn stream_name(&self, producer: &str) -> String {
        format!("{}_{}", self.prefix, producer)
            .to_ascii_uppercase()
            .replace(|c: char| !c.is_ascii_alphanumeric() && c != '_', "_")
    }

    pub fn subject(&self, producer: &str) -> String {
        format!("{}.{}", self.prefix, producer)
    }

    pub(crate) fn jetstream(&self) -> &jetstream::Context {
        &self.jetstream
    }

    /// `producer`'s stream, created (with a durable consumer for each of `consumers`) if it
    /// is not there yet.
    pub(crate) async fn stream(
        &self,
        producer: &str,
        consumers: &[&str],
    ) -> Result<Stream, TransportError> {
        let name = self.stream_name(producer);
        if let Some(stream) = self.streams.lock().await.get(&name) {
            return Ok(stream.clone());
        }
        let stream = self
            .jetstream
            .get_or_create_stream(jetstream::stream::Config {
                name: name.clone(),
                subjects: vec![self.subject(producer)],
                storage: jetstream::stream::StorageType::File,
                retention: jetstream::stream::RetentionPolicy::Interest,
                duplicate_window: DUPLICATE_WINDOW,
                ..Default::default()
            })
            .await
            .map_err(|e| TransportError::new(e, true))?;
        // Every consumer's durable exists before the first publish: with interest-based
        // retention, a message published before its consumer existed would not be kept.
        for consumer in consumers {
            stream
                .get_or_create_consumer(consumer, consumer_config(consumer))
                .await
                .map_err(|e| TransportError::new(e, true))?;
        }
        self.streams.lock().await.insert(name, stream.clone());
        Ok(stream)
    }

    /// Fails unless the client is connected to the server. While it is not, a fetch would not
    /// fail: the client keeps the request until it reconnects, and the batch ends empty once
    /// its wait is over, as if there were nothing new. The consumer must say it is stuck and
    /// why instead.
    fn connected(&self) -> Result<(), TransportError> {
        match self.jetstream.client().connection_state() {
            async_nats::connection::State::Connected => Ok(()),
            state => Err(TransportError::new(
                anyhow::anyhow!("the broker is unreachable (connection {state})"),
                true,
            )),
        }
    }

    /// Forgets a stream (it was deleted under us): the next use creates it again.
    pub(crate) async fn forget(&self, producer: &str) {
        self.streams
            .lock()
            .await
            .remove(&self.stream_name(producer));
    }
}

/// One configuration for a consumer's durable, whoever creates it (the producer, with its
/// stream, or the consumer itself): acknowledging a message acknowledges every one before it.
fn consumer_config(durable: &str) -> jetstream::consumer::pull::Config {
    jetstream::consumer::pull::Config {
        durable_name: Some(durable.to_owned()),
        ack_policy: jetstream::consumer::AckPolicy::All,
        deliver_policy: jetstream::consumer::DeliverPolicy::All,
        ack_wait: ACK_WAIT,
        max_ack_pending: ACK_PENDING_MAX,
        ..Default::default()
    }
}

/// A consumer's side: `producer`'s stream, read through this service's durable consumer.
pub struct NatsFeed {
    producer: String,
    consumers: Vec<&'static str>,
    durable: String,
    broker: Broker,
    consumer: OnceCell<PullConsumer>,
    /// The newest message delivered and not yet acknowledged, with its stream sequence:
    /// acknowledged (with every one before it) once what it carries is applied.
    unacked: Mutex<Option<(u64, jetstream::Message)>>,
}

impl NatsFeed {
    /// `consumers` are every consumer of the feed (to create the stream with them all);
    /// `durable` is this one.
    pub fn new(
        broker: Broker,
        producer: &str,
        consumers: Vec<&'static str>,
        durable: &str,
    ) -> Self {
        Self {
            producer: producer.to_owned(),
            consumers,
            durable: durable.to_owned(),
            broker,
            consumer: OnceCell::new(),
            unacked: Mutex::new(None),
        }
    }

    async fn consumer(&self) -> Result<&PullConsumer, TransportError> {
        self.consumer
            .get_or_try_init(|| async {
                let stream = self.broker.stream(&self.producer, &self.consumers).await?;
                stream
                    .get_or_create_consumer(&self.durable, consumer_config(&self.durable))
                    .await
                    .map_err(|e| TransportError::new(e, true))
            })
            .await
    }
}

impl NatsFeed {
    /// Where a consumer that has applied nothing starts: after what its durable has
    /// acknowledged, or at the oldest message the stream holds (with interest-based retention,
    /// nothing this consumer has not acknowledged is ever removed).
    async fn first_unapplied(&self, consumer: &PullConsumer) -> Result<u64, TransportError> {
        let acknowledged = consumer
            .get_info()
            .await
            .map_err(|e| TransportError::new(e, true))?
            .ack_floor
            .stream_sequence;
        if acknowledged > 0 {
            return Ok(acknowledged + 1);
        }
        let stream = self.broker.stream(&self.producer, &self.consumers).await?;
        let first = stream
            .get_info()
            .await
            .map_err(|e| TransportError::new(e, true))?
            .state
            .first_sequence;
        Ok(first.max(1))
    }
}

impl EventFeed for NatsFeed {
    fn name(&self) -> &str {
        &self.producer
    }

    async fn fetch(
        &self,
        after: Cursor,
        limit: i64,
        wait: Duration,
    ) -> Result<Vec<Event>, TransportError> {
        self.broker.connected()?;
        let consumer = self.consumer().await?;
        let mut batch = consumer
            .fetch()
            .max_messages(limit.max(1) as usize)
            .expires(wait.max(FETCH_WAIT_MIN))
            .messages()
            .await
            .map_err(|e| TransportError::new(e, true))?;
        let mut delivered = Vec::new();
        while let Some(message) = batch.next().await {
            let message = message.map_err(|e| TransportError::new(anyhow::anyhow!("{e}"), true))?;
            let sequence = message
                .info()
                .map_err(|e| TransportError::new(anyhow::anyhow!("{e}"), false))?
                .stream_sequence;
            delivered.push((sequence, message));
        }
        delivered.sort_by_key(|(sequence, _)| *sequence);
        // Only an unbroken run after the stored position may be applied. Messages delivered to
        // an instance that crashed are redelivered only after the acknowledgement wait, and
        // newer ones may come first: applying those would move the position past the older
        // ones, and acknowledging would drop them. What follows a gap is left unacknowledged
        // and comes again, in order.
        let mut expected = Some(match after.seq {
            0 => self.first_unapplied(consumer).await?,
            seq => seq as u64 + 1,
        });
        let mut events = Vec::new();
        let mut newest: Option<(u64, jetstream::Message)> = None;
        for (sequence, message) in delivered {
            if sequence as i64 > after.seq {
                if expected.is_some_and(|expected| sequence != expected) {
                    tracing::debug!(
                        feed = self.producer,
                        expected,
                        got = sequence,
                        "a gap in the delivery; waiting for the redelivery"
                    );
                    break;
                }
                expected = Some(sequence + 1);
                events.push(event_of(&message, sequence));
            }
            newest = Some((sequence, message));
        }
        if let Some(newest) = newest {
            let mut unacked = self.unacked.lock().await;
            // A redelivery of what is applied already can be acknowledged at once.
            if newest.0 as i64 <= after.seq {
                drop(unacked);
                acknowledge(&newest.1).await;
            } else {
                *unacked = Some(newest);
            }
        }
        Ok(events)
    }

    async fn applied(&self, upto: Cursor) {
        let newest = {
            let mut unacked = self.unacked.lock().await;
            match unacked.as_ref() {
                Some((sequence, _)) if *sequence as i64 <= upto.seq => unacked.take(),
                _ => None,
            }
        };
        if let Some((_, message)) = newest {
            acknowledge(&message).await;
        }
    }
}

/// Acknowledges a message and every one before it, and waits for the server to confirm. A
/// failure is only logged: the message comes again after [`ACK_WAIT`], is at or below the
/// stored position, and is skipped.
async fn acknowledge(message: &jetstream::Message) {
    if let Err(error) = message.double_ack().await {
        tracing::debug!(%error, "acknowledgement not confirmed; the message will come again");
    }
}

/// The header that carries when the producer committed the event.
pub(crate) const RECORDED_AT_HEADER: &str = "Converge-Recorded-At-Ms";

fn event_of(message: &jetstream::Message, sequence: u64) -> Event {
    let header = |name: &str| {
        message
            .headers
            .as_ref()
            .and_then(|h| h.get(name))
            .map(|v| v.as_str().to_owned())
    };
    let id = header(async_nats::header::NATS_MESSAGE_ID.as_ref()).unwrap_or_default();
    let recorded_at_ms = header(RECORDED_AT_HEADER)
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let body = String::from_utf8_lossy(&message.payload).into_owned();
    Event::from_stored(Cursor::new(0, sequence as i64), id, recorded_at_ms, body)
}
