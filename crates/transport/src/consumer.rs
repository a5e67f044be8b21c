//! The idempotent consumer: fetch a batch, apply it and advance the position in one local
//! transaction, retry what may pass, set aside what never will.
//!
//! What may pass is retried for as long as it lasts: a peer that refuses our credentials
//! (an operator's typo), a timeout, a 5xx, a closed connection, a full disk, an I/O error.
//! Giving up on those would leave an acknowledged order unapplied for good. While a batch
//! keeps failing the consumer says so ([`ConsumerState::Stuck`], since when, the last
//! error) and the system is not quiet. Only an event that can never be applied as it is (it
//! cannot be decoded, or breaks a rule of the schema) is set aside in the dead-letter list
//! after a few tries, without blocking the events behind it; an operator replays or discards
//! it ([`Control`]).

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use contracts::events::{Cursor, Event};
use contracts::internal::{ConsumerState, ConsumerStatus};
use runtime::{Delay, Metrics};
use storage::{Db, DbError, ErrorKind, Tx};
use tokio::sync::{mpsc, oneshot, watch};
use tokio_util::sync::CancellationToken;

use crate::feed::EventFeed;
use crate::inbox;
use crate::lease::{LEASE_TTL, Lease};

/// Why applying a batch failed.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    /// May pass by itself or by an operator's hand: retried without end, with backoff.
    #[error("{0:#}")]
    Transient(anyhow::Error),
    /// Will fail the same way every time (an event this consumer cannot read): retried a few
    /// times, then the event is set aside in the dead-letter list.
    #[error("{0:#}")]
    Permanent(anyhow::Error),
}

impl From<DbError> for ApplyError {
    fn from(error: DbError) -> Self {
        match error.kind() {
            // A commit whose outcome is unknown is retried too: the position is stored with
            // the effects, and effects are keyed by order, so applying again is harmless.
            ErrorKind::Transient | ErrorKind::Unknown => ApplyError::Transient(error.into()),
            ErrorKind::Constraint | ErrorKind::Permanent => ApplyError::Permanent(error.into()),
        }
    }
}

impl From<runtime::CallError> for ApplyError {
    fn from(error: runtime::CallError) -> Self {
        if error.is_retryable() {
            ApplyError::Transient(error.into())
        } else {
            ApplyError::Permanent(error.into())
        }
    }
}

/// What a service does with the events of one feed.
pub trait Apply: Send + Sync + 'static {
    /// What [`Apply::gather`] learns before the transaction, for [`Apply::apply`] to use.
    type Context: Send + Default + 'static;
    /// What [`Apply::apply`] produced that [`Apply::committed`] acts on once it is durable
    /// (apply lags to record, an outbox to announce).
    type Output: Send + 'static;

    /// Work done outside the local transaction, such as asking another service, so that the
    /// writer is never held across a network call. Done again on a retry. Nothing, by default.
    fn gather(
        &self,
        events: &[Event],
    ) -> impl Future<Output = Result<Self::Context, ApplyError>> + Send {
        let _ = events;
        async { Ok(Self::Context::default()) }
    }

    /// Applies the events inside the consumer's write; the consumer advances the position in
    /// the same transaction. Runs on the database's writer thread: plain SQL, no waiting.
    fn apply(
        &self,
        tx: &mut Tx<'_>,
        events: &[Event],
        context: Self::Context,
    ) -> Result<Self::Output, ApplyError>;

    /// Called with what `apply` produced, once its transaction has committed.
    fn committed(&self, output: Self::Output);
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

/// How long a queue-mode consumer's long poll parks when its feed has nothing new: under the
/// feed's own cap, under the lease's expiry, and short enough that a shutdown is never held
/// up for long.
pub const LONG_POLL: Duration = Duration::from_secs(3);

/// The schedule each eventual mode reads its feeds on.
pub fn schedule_for(mode: contracts::Mode, cron_interval: Duration) -> Schedule {
    match mode {
        contracts::Mode::Cron => Schedule::Every(cron_interval),
        _ => Schedule::Continuous { wait: LONG_POLL },
    }
}

