//! An independent oracle for Converge's invariants.
//!
//! The checker reads a running system through its **public HTTP API only** — the same routes a
//! user has — and verifies what must always be true (see "What must always be true" in the
//! design brief), per order and per account:
//!
//! 1. [`Invariant::Stats`]: each confirmed order is `counted` once at Stats
//!    (`GET /stats/orders/{id}`) under its account with its total; a cancelled one is absent or
//!    `reversed`. Each account's totals are the sum of those facts, and `GET /stats` the sum of
//!    the accounts.
//! 2. [`Invariant::Loyalty`]: each confirmed order has one `credited` ledger entry of its points
//!    (one per whole currency unit of its total); a cancelled one none credited; never two
//!    entries for one order. The points balance is the sum of the credited entries.
//! 3. [`Invariant::Payment`]: each confirmed order has one `captured` payment of its total; a
//!    cancelled or aborted one none; never two payments for one order. The wallet's
//!    `balance = top-ups − captures + refunds`, never below zero; its top-ups are the ones
//!    acknowledged to the caller (when it names them); what it holds for two-phase commits is
//!    covered by the balance, and nothing once the system is quiet (a hold left is a leaked
//!    prepare).
//! 4. [`Invariant::NoOrderLost`]: each order is listed once, under its account, and ends
//!    `confirmed` or `cancelled`; every acknowledged order the caller names exists there.
//!
//! Every violation names the invariant, the account and (when it concerns one) the order, and
//! says what differs with both numbers.
//!
//! # In flight is not a violation
//!
//! A system in an eventual mode answers before it has applied an order everywhere. While it is
//! not quiet, an order still `accepted`, or confirmed at Order and not yet applied at Stats,
//! Loyalty or Payment, is listed in [`Report::in_flight`] with what is pending for it, not as a
//! violation. What no lag explains (a confirmed order reversed at Stats, counted twice, a wrong
//! total) is a violation at any moment. The check reads `GET /progress` before and after its
//! reads; quiet at both with nothing moved in between ([`Report::quiet`]) makes every difference
//! final. [`wait_quiet`], or [`CheckOptions::wait_quiet`], waits for that first:
//!
//! ```no_run
//! # async fn example() -> Result<(), checker::CheckError> {
//! use std::time::Duration;
//!
//! let http = reqwest::Client::new();
//! // Wait for quiet (an error naming what still moves if it does not come), then check.
//! let options = checker::CheckOptions {
//!     wait_quiet: Some(Duration::from_secs(30)),
//!     ..Default::default()
//! };
//! let report = checker::check(&http, "http://127.0.0.1:8080", &options).await?;
//! for violation in &report.violations {
//!     println!("{violation}");
//! }
//! // Or check at once, under load: what is still moving is listed, not counted against it.
//! let at_once = checker::CheckOptions {
//!     expect_settled: false,
//!     ..Default::default()
//! };
//! let report = checker::check(&http, "http://127.0.0.1:8080", &at_once).await?;
//! for entry in &report.in_flight {
//!     println!("{entry}");
//! }
//! # Ok(())
//! # }
//! ```
//!
//! # A tour
//!
//! It is *independent* on purpose: it depends on no other crate of the workspace, not even the
//! shared `contracts`, and reads the JSON with its own minimal types ([`model`]). A bug in the
//! shared types or in a service cannot make the checker agree with it.
//!
//! - `check` (this crate's [`check`]) runs the steps: wait for quiet if asked, take a reading
//!   of `/progress`, read and audit each account (a bounded number at a time), follow the
//!   acknowledged orders, take a second reading, judge.
//! - `fetch` reads the API: an [`AccountSnapshot`](model::AccountSnapshot) per account, every
//!   page of each listing, a timeout on every read.
//! - [`audit`] holds the rules as pure functions of snapshots, so they are unit-tested on
//!   hand-built snapshots without any server; its module docs go on with the tour.
//! - `quiet` reads `/progress`: waiting for quiet, and naming what is not.

pub mod audit;
mod check;
mod fetch;
pub mod model;
mod quiet;

use std::fmt;
use std::time::Duration;

use serde::Serialize;

