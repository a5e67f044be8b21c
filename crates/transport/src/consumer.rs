//! The idempotent consumer: fetch a batch, apply it and advance the position in one local
//! transaction, retry what may pass, set aside what keeps failing.

use std::future::Future;
use std::time::Duration;

use contracts::events::Event;
use runtime::Metrics;
use storage::Db;
use storage::sqlx::SqliteConnection;
use tokio_util::sync::CancellationToken;

use crate::feed::EventFeed;
use crate::inbox;

/// Why applying a batch failed.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    /// May pass by itself (a peer down, the database busy): retried without end, with backoff,
    /// because giving up would leave an acknowledged order unapplied.
    #[error("{0:#}")]
    Transient(anyhow::Error),
    /// Will fail the same way every time (an event this consumer cannot read): retried a few
    /// times, then the event is set aside in the dead-letter list.
    #[error("{0:#}")]
    Permanent(anyhow::Error),
}

impl From<storage::sqlx::Error> for ApplyError {
    fn from(error: storage::sqlx::Error) -> Self {
        if storage::is_transient(&error) {
            ApplyError::Transient(error.into())
        } else {
            ApplyError::Permanent(error.into())
        }
    }
}

/// What a service does with the events of one feed.
pub trait Apply: Send + Sync + 'static {
    /// What [`Apply::gather`] learns before the transaction, for [`Apply::apply`] to use;
    /// `()` for a consumer that needs nothing.
    type Context: Send + Sync + Default;

    /// Work done outside the local transaction, such as asking another service, so that the
    /// single writer connection is never held across a network call. Done again on a retry.
    /// Nothing, by default.
    fn gather(
        &self,
        events: &[Event],
    ) -> impl Future<Output = Result<Self::Context, ApplyError>> + Send {
        let _ = events;
        async { Ok(Self::Context::default()) }
    }

    /// Applies the events inside `tx`. The consumer advances the position in the same
    /// transaction and commits it.
    fn apply(
        &self,
        tx: &mut SqliteConnection,
        events: &[Event],
        context: &Self::Context,
    ) -> impl Future<Output = Result<(), ApplyError>> + Send;

    /// Called once the batch has committed: wake readers, record lags.
    fn committed(&self, events: &[Event]) {
        let _ = events;
    }
}

/// When the consumer reads its feed.
#[derive(Debug, Clone, Copy)]
pub enum Schedule {
    /// Queue mode: always reading, parked in a long poll of up to `wait` when there is
    /// nothing new, so an event is applied moments after it commits.
    Continuous { wait: Duration },
    /// Cron mode: a batch job that wakes every interval and takes everything since its
    /// watermark, in bounded batches.
    Every(Duration),
}

#[derive(Debug, Clone)]
pub struct ConsumerConfig {
    pub schedule: Schedule,
    /// Events applied per local transaction at most.
    pub batch_size_max: i64,
    /// Added before each batch: the service's processing delay.
    pub processing_delay: Duration,
    /// Tries of an event that fails permanently before it is set aside.
    pub attempts_max: u32,
    /// First wait after a failure; it doubles up to `backoff_max`.
    pub backoff_min: Duration,
    pub backoff_max: Duration,
}

impl ConsumerConfig {
    pub fn new(schedule: Schedule) -> Self {
        Self {
            schedule,
            // A batch of 500 orders is one fsync instead of 500; larger batches add latency
            // for the first event of the batch without saving much more.
            batch_size_max: 500,
            processing_delay: Duration::ZERO,
            // Five tries over about 1.5 s tell a poison event from a passing fault.
            attempts_max: 5,
            backoff_min: Duration::from_millis(50),
            // Long enough not to hammer a peer that is down, short enough to catch up soon
            // after it is back.
            backoff_max: Duration::from_secs(2),
        }
    }
}

/// Runs a consumer until `shutdown` is cancelled.
pub async fn run<F: EventFeed, A: Apply>(
    db: Db,
    feed: F,
    handler: A,
    config: ConsumerConfig,
    metrics: Metrics,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let mut consumer = Consumer {
        position: inbox::position(&db, feed.name()).await?,
        db,
        feed,
        handler,
        config,
        metrics,
    };
    let work = async {
        match consumer.config.schedule {
            Schedule::Continuous { wait } => loop {
                consumer.step(wait).await;
            },
            Schedule::Every(interval) => {
                let mut ticks = tokio::time::interval(interval);
                ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                loop {
                    ticks.tick().await;
                    // Take everything since the watermark, one bounded batch at a time.
                    while consumer.step(Duration::ZERO).await >= consumer.config.batch_size_max {}
                }
            }
        }
    };
    tokio::select! {
        _ = shutdown.cancelled() => Ok(()),
        never = work => never,
    }
}

struct Consumer<F, A> {
    db: Db,
    feed: F,
    handler: A,
    config: ConsumerConfig,
    metrics: Metrics,
    /// Position of the last event applied or set aside. Mirrors the stored position, which is
    /// the truth: it is advanced in the same transaction as the effects.
    position: i64,
}