#[derive(Debug, Clone)]
pub struct ConsumerConfig {
    pub schedule: Schedule,
    /// Events applied per local transaction at most.
    pub batch_size_max: i64,
    /// Paid before each batch: the service's processing delay.
    pub processing_delay: Delay,
    /// Tries of an event that fails permanently before it is set aside.
    pub attempts_max: u32,
    /// First wait after a failure; it doubles up to `backoff_max`.
    pub backoff_min: Duration,
    pub backoff_max: Duration,
    /// Names this consumer's crash points (`<name>::before-apply`, `<name>::after-apply`):
    /// the consuming service's name.
    pub name: String,
}

impl ConsumerConfig {
    pub fn new(schedule: Schedule) -> Self {
        Self {
            schedule,
            // A batch of 500 orders is one sync instead of 500; larger batches add latency
            // for the first event of the batch without saving much more.
            batch_size_max: 500,
            processing_delay: Delay::default(),
            // Five tries over about 1.5 s tell a poison event from a passing fault.
            attempts_max: 5,
            backoff_min: Duration::from_millis(50),
            // Long enough not to hammer a peer that is down, short enough to catch up soon
            // after it is back.
            backoff_max: Duration::from_secs(2),
            name: "consumer".into(),
        }
    }
}

/// An operator's request to apply a dead letter again.
struct Replay {
    id: i64,
    answer: oneshot::Sender<Result<(), String>>,
}

/// A running consumer as the admin routes see it: its state, pause and resume, replays.
/// Cloning shares it.
#[derive(Clone)]
pub struct Control {
    feed: String,
    paused: watch::Sender<bool>,
    live: Arc<Mutex<Live>>,
    replays: mpsc::Sender<Replay>,
    db: Db,
}

#[derive(Debug, Clone, Default)]
struct Live {
    state: ConsumerState,
    stuck_since_ms: Option<i64>,
    last_error: Option<String>,
}

/// Replays waiting for their consumer at most; an operator's clicks, not a stream.
const REPLAYS_WAITING_MAX: usize = 16;

impl Control {
    fn new(feed: &str, db: Db) -> (Self, mpsc::Receiver<Replay>) {
        let (replays, requests) = mpsc::channel(REPLAYS_WAITING_MAX);
        let control = Self {
            feed: feed.to_owned(),
            paused: watch::Sender::new(false),
            live: Default::default(),
            replays,
            db,
        };
        (control, requests)
    }

    pub fn feed(&self) -> &str {
        &self.feed
    }

    pub fn pause(&self) {
        self.paused.send_replace(true);
    }

    pub fn resume(&self) {
        self.paused.send_replace(false);
    }

    /// The consumer's state, with its stored position.
    pub async fn status(&self) -> Result<ConsumerStatus, DbError> {
        let feed = self.feed.clone();
        let position = self.db.read(move |tx| inbox::position(tx, &feed)).await?;
        let live = self.live.lock().expect("never poisoned").clone();
        Ok(ConsumerStatus {
            position,
            state: live.state,
            stuck_since_ms: live.stuck_since_ms,
            last_error: live.last_error,
        })
    }

    /// Fills in what only the running consumer knows: its state, since when it is stuck, and
    /// its last error.
    pub fn live_into(&self, status: &mut ConsumerStatus) {
        let live = self.live.lock().expect("never poisoned").clone();
        status.state = live.state;
        status.stuck_since_ms = live.stuck_since_ms;
        status.last_error = live.last_error;
    }

    /// Applies dead letter `id` again (through the consumer, between its batches); `Err`
    /// carries why it failed again.
    pub async fn replay(&self, id: i64) -> Result<(), String> {
        let (answer, answered) = oneshot::channel();
        self.replays
            .send(Replay { id, answer })
            .await
            .map_err(|_| "the consumer is not running".to_owned())?;
        answered
            .await
            .unwrap_or_else(|_| Err("the consumer stopped".into()))
    }

    fn set(&self, state: ConsumerState) {
        let mut live = self.live.lock().expect("never poisoned");
        live.state = state;
        if state != ConsumerState::Stuck {
            live.stuck_since_ms = None;
        }
    }

    fn stuck(&self, error: &str) {
        let mut live = self.live.lock().expect("never poisoned");
        live.state = ConsumerState::Stuck;
        live.stuck_since_ms.get_or_insert_with(contracts::now_ms);
        live.last_error = Some(error.to_owned());
    }
}

