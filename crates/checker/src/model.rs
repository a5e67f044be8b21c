//! What the checker reads, in its own minimal types.
//!
//! These mirror only the fields of the public API that the invariants need, and they are written
//! here rather than taken from the shared `contracts` crate on purpose: if the shared types ever
//! drift from what the services really answer, the checker notices instead of agreeing with them.
//! Fields the checker does not need are ignored, so additions to the API do not break it; a
//! status it does not know is a decoding error, because guessing what it means could hide a bug.

use std::collections::BTreeMap;

use serde::Deserialize;

/// Where an order stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OrderStatus {
    /// Acknowledged in an eventual mode, not yet applied everywhere.
    Accepted,
    Confirmed,
    Cancelled,
}

impl OrderStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            OrderStatus::Accepted => "accepted",
            OrderStatus::Confirmed => "confirmed",
            OrderStatus::Cancelled => "cancelled",
        }
    }
}

/// An order, as `GET /orders/{id}` and `GET /accounts/{id}/orders` show it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Order {
    pub id: String,
    pub account_id: String,
    pub status: OrderStatus,
    pub total_cents: i64,
    pub points: i64,
}

impl Order {
    /// The points the order earns: one per whole currency unit of its total.
    pub fn earned_points(&self) -> i64 {
        self.total_cents / 100
    }
}

/// `GET /wallets/{account_id}`; all zeros for a wallet that was never created.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
pub struct Wallet {
    pub balance_cents: i64,
    /// Only shown in messages: funds held by a strong-mode order in flight.
    #[serde(default)]
    pub held_cents: i64,
    pub top_ups_cents: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PaymentStatus {
    /// The money moved from the wallet to the order.
    Captured,
    /// The money never moved.
    Declined,
    /// Captured, then given back: net zero.
    Refunded,
}

impl PaymentStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            PaymentStatus::Captured => "captured",
            PaymentStatus::Declined => "declined",
            PaymentStatus::Refunded => "refunded",
        }
    }
}

/// One entry of `GET /wallets/{account_id}/payments`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Payment {
    pub order_id: String,
    pub account_id: String,
    pub amount_cents: i64,
    pub status: PaymentStatus,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LedgerStatus {
    /// Points granted for the order.
    Credited,
    /// Points taken back because the order was cancelled.
    Reversed,
}

impl LedgerStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            LedgerStatus::Credited => "credited",
            LedgerStatus::Reversed => "reversed",
        }
    }
}

/// One entry of `GET /loyalty/{account_id}/ledger`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct LedgerEntry {
    pub order_id: String,
    pub points: i64,
    pub status: LedgerStatus,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FactStatus {
    /// In the totals.
    Counted,
    /// Taken out of the totals (or never put in) because the order was cancelled.
    Reversed,
}

impl FactStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            FactStatus::Counted => "counted",
            FactStatus::Reversed => "reversed",
        }
    }
}

/// `GET /stats/orders/{order_id}`: how Stats holds one order it has applied (a 404 until it
/// has, and for a two-phase commit still pending).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct StatsFact {
    pub order_id: String,
    pub account_id: String,
    pub total_cents: i64,
    pub status: FactStatus,
}

/// What Stats counts: `GET /stats`, or one account's part of it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
pub struct Totals {
    pub orders: i64,
    pub revenue_cents: i64,
}

/// `GET /progress`: whether the system is quiet (every event produced has been consumed and no
/// two-phase commit is in doubt), and what each service said about itself.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct Progress {
    pub quiet: bool,
    /// By service name; a service that did not answer the gateway is absent.
    pub services: BTreeMap<String, ServiceStatus>,
}

/// One service's part of [`Progress`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct ServiceStatus {
    /// The position of the last event consumers can read in the service's feed; `None`
    /// without one (strong mode, or a service that produces no events).
    #[serde(default)]
    pub outbox_head: Option<Position>,
    /// Events committed to the outbox and not yet published to a broker.
    #[serde(default)]
    pub unpublished: i64,
    /// How far the service has consumed each feed, by the name of the feed's producer.
    #[serde(default)]
    pub consumers: BTreeMap<String, Consumer>,
    /// Two-phase-commit entries prepared here and not yet committed or aborted.
    pub in_doubt: i64,
}

/// A place in a feed: feeds are ordered by transaction, then sequence (the transaction is 0
/// where commit order is sequence order).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
pub struct Position {
    #[serde(default)]
    pub tx: i64,
    pub seq: i64,
}

/// A consumer of one feed: where it is, and whether it is `running`, `paused`, `stuck` (its
/// last batch failed and is being retried) or `standby` (another instance consumes).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct Consumer {
    pub position: Position,
    #[serde(default)]
    pub state: String,
    #[serde(default)]
    pub last_error: Option<String>,
}

/// Everything the services say about one account, read through the public API. The audit of
/// an account is a pure function of this.
///
/// The reads are made one after the other, the orders last but for Stats' facts: a service
/// applies an order only after Order has written it, so every order that another service's
/// read shows is already in the listing, and an effect for an order not listed is never a
/// race.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AccountSnapshot {
    pub account_id: String,
    /// `GET /accounts/{id}/orders`, every page, in the order listed.
    pub orders: Vec<Order>,
    /// `GET /stats/accounts/{id}`.
    pub stats: Totals,
    /// `GET /stats/orders/{order_id}` of each listed order that Stats answers for (a 404 is
    /// left out).
    pub stats_facts: Vec<StatsFact>,
    /// `GET /loyalty/{id}`: the points balance.
    pub points: i64,
    /// `GET /loyalty/{id}/ledger`, every page.
    pub ledger: Vec<LedgerEntry>,
    /// `GET /wallets/{id}`.
    pub wallet: Wallet,
    /// `GET /wallets/{id}/payments`, every page.
    pub payments: Vec<Payment>,
}
