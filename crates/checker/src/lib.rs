//! An independent oracle for Converge's invariants.
//!
//! The checker reads a running system through its **public HTTP API only** — the same routes a
//! user has — and verifies what must always be true (see "What must always be true" in the
//! design brief):
//!
//! 1. [`Invariant::Stats`]: per account, Stats counts exactly the confirmed orders and their
//!    revenue; `GET /stats` is the sum over every account.
//! 2. [`Invariant::Loyalty`]: the points balance is the sum of the points of confirmed orders
//!    (one per whole currency unit of the total); the ledger has at most one entry per order,
//!    a `credited` one of the right points for every confirmed order, and none `credited` for a
//!    cancelled or unknown order.
//! 3. [`Invariant::Payment`]: exactly one `captured` payment of the order's total per confirmed
//!    order, none for a cancelled or aborted one, at most one payment per order, and
//!    `balance = top-ups − captures` (a refund gives back what was captured), never below zero.
//! 4. [`Invariant::NoOrderLost`]: once the system is expected to be settled, no order is still
//!    `accepted`, and every acknowledged order the caller names exists, belongs to its account
//!    and ended `confirmed` or `cancelled`.
//!
//! It is *independent* on purpose: it depends on no other crate of the workspace, not even the
//! shared `contracts`, and reads the JSON with its own minimal types ([`model`]). A bug in the
//! shared types or in a service cannot make the checker agree with it.
//!
//! It is split in two: [`check`] fetches an [`AccountSnapshot`](model::AccountSnapshot) per
//! account (a bounded number of accounts at a time), and the pure functions of [`audit`] turn
//! snapshots into [`Violation`]s, so the rules are unit-tested without any server.
//!
//! The reads of one account are made one after the other, not at one instant. Against a system
//! that is still taking orders for that account, a difference between two reads can be a race
//! rather than a bug; run the check when the system is quiet (eventual modes) or when no order of
//! the checked accounts is in flight (strong mode).

pub mod audit;
mod fetch;
pub mod model;

use std::collections::HashMap;
use std::fmt;

use futures::{StreamExt, TryStreamExt, stream};
use serde::Serialize;

pub use audit::{Listing, audit_account, audit_acknowledged, audit_totals, confirmed_totals};

/// How to run a [`check`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckOptions {
    /// Whether every order must have reached its final status: an `accepted` order is then a
    /// violation. True by default; eventual modes are only checked once the system is quiet.
    pub expect_settled: bool,
    /// Orders the system acknowledged, as `(order_id, account_id)`: each must exist, belong to
    /// that account and (when settled is expected) be confirmed or cancelled.
    pub acknowledged: Vec<(String, String)>,
    /// How many accounts (and acknowledged orders) are read at the same time; 0 counts as 1.
    pub concurrency: usize,
}

impl Default for CheckOptions {
    fn default() -> Self {
        Self {
            expect_settled: true,
            acknowledged: Vec::new(),
            concurrency: 8,
        }
    }
}

/// What a [`check`] found.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Report {
    /// Accounts listed by `GET /accounts` and audited.
    pub accounts: usize,
    /// Distinct orders listed under those accounts.
    pub orders: usize,
    /// Every broken rule, grouped by account in the order the accounts were listed, then the
    /// global totals, then the acknowledged orders.
    pub violations: Vec<Violation>,
}

impl Report {
    /// True when no invariant is broken.
    pub fn is_clean(&self) -> bool {
        self.violations.is_empty()
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
            0 => f.write_str("every invariant holds"),
            1 => f.write_str("1 violation"),
            n => write!(f, "{n} violations"),
        }
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

impl Violation {
    fn new(
        invariant: Invariant,
        account_id: Option<&str>,
        order_id: Option<&str>,
        message: String,
    ) -> Self {
        Self {
            invariant,
            account_id: account_id.map(str::to_owned),
            order_id: order_id.map(str::to_owned),
            message,
        }
    }
}

impl fmt::Display for Violation {
    /// One line, e.g. `stats: account acc_1: counts 3 orders, 4 are confirmed`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut line = format!("{}: ", self.invariant);
        match &self.account_id {
            Some(account) => line.push_str(&format!("account {account}: ")),
            None => line.push_str("all accounts: "),
        }
        if let Some(order) = &self.order_id {
            line.push_str(&format!("order {order}: "));
        }
        line.push_str(&self.message);
        // One line even if a service put a line break in an id.
        if line.contains(['\n', '\r']) {
            line = line.replace("\r\n", " ").replace(['\n', '\r'], " ");
        }
        f.write_str(&line)
    }
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
}

