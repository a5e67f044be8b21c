//! The rules, as pure functions of what was read: no I/O here, so each rule is unit-tested with
//! hand-built snapshots.
//!
//! A tour, in the order an account is audited:
//!
//! 1. [`audit_account`] indexes one account's snapshot by order (`index`): for each order,
//!    what Order, Stats, Loyalty and Payment hold for it.
//! 2. The rules of each order (`per_order`): listed once, under its account, and what each
//!    other service applied matches the status Order gave it.
//! 3. The rules of the account as a whole (`sums`): each service's sums equal its records per
//!    order, and the wallet adds up.
//! 4. Every rule yields [`Finding`]s that say what differs and whether a lag can explain it
//!    ([`Standing`]). Only the check knows whether the system was quiet while it read; it hands
//!    that to [`judge`], which turns findings into [`Violation`](crate::Violation)s or entries
//!    still in flight.
//!
//! Beside the accounts, [`audit_totals`] compares the global `/stats` with the accounts, and
//! [`audit_acknowledged`] follows the orders the caller says were acknowledged.
//!
//! Sums are taken in `i128`, so no value a service answers can make the checker overflow.

mod findings;
mod index;
mod per_order;
mod sink;
mod sums;

use std::collections::HashSet;

pub use findings::{Finding, Judged, Moment, Standing, judge};

use crate::Invariant;
use crate::model::{AccountSnapshot, Order, OrderStatus, Totals};
use index::AccountIndex;
use sink::Sink;

/// The orders listed under one audited account, for [`audit_acknowledged`].
#[derive(Debug, Clone, Copy)]
pub struct Listing<'a> {
    pub order_ids: &'a HashSet<String>,
}

/// Everything found within one account: first each order, in the order listed, then what was
/// found for orders the account does not list, then the account's sums and wallet.
///
/// `top_ups_cents`: what the top-ups acknowledged to the caller for this account add up to,
/// if the caller says; `None` leaves the wallet's top-ups unchecked.
pub fn audit_account(snapshot: &AccountSnapshot, top_ups_cents: Option<i128>) -> Vec<Finding> {
    let index = AccountIndex::of(snapshot);
    let mut sink = Sink::new(&snapshot.account_id);
    for &(order, times) in &index.orders {
        per_order::audit_order(&mut sink, &index, order, times);
    }
    per_order::audit_unlisted(&mut sink, &index);
    sums::stats_sums(&mut sink, snapshot, &index);
    sums::points_sum(&mut sink, snapshot, &index);
    sums::wallet(&mut sink, snapshot, top_ups_cents);
    sink.findings
}

/// Whether the global `GET /stats` is the sum of every account's Stats totals. With
/// [`audit_account`] holding each account's totals to its confirmed orders, `/stats` then
/// counts exactly the confirmed orders; a difference here is an order counted for no listed
/// account, or a global total that drifted. The two are read at different instants, so a
/// difference is [`Standing::Lagging`].
///
/// `summed`: the accounts' `GET /stats/accounts/{id}`, added up; `accounts`: how many.
pub fn audit_totals(reported: &Totals, summed: &Sums, accounts: usize) -> Vec<Finding> {
    let mut out = Vec::new();
    let mut lagging = |message: String| {
        out.push(Finding::new(
            Standing::Lagging,
            Invariant::Stats,
            None,
            None,
            message,
        ));
    };
    if i128::from(reported.orders) != summed.orders {
        lagging(format!(
            "/stats counts {} orders, the Stats totals of the {accounts} accounts add up to {}",
            reported.orders, summed.orders
        ));
    }
    if i128::from(reported.revenue_cents) != summed.revenue_cents {
        lagging(format!(
            "/stats counts {} cents of revenue, the Stats totals of the {accounts} accounts \
             add up to {}",
            reported.revenue_cents, summed.revenue_cents
        ));
    }
    out
}

/// [`Totals`] added up over accounts, wide enough that no sum of answers overflows.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Sums {
    pub orders: i128,
    pub revenue_cents: i128,
}

impl Sums {
    pub fn add(&mut self, totals: &Totals) {
        self.orders += i128::from(totals.orders);
        self.revenue_cents += i128::from(totals.revenue_cents);
    }
}

/// What must hold for one order the system acknowledged to `account_id`.
///
/// `found`: the answer of `GET /orders/{order_id}` (`None` for a 404). `listing`: the orders
/// listed under `account_id`, if that account was audited; an order listed there has had its
/// status checked by [`audit_account`] already and is not reported twice.
pub fn audit_acknowledged(
    order_id: &str,
    account_id: &str,
    found: Option<&Order>,
    listing: Option<&Listing<'_>>,
) -> Vec<Finding> {
    let mut out = Vec::new();
    let mut report = |standing: Standing, message: String| {
        out.push(Finding::new(
            standing,
            Invariant::NoOrderLost,
            Some(account_id),
            Some(order_id),
            message,
        ));
    };
    // An acknowledgement comes after the order is written, so a missing order is never a lag.
    let Some(order) = found else {
        report(
            Standing::Broken,
            "acknowledged order is lost: GET /orders/{id} answers 404".to_owned(),
        );
        return out;
    };
    if order.account_id != account_id {
        report(
            Standing::Broken,
            format!(
                "acknowledged for account {account_id}, but the order belongs to account {}",
                order.account_id
            ),
        );
    }
    let listed = match listing {
        Some(listing) if listing.order_ids.contains(order_id) => true,
        Some(listing) => {
            report(
                Standing::Broken,
                format!(
                    "acknowledged order exists but is not among the account's {} listed orders",
                    listing.order_ids.len()
                ),
            );
            false
        }
        None => false,
    };
    if !listed && order.status == OrderStatus::Accepted {
        report(
            Standing::Lagging,
            "still accepted, not yet confirmed or cancelled".to_owned(),
        );
    }
    out
}

#[cfg(test)]
mod tests;