/// A consumer of one feed, ready to run.
pub struct Consumer<F, A> {
    db: Db,
    feed: F,
    handler: Arc<A>,
    config: ConsumerConfig,
    metrics: Metrics,
    lease: Lease,
    control: Control,
    replays: mpsc::Receiver<Replay>,
    /// The cursor of the last event applied or set aside. Mirrors the stored position, which
    /// is the truth: it is advanced in the same transaction as the effects, and read again
    /// whenever this instance takes the feed's lease.
    position: Cursor,
    /// Until when the lease needs no renewal of its own: every batch renews it (fencing), so
    /// a busy consumer never writes for its lease alone.
    lease_fresh_until: tokio::time::Instant,
}

impl<F: EventFeed, A: Apply> Consumer<F, A> {
    /// A consumer of `feed` applying with `handler`; `instance` names this process among the
    /// service's instances (only one consumes a feed at a time). The [`Control`] is for the
    /// admin routes.
    pub fn new(
        db: Db,
        feed: F,
        handler: A,
        config: ConsumerConfig,
        metrics: Metrics,
        instance: &str,
    ) -> (Self, Control) {
        let name = feed.name().to_owned();
        let (control, replays) = Control::new(&name, db.clone());
        let consumer = Self {
            lease: Lease::new(format!("consumer:{name}"), instance),
            db,
            feed,
            handler: Arc::new(handler),
            config,
            metrics,
            control: control.clone(),
            replays,
            position: Cursor::START,
            lease_fresh_until: tokio::time::Instant::now(),
        };
        (consumer, control)
    }

    /// Runs until `shutdown` is cancelled.
    pub async fn run(mut self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let work = async {
            loop {
                self.hold_lease().await;
                if *self.control.paused.borrow() {
                    self.wait_paused().await;
                    continue;
                }
                self.take_turn().await;
            }
        };
        tokio::select! {
            _ = shutdown.cancelled() => {}
            () = work => {}
        }
        if let Err(error) = self.lease.release(&self.db).await {
            tracing::debug!(%error, "cannot release a consumer lease");
        }
        Ok(())
    }

    /// Waits until this instance holds the feed's lease, renewing it when held; on taking
    /// it, reads the stored position (another instance may have moved it).
    async fn hold_lease(&mut self) {
        if tokio::time::Instant::now() < self.lease_fresh_until {
            return;
        }
        let mut backoff = self.config.backoff_min;
        loop {
            match self.lease.try_hold(&self.db).await {
                Ok(true) => {
                    self.lease_fresh_until = tokio::time::Instant::now() + LEASE_TTL / 3;
                    break;
                }
                Ok(false) => {
                    self.control.set(ConsumerState::Standby);
                    tokio::time::sleep(LEASE_TTL / 3).await;
                }
                Err(error) => {
                    self.fail(&format!("cannot take the feed's lease: {error}"));
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(self.config.backoff_max);
                }
            }
        }
        if self.control.live.lock().expect("never poisoned").state == ConsumerState::Standby {
            self.position = Cursor::START;
            self.control.set(ConsumerState::Running);
        }
        if self.position == Cursor::START {
            let feed = self.feed.name().to_owned();
            match self.db.read(move |tx| inbox::position(tx, &feed)).await {
                Ok(position) => self.position = position,
                Err(error) => self.fail(&format!("cannot read the position: {error}")),
            }
        }
    }

    async fn wait_paused(&mut self) {
        self.control.set(ConsumerState::Paused);
        let mut paused = self.control.paused.subscribe();
        tokio::select! {
            () = until(&mut paused, false) => {}
            Some(replay) = self.replays.recv() => self.replay(replay).await,
            // Wake to renew the lease.
            () = tokio::time::sleep(LEASE_TTL / 3) => {}
        }
        if !*self.control.paused.borrow() {
            self.control.set(ConsumerState::Running);
        }
    }

    /// One turn: a batch (queue mode) or a tick's worth of batches (cron), or an operator's
    /// request, whichever comes first.
    async fn take_turn(&mut self) {
        let mut paused = self.control.paused.subscribe();
        match self.config.schedule {
            Schedule::Continuous { wait } => {
                let fetched = tokio::select! {
                    fetched = fetch(&self.feed, self.position, self.config.batch_size_max, wait) => fetched,
                    Some(replay) = self.replays.recv() => return self.replay(replay).await,
                    () = until(&mut paused, true) => return,
                };
                self.handle_fetched(fetched).await;
            }
            Schedule::Every(interval) => {
                tokio::select! {
                    () = tokio::time::sleep(interval) => {}
                    Some(replay) = self.replays.recv() => return self.replay(replay).await,
                    () = until(&mut paused, true) => return,
                }
                // Take everything since the watermark, one bounded batch at a time.
                loop {
                    let fetched = fetch(
                        &self.feed,
                        self.position,
                        self.config.batch_size_max,
                        Duration::ZERO,
                    )
                    .await;
                    let full = matches!(&fetched, Ok(events) if events.len() as i64 >= self.config.batch_size_max);
                    self.handle_fetched(fetched).await;
                    if !full || *self.control.paused.borrow() {
                        break;
                    }
                }
            }
        }
    }

