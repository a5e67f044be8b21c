//! The event transport of the eventual modes.
//!
//! - [`outbox`]: a producer writes its events in the same local transaction as its state
//!   (transactional outbox); the outbox is an ordered log with a position per event.
//! - [`feed`]: the transport behind a trait, [`feed::EventFeed`]: "give me the events after
//!   position P". The embedded transport, [`feed::HttpFeed`], needs no server: each producer
//!   serves its outbox over HTTP (with long polling), and each consumer asks for what follows
//!   its position. A NATS JetStream implementation fills the same trait.
//! - [`inbox`]: a consumer's position in each feed and its dead-letter list, both stored in
//!   the consumer's own database.
//! - [`consumer`]: the loop that fetches, applies a batch and advances the position in one
//!   local transaction (idempotent consumer: a redelivered event is below the position and
//!   is skipped), retries with backoff, and sets aside an event that keeps failing.

pub mod admin;
pub mod consumer;
pub mod feed;
pub mod inbox;
pub mod outbox;

pub use consumer::{Apply, ApplyError, ConsumerConfig, Schedule};
pub use feed::{EventFeed, HttpFeed, TransportError};
pub use outbox::Outbox;

/// Creates the transport's tables (outbox, positions, dead letters) in a service's database.
/// Idempotent, so every service calls it at start-up whatever its role.
pub async fn install(db: &storage::Db) -> Result<(), storage::sqlx::Error> {
    for statement in [
        "CREATE TABLE IF NOT EXISTS outbox (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            event_id TEXT NOT NULL UNIQUE,
            recorded_at_ms INTEGER NOT NULL,
            body TEXT NOT NULL
        )",
        "CREATE TABLE IF NOT EXISTS inbox_positions (
            feed TEXT PRIMARY KEY,
            position INTEGER NOT NULL
        )",
        "CREATE TABLE IF NOT EXISTS dead_letters (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            feed TEXT NOT NULL,
            seq INTEGER NOT NULL,
            event_id TEXT NOT NULL,
            body TEXT NOT NULL,
            error TEXT NOT NULL,
            attempts INTEGER NOT NULL,
            recorded_at_ms INTEGER NOT NULL,
            UNIQUE (feed, seq)
        )",
    ] {
        storage::sqlx::query(statement).execute(&db.write).await?;
    }
    Ok(())
}