pub use audit::{Listing, audit_account, audit_acknowledged, audit_totals};
pub use check::check;
pub use quiet::{not_quiet_reasons, wait_quiet};

/// How to run a [`check`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckOptions {
    /// Whether every order must have reached every service: an order still `accepted`, or
    /// one some service has not applied yet, is then a violation. True by default. False, for
    /// a check of a system still busy, lists such orders in [`Report::in_flight`] instead, as
    /// long as `/progress` shows the system moving; once it is quiet throughout the check
    /// they are violations either way.
    pub expect_settled: bool,
    /// Orders the system acknowledged, as `(order_id, account_id)`: each must exist, belong to
    /// that account and (when settled is expected) be confirmed or cancelled.
    pub acknowledged: Vec<(String, String)>,
    /// How many accounts (and acknowledged orders) are read at the same time; 0 counts as 1.
    /// One account's own reads go one after the other, so this is also how many requests are
    /// in flight at most.
    pub concurrency: usize,
    /// Every top-up the system acknowledged (answered `201`), as `(account_id, amount_cents)`.
    /// When not empty, each audited account's `top_ups_cents` must equal the sum of its
    /// entries (0 for an account not named), and an account named here is audited even if
    /// `GET /accounts` does not list it. Empty (the default) leaves top-ups unchecked; the
    /// balance is checked against the wallet's own `top_ups_cents` either way.
    pub top_ups: Vec<(String, i64)>,
    /// Wait up to this long for `GET /progress` to say quiet before reading anything; `None`
    /// (the default) reads at once. A system not quiet in time is a
    /// [`CheckError::NotQuiet`] that names what is still moving.
    ///
    /// For a command that waits by default and checks at once on request:
    /// `wait_quiet: Some(timeout)` to wait; `wait_quiet: None, expect_settled: false` to check
    /// at once, with what is still moving listed in [`Report::in_flight`]. Whether the system
    /// was in fact quiet throughout is in [`Report::quiet`] either way.
    pub wait_quiet: Option<Duration>,
}

impl Default for CheckOptions {
    fn default() -> Self {
        Self {
            expect_settled: true,
            acknowledged: Vec::new(),
            concurrency: 8,
            top_ups: Vec::new(),
            wait_quiet: None,
        }
    }
}

/// What a [`check`] found.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Report {
    /// Accounts audited: those `GET /accounts` lists, then any other the caller topped up.
    pub accounts: usize,
    /// Distinct orders listed under those accounts.
    pub orders: usize,
    /// Whether `/progress` said quiet before and after the check's reads, with nothing moved
    /// in between: the reads then saw one settled state, every difference is final, and a
    /// hold left in a wallet is a leaked prepare.
    pub quiet: bool,
    /// Every broken rule, grouped by account in the order the accounts were listed, then the
    /// global totals, then the acknowledged orders.
    pub violations: Vec<Violation>,
    /// What the system has not finished applying, in the same order: differences a lag
    /// explains, while the system is not settled. Not violations.
    pub in_flight: Vec<InFlight>,
}

impl Report {
    /// True when no invariant is broken. Orders still in flight do not make a report unclean.
    pub fn is_clean(&self) -> bool {
        self.violations.is_empty()
    }

    /// True when no invariant is broken and nothing is still in flight: every service agrees.
    pub fn is_settled(&self) -> bool {
        self.is_clean() && self.in_flight.is_empty()
    }
}

impl fmt::Display for Report {
    /// A one-line summary; the violations are printed one per line by the caller.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let plural = |n: usize| if n == 1 { "" } else { "s" };
        write!(
            f,
            "checked {} account{} and {} order{}: ",
            self.accounts,
            plural(self.accounts),
            self.orders,
            plural(self.orders)
        )?;
        match self.violations.len() {
            0 => f.write_str("every invariant holds")?,
            1 => f.write_str("1 violation")?,
            n => write!(f, "{n} violations")?,
        }
        if !self.in_flight.is_empty() {
            write!(f, "; {} still in flight", self.in_flight.len())?;
        }
        if !self.quiet && !self.violations.is_empty() {
            // Worth knowing beside a violation: if settled was expected of a system still
            // moving, the violation may be a lag.
            f.write_str(" (the system was not quiet while checked)")?;
        }
        Ok(())
    }
}