    async fn handle_fetched(&mut self, fetched: Result<Vec<Event>, String>) {
        match fetched {
            Ok(events) => {
                // A transport that redelivers may hand back what is already applied.
                let events: Vec<Event> = events
                    .into_iter()
                    .filter(|e| e.cursor() > self.position)
                    .collect();
                if !events.is_empty() {
                    self.process(events.into()).await;
                } else if self.control.live.lock().expect("never poisoned").state
                    == ConsumerState::Stuck
                {
                    self.recovered();
                }
            }
            Err(error) => {
                self.fail(&format!("feed unavailable: {error}"));
                tokio::time::sleep(self.config.backoff_min).await;
            }
        }
    }

    /// Applies a batch, retrying what may pass; on a permanent failure, finds the event at
    /// fault by applying one at a time.
    async fn process(&mut self, events: Arc<[Event]>) {
        self.config.processing_delay.pay().await;
        let mut backoff = self.config.backoff_min;
        loop {
            match self.try_apply(events.clone()).await {
                Ok(()) => return self.recovered(),
                Err(ApplyError::Transient(error)) => {
                    self.fail(&format!("{error:#}"));
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(self.config.backoff_max);
                }
                Err(ApplyError::Permanent(_)) => {
                    for event in events.iter() {
                        self.process_one(event).await;
                    }
                    return self.recovered();
                }
            }
        }
    }