/// Reads the whole system at `base_url` (e.g. `http://127.0.0.1:8080`) and reports every
/// violation of the invariants. An `Err` means the system could not be read, never that an
/// invariant is broken.
pub async fn check(
    http: &reqwest::Client,
    base_url: &str,
    options: &CheckOptions,
) -> Result<Report, CheckError> {
    let api = fetch::Api::new(http, base_url)?;
    let concurrency = options.concurrency.max(1);

    let accounts = api.account_ids().await?;

    // Each account is fetched and audited as it arrives, keeping only what the global checks
    // need, so memory stays small however many orders an account has.
    let mut audited: Vec<(usize, AccountAudit)> = stream::iter(accounts.iter().enumerate())
        .map(|(index, account_id)| {
            let api = &api;
            async move {
                let snapshot = api.account_snapshot(account_id).await?;
                Ok::<_, CheckError>((index, AccountAudit::of(&snapshot, options.expect_settled)))
            }
        })
        .buffer_unordered(concurrency)
        .try_collect()
        .await?;
    audited.sort_by_key(|(index, _)| *index);

    let mut report = Report {
        accounts: accounts.len(),
        ..Report::default()
    };
    let mut confirmed_orders: i128 = 0;
    let mut revenue_cents: i128 = 0;
    let mut listed: HashMap<&str, Listing> = HashMap::with_capacity(accounts.len());
    for (index, audit) in &audited {
        report.orders += audit.order_ids.len();
        confirmed_orders += audit.confirmed_orders;
        revenue_cents += audit.revenue_cents;
        report.violations.extend(audit.violations.iter().cloned());
        listed.insert(
            accounts[*index].as_str(),
            Listing {
                order_ids: &audit.order_ids,
            },
        );
    }

    let totals = api.totals().await?;
    report.violations.extend(audit_totals(
        &totals,
        confirmed_orders,
        revenue_cents,
        accounts.len(),
    ));

    let mut acknowledged: Vec<&(String, String)> = Vec::with_capacity(options.acknowledged.len());
    {
        let mut seen = std::collections::HashSet::with_capacity(options.acknowledged.len());
        for pair in &options.acknowledged {
            if seen.insert(pair) {
                acknowledged.push(pair);
            }
        }
    }
    let mut found: Vec<(usize, Option<model::Order>)> =
        stream::iter(acknowledged.iter().enumerate())
            .map(|(index, (order_id, _))| {
                let api = &api;
                async move { Ok::<_, CheckError>((index, api.order(order_id).await?)) }
            })
            .buffer_unordered(concurrency)
            .try_collect()
            .await?;
    found.sort_by_key(|(index, _)| *index);
    for (index, order) in &found {
        let (order_id, account_id) = acknowledged[*index];
        report.violations.extend(audit_acknowledged(
            order_id,
            account_id,
            order.as_ref(),
            listed.get(account_id.as_str()),
            options.expect_settled,
        ));
    }

    Ok(report)
}

/// What is kept of one account once it has been audited.
struct AccountAudit {
    violations: Vec<Violation>,
    confirmed_orders: i128,
    revenue_cents: i128,
    order_ids: std::collections::HashSet<String>,
}

impl AccountAudit {
    fn of(snapshot: &model::AccountSnapshot, expect_settled: bool) -> Self {
        let (confirmed_orders, revenue_cents) = confirmed_totals(snapshot);
        Self {
            violations: audit_account(snapshot, expect_settled),
            confirmed_orders,
            revenue_cents,
            order_ids: snapshot.orders.iter().map(|o| o.id.clone()).collect(),
        }
    }
}
