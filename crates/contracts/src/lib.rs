//! The contracts between Converge's services: the only crate every service shares.
//!
//! A tour:
//! - [`ids`] and [`money`]: newtypes with private fields and a `parse` constructor, so a value
//!   that exists is a valid one ("parse, don't validate").
//! - [`limits`]: every bound the public API enforces, with the reason for each number.
//! - [`api`]: the JSON bodies of the public API, and [`order::NewOrder`], the validated order.
//! - [`events`]: what flows through the event transport in the eventual modes.
//! - [`internal`]: the two-phase-commit protocol and the other service-to-service calls.
//! - [`Mode`]: strong, queue or cron.

pub mod api;
pub mod events;
pub mod ids;
pub mod internal;
pub mod limits;
pub mod money;
pub mod order;

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A rule of the public API that an input broke. The message is meant for the user:
/// it names the field and what was expected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ValidationError(pub String);

impl ValidationError {
    pub fn new(message: impl Into<String>) -> Self {
        Self(message.into())
    }
}

/// How the services keep each other up to date.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Two-phase commit: acknowledged only after every service has applied the order.
    Strong,
    /// Transactional outbox and idempotent consumers: acknowledged at once, applied eventually.
    Queue,
    /// A periodic batch job: acknowledged at once, applied at the next tick.
    Cron,
}

impl Mode {
    pub const ALL: [Mode; 3] = [Mode::Strong, Mode::Queue, Mode::Cron];

    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Strong => "strong",
            Mode::Queue => "queue",
            Mode::Cron => "cron",
        }
    }

    /// Whether the order is acknowledged before the other services have applied it.
    pub fn is_eventual(self) -> bool {
        !matches!(self, Mode::Strong)
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Mode {
    type Err = ValidationError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "strong" => Ok(Mode::Strong),
            "queue" => Ok(Mode::Queue),
            "cron" => Ok(Mode::Cron),
            other => Err(ValidationError::new(format!(
                "unknown mode {other:?}: expected strong, queue or cron"
            ))),
        }
    }
}

/// The five services. Each owns its data and is reached only over the network.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ServiceName {
    Account,
    Order,
    Payment,
    Loyalty,
    Stats,
}

impl ServiceName {
    pub const ALL: [ServiceName; 5] = [
        ServiceName::Account,
        ServiceName::Order,
        ServiceName::Payment,
        ServiceName::Loyalty,
        ServiceName::Stats,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ServiceName::Account => "account",
            ServiceName::Order => "order",
            ServiceName::Payment => "payment",
            ServiceName::Loyalty => "loyalty",
            ServiceName::Stats => "stats",
        }
    }
}

impl fmt::Display for ServiceName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ServiceName {
    type Err = ValidationError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ServiceName::ALL
            .into_iter()
            .find(|name| name.as_str() == s)
            .ok_or_else(|| {
                ValidationError::new(format!(
                    "unknown service {s:?}: expected account, order, payment, loyalty or stats"
                ))
            })
    }
}

/// Milliseconds since the Unix epoch: how every service stamps its records, so that lags
/// between services are differences of integers.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
