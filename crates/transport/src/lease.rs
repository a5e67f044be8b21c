//! Leases: which instance of a service runs a job that must run once (a feed's consumer, a
//! relay, the coordinator's recovery), when several instances share one database.
//!
//! A lease is a row: a name, an owner and an expiry. An instance takes a lease that is free
//! or expired, and keeps it by renewing it. Safety does not rest on clocks: whoever works
//! under a lease renews it *inside the transaction of its work* ([`Lease::fence`]), and that
//! update succeeds only for the owner. Two instances that both believe they hold a lease (a
//! pause longer than the expiry, a clock that jumped) are serialized by the row's lock, and
//! the loser's work rolls back. Clocks only decide how soon a dead owner is replaced.
//!
//! With one instance (SQLite's default) the lease is always there to take, and fencing costs
//! one indexed update per batch.

use std::time::Duration;

use contracts::now_ms;
use storage::{Db, DbError, ErrorKind, Tx};

/// How long a lease lasts without renewal: how long a dead owner's work waits for another
/// instance. Long against a batch's duration, short against an operator's patience.
pub const LEASE_TTL: Duration = Duration::from_secs(10);

#[derive(Debug, Clone)]
pub struct Lease {
    name: String,
    owner: String,
}

impl Lease {
    pub fn new(name: impl Into<String>, owner: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            owner: owner.into(),
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Takes the lease if it is free, expired or already ours, and renews it; returns whether
    /// it is held.
    pub async fn try_hold(&self, db: &Db) -> Result<bool, DbError> {
        let lease = self.clone();
        db.write(move |tx| lease.hold(tx)).await
    }

    fn hold(&self, tx: &mut Tx<'_>) -> Result<bool, DbError> {
        let now = now_ms();
        let held: Option<String> = tx.query_opt(
            "INSERT INTO leases (name, owner, expires_at_ms) VALUES ($1, $2, $3)
             ON CONFLICT (name) DO UPDATE SET owner = excluded.owner,
                 expires_at_ms = excluded.expires_at_ms
             WHERE leases.owner = excluded.owner OR leases.expires_at_ms < $4
             RETURNING owner",
            &[&self.name, &self.owner, &(now + ttl_ms()), &now],
        )?;
        Ok(held.is_some())
    }

    /// Inside a write that works under the lease: renews it, or fails the write if another
    /// instance holds it now.
    pub fn fence(&self, tx: &mut Tx<'_>) -> Result<(), DbError> {
        let renewed = tx.execute(
            "UPDATE leases SET expires_at_ms = $3 WHERE name = $1 AND owner = $2",
            &[&self.name, &self.owner, &(now_ms() + ttl_ms())],
        )?;
        if renewed == 1 {
            Ok(())
        } else {
            Err(DbError::new(
                ErrorKind::Transient,
                format!("lease {} is held by another instance now", self.name),
            ))
        }
    }

    /// Gives the lease up (at shutdown), so another instance need not wait for it to expire.
    pub async fn release(&self, db: &Db) -> Result<(), DbError> {
        let lease = self.clone();
        db.write(move |tx| {
            tx.execute(
                "DELETE FROM leases WHERE name = $1 AND owner = $2",
                &[&lease.name, &lease.owner],
            )
        })
        .await?;
        Ok(())
    }
}

fn ttl_ms() -> i64 {
    LEASE_TTL.as_millis() as i64
}