/// The rule a [`Violation`] breaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Invariant {
    /// Stats counts the confirmed orders and their revenue.
    Stats,
    /// Points and ledger match the confirmed orders, one entry per order.
    Loyalty,
    /// One captured payment per confirmed order, and a balance that adds up.
    Payment,
    /// Every acknowledged order ends confirmed or cancelled, never vanishes.
    NoOrderLost,
}

impl Invariant {
    pub const ALL: [Invariant; 4] = [
        Invariant::Stats,
        Invariant::Loyalty,
        Invariant::Payment,
        Invariant::NoOrderLost,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Invariant::Stats => "stats",
            Invariant::Loyalty => "loyalty",
            Invariant::Payment => "payment",
            Invariant::NoOrderLost => "no order lost",
        }
    }
}

impl fmt::Display for Invariant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One broken rule, with the account and the order it concerns.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Violation {
    pub invariant: Invariant,
    /// `None` for a rule over every account (the global `/stats`).
    pub account_id: Option<String>,
    /// `None` for a rule over a whole account (a balance, a count).
    pub order_id: Option<String>,
    /// What differs, with both numbers.
    pub message: String,
}

impl fmt::Display for Violation {
    /// One line, e.g. `stats: account acc_1: counts 3 orders, 4 are confirmed`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let head = self.invariant.to_string();
        one_line(f, &head, &self.account_id, &self.order_id, &self.message)
    }
}

/// An order (or an account's sum) some service has not finished applying while the system is
/// busy: not a violation, and what is pending for it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct InFlight {
    /// `None` for the global `/stats`.
    pub account_id: Option<String>,
    /// `None` for a sum over the whole account.
    pub order_id: Option<String>,
    /// Each difference still pending, e.g. `still accepted, not yet confirmed or cancelled`.
    pub pending: Vec<String>,
}

impl fmt::Display for InFlight {
    /// One line, e.g. `in flight: account acc_1: order ord_6: still accepted, …`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let pending = self.pending.join("; ");
        one_line(f, "in flight", &self.account_id, &self.order_id, &pending)
    }
}

/// `head: account A: order O: message`, on one line even if a service put a line break in an
/// id.
fn one_line(
    f: &mut fmt::Formatter<'_>,
    head: &str,
    account_id: &Option<String>,
    order_id: &Option<String>,
    message: &str,
) -> fmt::Result {
    let mut line = format!("{head}: ");
    match account_id {
        Some(account) => line.push_str(&format!("account {account}: ")),
        None => line.push_str("all accounts: "),
    }
    if let Some(order) = order_id {
        line.push_str(&format!("order {order}: "));
    }
    line.push_str(message);
    if line.contains(['\n', '\r']) {
        line = line.replace("\r\n", " ").replace(['\n', '\r'], " ");
    }
    f.write_str(&line)
}

/// The system could not be read, so nothing can be said about the invariants.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CheckError {
    #[error("invalid base URL {url:?}: {reason}")]
    BaseUrl { url: String, reason: String },
    #[error("GET {url}: the system could not be reached: {detail}")]
    Unreachable { url: String, detail: String },
    #[error("GET {url}: unexpected status {status}: {body}")]
    Status {
        url: String,
        status: u16,
        body: String,
    },
    #[error("GET {url}: the answer is not the expected JSON: {detail}")]
    BadJson { url: String, detail: String },
    #[error("GET {url}: the listing does not advance: cursor {cursor:?} came back a second time")]
    Paging { url: String, cursor: String },
    #[error("GET {url}: the listing goes on after {pages} pages, more than the checker reads")]
    TooManyPages { url: String, pages: usize },
    /// [`wait_quiet`] (or [`CheckOptions::wait_quiet`]) ran out of time.
    #[error("the system did not become quiet within {waited_ms} ms: {still}")]
    NotQuiet {
        waited_ms: u64,
        /// What was still not quiet at the last read, e.g. `stats is 3 events behind order's
        /// feed (at 7 of 10)`.
        still: String,
    },
}