    async fn process_one(&mut self, event: &Event) {
        let mut backoff = self.config.backoff_min;
        let mut attempts = 0;
        loop {
            match self.try_apply(Arc::from([event.clone()])).await {
                Ok(()) => return,
                Err(ApplyError::Transient(error)) => self.fail(&format!("{error:#}")),
                Err(ApplyError::Permanent(error)) => {
                    attempts += 1;
                    let error = format!("{error:#}");
                    if attempts >= self.config.attempts_max {
                        return self.dead_letter(event, &error, attempts).await;
                    }
                    tracing::warn!(
                        feed = self.feed.name(),
                        event = event.id,
                        attempts,
                        error,
                        "event failed"
                    );
                }
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(self.config.backoff_max);
        }
    }

    async fn try_apply(&mut self, events: Arc<[Event]>) -> Result<(), ApplyError> {
        let context = self.handler.gather(&events).await?;
        let last = events.last().expect("a batch is never empty").cursor();
        let (handler, lease, feed) = (
            self.handler.clone(),
            self.lease.clone(),
            self.feed.name().to_owned(),
        );
        let applied = events.clone();
        runtime::crash_point(&format!("{}::before-apply", self.config.name));
        let output = self
            .db
            .write(move |tx| {
                lease.fence(tx)?;
                let output = handler.apply(tx, &applied, context)?;
                inbox::advance(tx, &feed, last)?;
                Ok::<_, ApplyError>(output)
            })
            .await?;
        // Applied and committed, not yet acknowledged (a broker redelivers the batch).
        runtime::crash_point(&format!("{}::after-apply", self.config.name));
        self.position = last;
        self.lease_fresh_until = tokio::time::Instant::now() + LEASE_TTL / 3;
        self.handler.committed(output);
        self.feed.applied(last).await;
        self.metrics
            .events
            .with_label_values(&[self.feed.name(), "applied"])
            .inc_by(events.len() as u64);
        Ok(())
    }

    /// Sets `event` aside and moves past it; retried until it is written (the database may
    /// be what is failing).
    async fn dead_letter(&mut self, event: &Event, error: &str, attempts: u32) {
        tracing::error!(
            feed = self.feed.name(),
            event = event.id,
            error,
            "event set aside in the dead-letter list"
        );
        let mut backoff = self.config.backoff_min;
        loop {
            let (lease, feed, event, error) = (
                self.lease.clone(),
                self.feed.name().to_owned(),
                event.clone(),
                error.to_owned(),
            );
            let cursor = event.cursor();
            let written = self
                .db
                .write(move |tx| {
                    lease.fence(tx)?;
                    inbox::dead_letter(tx, &feed, &event, &error, attempts)
                })
                .await;
            match written {
                Ok(()) => {
                    self.position = cursor;
                    self.feed.applied(cursor).await;
                    self.metrics
                        .events
                        .with_label_values(&[self.feed.name(), "dead_lettered"])
                        .inc();
                    return;
                }
                Err(e) => self.fail(&format!("cannot record a dead letter: {e}")),
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(self.config.backoff_max);
        }
    }

    /// Applies a dead letter again, removing it in the same transaction if it now applies.
    /// The position does not move: it is already past the event.
    async fn replay(&mut self, replay: Replay) {
        let outcome = self.try_replay(replay.id).await;
        if let Err(error) = &outcome {
            let (id, error) = (replay.id, error.clone());
            let _ = self
                .db
                .write(move |tx| inbox::replay_failed(tx, id, &error))
                .await;
        }
        let _ = replay.answer.send(outcome);
    }

    async fn try_replay(&mut self, id: i64) -> Result<(), String> {
        let found = self
            .db
            .read(move |tx| inbox::dead_letter_event(tx, id))
            .await
            .map_err(|e| e.to_string())?;
        let Some((feed, event)) = found else {
            return Err(format!("no dead letter {id}"));
        };
        if feed != self.feed.name() {
            return Err(format!("dead letter {id} belongs to the {feed} feed"));
        }
        let events: Arc<[Event]> = Arc::from([event]);
        let context = self
            .handler
            .gather(&events)
            .await
            .map_err(|e| e.to_string())?;
        let (handler, applied) = (self.handler.clone(), events.clone());
        let output = self
            .db
            .write(move |tx| {
                let output = handler.apply(tx, &applied, context)?;
                if !inbox::remove_dead_letter(tx, id)? {
                    return Err(ApplyError::Permanent(anyhow::anyhow!(
                        "dead letter {id} was removed meanwhile"
                    )));
                }
                Ok::<_, ApplyError>(output)
            })
            .await
            .map_err(|e| e.to_string())?;
        self.handler.committed(output);
        self.metrics
            .events
            .with_label_values(&[self.feed.name(), "replayed"])
            .inc();
        tracing::info!(feed = self.feed.name(), id, "dead letter replayed");
        Ok(())
    }

    fn fail(&self, error: &str) {
        tracing::warn!(feed = self.feed.name(), error, "consumer stuck; retrying");
        self.control.stuck(error);
        self.metrics
            .consumer_stuck
            .with_label_values(&[self.feed.name()])
            .set(1);
        self.metrics
            .consumer_retries
            .with_label_values(&[self.feed.name()])
            .inc();
    }

    fn recovered(&self) {
        let was_stuck = {
            let live = self.control.live.lock().expect("never poisoned");
            live.state == ConsumerState::Stuck
        };
        if was_stuck {
            tracing::info!(feed = self.feed.name(), "consumer recovered");
            self.control.set(ConsumerState::Running);
            self.metrics
                .consumer_stuck
                .with_label_values(&[self.feed.name()])
                .set(0);
        }
    }
}

/// Waits until the pause flag is `value`.
async fn until(paused: &mut watch::Receiver<bool>, value: bool) {
    // The guard `wait_for` returns is dropped here, never held across an await.
    let _ = paused.wait_for(|paused| *paused == value).await;
}

/// Fetches a page; the error as text (the consumer only reports it and retries).
async fn fetch<F: EventFeed>(
    feed: &F,
    after: Cursor,
    limit: i64,
    wait: Duration,
) -> Result<Vec<Event>, String> {
    feed.fetch(after, limit, wait)
        .await
        .map_err(|e| e.to_string())
}

/// Decodes an event's body; one this consumer cannot read is a permanent failure, which ends
/// in the dead-letter list.
pub fn decode(event: &Event) -> Result<contracts::events::EventBody, ApplyError> {
    event.decode().map_err(|e| {
        ApplyError::Permanent(anyhow::anyhow!("event {} is unreadable: {e}", event.id))
    })
}
