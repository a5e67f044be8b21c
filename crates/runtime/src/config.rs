//! The settings a service is built from. The CLI turns flags and environment variables into
//! these; tests build them directly.

use std::path::PathBuf;
use std::time::Duration;

use contracts::{Mode, ServiceName};

/// Where to reach each service. In one process these are the free ports the CLI bound; with
/// one process per service they come from flags.
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

#[derive(Debug, Clone)]
pub struct ServiceConfig {
    pub mode: Mode,
    /// The service's database is `DATA_DIR/<service>.db`.
    pub data_dir: PathBuf,
    /// Shared secret for the internal routes.
    pub secret: String,
    pub peers: Peers,
    /// Longest wait for one call to another service, before it counts as not answering.
    pub call_timeout: Duration,
    /// Added before every call to another service and every feed fetch: a slower network.
    pub network_delay: Duration,
    /// Added to every unit of work this service does for others: each two-phase-commit step
    /// and each batch of events applied ("complex logic or delays").
    pub processing_delay: Duration,
    /// Cron mode: how often the batch job wakes.
    pub cron_interval: Duration,
    /// Strong mode: how long a participant holds a prepared entry before it asks the
    /// coordinator for the outcome.
    pub in_doubt_after: Duration,
}

impl ServiceConfig {
    /// Settings that suit tests and a first run: every delay off, short timeouts.
    pub fn new(mode: Mode, data_dir: PathBuf, secret: String, peers: Peers) -> Self {
        Self {
            mode,
            data_dir,
            secret,
            peers,
            call_timeout: Duration::from_millis(2_000),
            network_delay: Duration::ZERO,
            processing_delay: Duration::ZERO,
            cron_interval: Duration::from_millis(1_000),
            in_doubt_after: Duration::from_millis(5_000),
        }
    }
}
