//! The settings a service is built from. The CLI turns flags and environment variables into
//! these; tests build them directly.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use contracts::{Mode, ServiceName};
use storage::Location;

/// Where to reach each service: a base URL, or several separated by commas when the service
/// runs as several instances (calls go round them, and on to the next when one is down). In
/// one process these are the free ports the CLI bound; with one process per service they
/// come from flags.
#[derive(Debug, Clone)]
pub struct Peers {
    pub account: String,
    pub order: String,
    pub payment: String,
    pub loyalty: String,
    pub stats: String,
}

impl Peers {
    pub fn url(&self, service: ServiceName) -> &str {
        match service {
            ServiceName::Account => &self.account,
            ServiceName::Order => &self.order,
            ServiceName::Payment => &self.payment,
            ServiceName::Loyalty => &self.loyalty,
            ServiceName::Stats => &self.stats,
        }
    }
}

/// How events travel between services in the eventual modes.
#[derive(Clone, PartialEq, Eq)]
pub enum Transport {
    /// Each producer serves its outbox over HTTP; no server needed.
    Embedded,
    /// NATS JetStream: a relay publishes each producer's outbox to a stream, consumers pull
    /// from durable consumers.
    Nats {
        url: String,
        /// Prefix of every stream and durable consumer name, so several systems can share a
        /// server.
        prefix: String,
    },
}

impl Transport {
    pub fn name(&self) -> &'static str {
        match self {
            Transport::Embedded => "embedded",
            Transport::Nats { .. } => "nats",
        }
    }
}

impl std::fmt::Debug for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Transport::Embedded => f.write_str("Embedded"),
            Transport::Nats { url, prefix } => f
                .debug_struct("Nats")
                .field("url", &storage::redact(url))
                .field("prefix", prefix)
                .finish(),
        }
    }
}

/// A service's processing delay ("complex logic or delays"), changeable while it runs (the
/// dashboard's slider). Cloning shares it.
#[derive(Debug, Clone, Default)]
pub struct Delay(Arc<AtomicU64>);

impl Delay {
    pub fn new(delay: Duration) -> Self {
        Self(Arc::new(AtomicU64::new(delay.as_millis() as u64)))
    }

    pub fn get(&self) -> Duration {
        Duration::from_millis(self.0.load(Ordering::Relaxed))
    }

    pub fn set(&self, delay: Duration) {
        self.0.store(delay.as_millis() as u64, Ordering::Relaxed);
    }

    /// Waits the delay, if there is one.
    pub async fn pay(&self) {
        let delay = self.get();
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
    }
}

/// How long bookkeeping is kept before it is pruned.
#[derive(Debug, Clone, Copy)]
pub struct Retention {
    /// Outbox events, once every consumer has passed them (or the relay has published them).
    pub outbox: Duration,
    /// A client's `Idempotency-Key` and its answer: a retry after this places a new order.
    pub idempotency_keys: Duration,
    /// Completed two-phase-commit decisions, and participants' tombstones of aborted prepares.
    pub decisions: Duration,
    /// How often housekeeping runs.
    pub interval: Duration,
}

impl Default for Retention {
    fn default() -> Self {
        Self {
            // Long enough to look at recent events while debugging; events are also in the
            // consumers' effects, so nothing is lost when they go.
            outbox: Duration::from_secs(60),
            // What clients of payment APIs expect (Stripe keeps keys 24 hours).
            idempotency_keys: Duration::from_secs(24 * 60 * 60),
            // Far longer than any participant stays in doubt (seconds).
            decisions: Duration::from_secs(60 * 60),
            interval: Duration::from_secs(60),
        }
    }
}

#[derive(Clone)]
pub struct ServiceConfig {
    pub mode: Mode,
    /// Where the service's database is.
    pub location: Location,
    pub transport: Transport,
    /// Shared secret for the internal routes; never printed (see the `Debug` impl).
    pub secret: String,
    /// This process's name among the instances of the service (for leases).
    pub instance: String,
    pub peers: Peers,
    /// Longest wait for one call to another service, before it counts as not answering.
    pub call_timeout: Duration,
    /// Added before every call to another service and every feed fetch: a slower network.
    /// Changeable while the service runs (a delay spike, in the drill).
    pub network_delay: Delay,
    /// Added to every unit of work this service does for others: each two-phase-commit step
    /// and each batch of events applied.
    pub processing_delay: Delay,
    /// Cron mode: how often the batch job wakes.
    pub cron_interval: Duration,
    /// Strong mode: how long a participant holds a prepared entry before it asks the
    /// coordinator for the outcome.
    pub in_doubt_after: Duration,
    pub retention: Retention,
}

impl std::fmt::Debug for ServiceConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceConfig")
            .field("mode", &self.mode)
            .field("location", &self.location)
            .field("transport", &self.transport)
            .field("secret", &"***")
            .field("instance", &self.instance)
            .field("peers", &self.peers)
            .field("call_timeout", &self.call_timeout)
            .field("network_delay", &self.network_delay.get())
            .field("processing_delay", &self.processing_delay.get())
            .field("cron_interval", &self.cron_interval)
            .field("in_doubt_after", &self.in_doubt_after)
            .field("retention", &self.retention)
            .finish()
    }
}

impl ServiceConfig {
    /// Settings that suit tests and a first run: the embedded transport, every delay off,
    /// short timeouts.
    pub fn new(mode: Mode, location: Location, secret: String, peers: Peers) -> Self {
        Self {
            mode,
            location,
            transport: Transport::Embedded,
            secret,
            instance: instance_name(),
            peers,
            call_timeout: Duration::from_millis(2_000),
            network_delay: Delay::default(),
            processing_delay: Delay::default(),
            cron_interval: Duration::from_millis(1_000),
            in_doubt_after: Duration::from_millis(5_000),
            retention: Retention::default(),
        }
    }
}

/// A name for this process that no other instance has: the process id and a random suffix
/// (process ids repeat across machines and restarts).
pub fn instance_name() -> String {
    let random = uuid::Uuid::new_v4().simple().to_string();
    format!("pid{}-{}", std::process::id(), &random[..8])
}