impl<F: EventFeed, A: Apply> Consumer<F, A> {
    /// Fetches and applies one batch; returns how many events it held.
    async fn step(&mut self, wait: Duration) -> i64 {
        let events = self.fetch(wait).await;
        // A transport that redelivers may hand back what is already applied: skip it.
        let events: Vec<Event> = events
            .into_iter()
            .filter(|e| e.seq > self.position)
            .collect();
        let count = events.len() as i64;
        if !events.is_empty() {
            self.process(&events).await;
        }
        count
    }

    /// Fetches until the feed answers; a feed that is down is waited for, with backoff.
    async fn fetch(&self, wait: Duration) -> Vec<Event> {
        let mut backoff = self.config.backoff_min;
        loop {
            match self
                .feed
                .fetch(self.position, self.config.batch_size_max, wait)
                .await
            {
                Ok(events) => return events,
                Err(error) => {
                    tracing::warn!(feed = self.feed.name(), %error, retry_in_ms = backoff.as_millis() as u64, "feed unavailable");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(self.config.backoff_max);
                }
            }
        }
    }

    async fn process(&mut self, events: &[Event]) {
        if !self.config.processing_delay.is_zero() {
            tokio::time::sleep(self.config.processing_delay).await;
        }
        let mut backoff = self.config.backoff_min;
        loop {
            match self.try_apply(events).await {
                Ok(()) => return,
                Err(ApplyError::Transient(error)) => {
                    tracing::warn!(
                        feed = self.feed.name(),
                        error = format!("{error:#}"),
                        "batch failed; retrying"
                    );
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(self.config.backoff_max);
                }
                Err(ApplyError::Permanent(_)) if events.len() > 1 => {
                    // Find the event at fault: apply one at a time, so that the others
                    // still go through in order.
                    for event in events {
                        self.process_one(event).await;
                    }
                    return;
                }
                Err(ApplyError::Permanent(_)) => {
                    self.process_one(&events[0]).await;
                    return;
                }
            }
        }
    }

    async fn process_one(&mut self, event: &Event) {
        let events = std::slice::from_ref(event);
        let mut backoff = self.config.backoff_min;
        let mut attempts = 0;
        loop {
            attempts += 1;
            match self.try_apply(events).await {
                Ok(()) => return,
                Err(ApplyError::Transient(error)) => {
                    tracing::warn!(
                        feed = self.feed.name(),
                        seq = event.seq,
                        error = format!("{error:#}"),
                        "event failed; retrying"
                    );
                    attempts -= 1;
                }
                Err(ApplyError::Permanent(error)) if attempts >= self.config.attempts_max => {
                    let error = format!("{error:#}");
                    tracing::error!(
                        feed = self.feed.name(),
                        seq = event.seq,
                        event_id = event.id,
                        error,
                        "event set aside in the dead-letter list"
                    );
                    self.dead_letter(event, &error, attempts).await;
                    return;
                }
                Err(ApplyError::Permanent(error)) => {
                    tracing::warn!(
                        feed = self.feed.name(),
                        seq = event.seq,
                        attempts,
                        error = format!("{error:#}"),
                        "event failed"
                    );
                }
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(self.config.backoff_max);
        }
    }

    async fn try_apply(&mut self, events: &[Event]) -> Result<(), ApplyError> {
        let context = self.handler.gather(events).await?;
        let mut tx = self.db.write.begin().await?;
        self.handler.apply(&mut tx, events, &context).await?;
        let last = events.last().expect("a batch is never empty").seq;
        inbox::advance(&mut tx, self.feed.name(), last).await?;
        tx.commit().await?;
        self.position = last;
        self.metrics
            .events
            .with_label_values(&[self.feed.name(), "applied"])
            .inc_by(events.len() as u64);
        self.handler.committed(events);
        Ok(())
    }

    async fn dead_letter(&mut self, event: &Event, error: &str, attempts: u32) {
        let mut backoff = self.config.backoff_min;
        while let Err(e) =
            inbox::dead_letter(&self.db, self.feed.name(), event, error, attempts).await
        {
            tracing::warn!(feed = self.feed.name(), error = %e, "cannot record dead letter; retrying");
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(self.config.backoff_max);
        }
        self.position = event.seq;
        self.metrics
            .events
            .with_label_values(&[self.feed.name(), "dead_lettered"])
            .inc();
    }
}

/// How long a queue-mode consumer's long poll parks when its feed has nothing new. Under the
/// feed's own cap, and short enough that a shutdown is never held up for long.
pub const LONG_POLL: Duration = Duration::from_secs(5);

/// The schedule each eventual mode reads its feeds on.
pub fn schedule_for(mode: contracts::Mode, cron_interval: Duration) -> Schedule {
    match mode {
        contracts::Mode::Cron => Schedule::Every(cron_interval),
        _ => Schedule::Continuous { wait: LONG_POLL },
    }
}

/// Decodes an event's body; one this consumer cannot read is a permanent failure, which ends
/// in the dead-letter list.
pub fn decode(event: &Event) -> Result<contracts::events::EventBody, ApplyError> {
    event.decode().map_err(|e| {
        ApplyError::Permanent(anyhow::anyhow!("event {} is unreadable: {e}", event.id))
    })
}
