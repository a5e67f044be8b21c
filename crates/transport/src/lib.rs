//! The event transport of the eventual modes.
//!
//! - [`outbox`]: a producer writes its events in the same local transaction as its state
//!   (transactional outbox); read in an order that never skips a row, on either engine.
//! - [`feed`]: the transport behind a trait, [`EventFeed`]: "give me the events after cursor
//!   C". The embedded transport, [`HttpFeed`], needs no server: each producer serves its
//!   outbox over HTTP (with long polling). With a broker, [`relay`] publishes each outbox to
//!   a NATS JetStream stream and [`nats::NatsFeed`] reads it through a durable consumer.
//! - [`inbox`]: a consumer's position in each feed and its dead-letter list, both stored in
//!   the consumer's own database.
//! - [`consumer`]: the loop that fetches, applies a batch and advances the position in one
//!   local transaction (idempotent consumer), retries what may pass for as long as it lasts,
//!   sets aside what never will, and can be paused and asked to replay.
//! - [`lease`]: one instance at a time runs a feed's consumer (and a producer's relay).
//! - [`prune`]: the outbox and each service's bookkeeping stay bounded.
//! - [`admin`]: the internal routes for all of the above.

pub mod admin;
pub mod consumer;
pub mod feed;
pub mod inbox;
pub mod lease;
pub mod nats;
pub mod outbox;
pub mod prune;
pub mod relay;

pub use consumer::{Apply, ApplyError, Consumer, ConsumerConfig, Control, Schedule};
pub use feed::{EventFeed, HttpFeed, TransportError};
pub use outbox::Outbox;

use storage::Migration;

/// The transport's tables (outbox, positions, dead letters, leases, readers, relay), which
/// every service has whatever its role.
pub static MIGRATIONS: &[Migration] = &[Migration {
    name: "transport_0001",
    sqlite: include_str!("../migrations/sqlite/0001_transport.sql"),
    postgres: include_str!("../migrations/postgres/0001_transport.sql"),
}];
