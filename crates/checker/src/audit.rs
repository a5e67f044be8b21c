//! The rules, as pure functions of what was read: no I/O here, so each rule is unit-tested with
//! hand-built snapshots.
//!
//! Sums are taken in `i128`, so no value a service answers can make the checker overflow.

use std::collections::{BTreeMap, HashMap, HashSet};

use crate::model::{AccountSnapshot, LedgerStatus, Order, OrderStatus, PaymentStatus, Totals};
use crate::{Invariant, Violation};

/// The orders listed under one audited account, for [`audit_acknowledged`].
#[derive(Debug, Clone, Copy)]
pub struct Listing<'a> {
    pub order_ids: &'a HashSet<String>,
}

/// The account's distinct orders, each once, in the order first listed.
fn distinct_orders(snapshot: &AccountSnapshot) -> Vec<(&Order, usize)> {
    let mut position: HashMap<&str, usize> = HashMap::with_capacity(snapshot.orders.len());
    let mut distinct: Vec<(&Order, usize)> = Vec::with_capacity(snapshot.orders.len());
    for order in &snapshot.orders {
        match position.get(order.id.as_str()) {
            Some(&i) => distinct[i].1 += 1,
            None => {
                position.insert(&order.id, distinct.len());
                distinct.push((order, 1));
            }
        }
    }
    distinct
}

/// How many confirmed orders the account has and what they total, counting each order once.
pub fn confirmed_totals(snapshot: &AccountSnapshot) -> (i128, i128) {
    distinct_orders(snapshot)
        .into_iter()
        .filter(|(o, _)| o.status == OrderStatus::Confirmed)
        .fold((0, 0), |(n, sum), (o, _)| {
            (n + 1, sum + i128::from(o.total_cents))
        })
}

/// Every violation of the invariants within one account.
///
/// `expect_settled`: whether an `accepted` order is itself a violation (the system is quiet).
pub fn audit_account(snapshot: &AccountSnapshot, expect_settled: bool) -> Vec<Violation> {
    let account = snapshot.account_id.as_str();
    let mut out = Vec::new();
    let mut report = |invariant: Invariant, order: Option<&str>, message: String| {
        out.push(Violation::new(invariant, Some(account), order, message));
    };

    // The orders themselves.
    let orders = distinct_orders(snapshot);
    let by_id: HashMap<&str, &Order> = orders.iter().map(|(o, _)| (o.id.as_str(), *o)).collect();
    for &(order, times) in &orders {
        let id = Some(order.id.as_str());
        if times > 1 {
            report(
                Invariant::NoOrderLost,
                id,
                format!("listed {times} times among the account's orders, expected once"),
            );
        }
        if order.account_id != account {
            report(
                Invariant::NoOrderLost,
                id,
                format!(
                    "listed among this account's orders but belongs to account {}",
                    order.account_id
                ),
            );
        }
        if expect_settled && order.status == OrderStatus::Accepted {
            report(
                Invariant::NoOrderLost,
                id,
                "still accepted, expected confirmed or cancelled once the system is quiet"
                    .to_owned(),
            );
        }
        if order.points != order.earned_points() {
            report(
                Invariant::Loyalty,
                id,
                format!(
                    "order says {} points, its total of {} cents earns {}",
                    order.points,
                    order.total_cents,
                    order.earned_points()
                ),
            );
        }
    }
    let confirmed: Vec<&Order> = orders
        .iter()
        .map(|(o, _)| *o)
        .filter(|o| o.status == OrderStatus::Confirmed)
        .collect();
    let confirmed_count = confirmed.len() as i128;
    let confirmed_revenue: i128 = confirmed.iter().map(|o| i128::from(o.total_cents)).sum();
    let confirmed_points: i128 = confirmed
        .iter()
        .map(|o| i128::from(o.earned_points()))
        .sum();

    // 1. Stats.
    if i128::from(snapshot.stats.orders) != confirmed_count {
        report(
            Invariant::Stats,
            None,
            format!(
                "counts {} orders, {confirmed_count} are confirmed",
                snapshot.stats.orders
            ),
        );
    }
    if i128::from(snapshot.stats.revenue_cents) != confirmed_revenue {
        report(
            Invariant::Stats,
            None,
            format!(
                "counts {} cents of revenue, the confirmed orders total {confirmed_revenue}",
                snapshot.stats.revenue_cents
            ),
        );
    }

    // 2. Loyalty.
    if i128::from(snapshot.points) != confirmed_points {
        report(
            Invariant::Loyalty,
            None,
            format!(
                "has {} points, the confirmed orders earn {confirmed_points}",
                snapshot.points
            ),
        );
    }
    let mut ledger: BTreeMap<&str, Vec<_>> = BTreeMap::new();
    for entry in &snapshot.ledger {
        ledger
            .entry(entry.order_id.as_str())
            .or_default()
            .push(entry);
    }
    for (&order_id, entries) in &ledger {
        let id = Some(order_id);
        if entries.len() > 1 {
            report(
                Invariant::Loyalty,
                id,
                format!(
                    "{} ledger entries ({}), at most 1 allowed: counted twice",
                    entries.len(),
                    entries
                        .iter()
                        .map(|e| format!("{} {} points", e.status.as_str(), e.points))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            );
        }
        let order = by_id.get(order_id);
        for entry in entries
            .iter()
            .filter(|e| e.status == LedgerStatus::Credited)
        {
            match order {
                Some(o) if o.status == OrderStatus::Confirmed => {
                    if entry.points != o.earned_points() {
                        report(
                            Invariant::Loyalty,
                            id,
                            format!(
                                "ledger credits {} points, the order earns {} (total {} cents)",
                                entry.points,
                                o.earned_points(),
                                o.total_cents
                            ),
                        );
                    }
                }
                Some(o) if o.status == OrderStatus::Cancelled => report(
                    Invariant::Loyalty,
                    id,
                    format!(
                        "ledger credits {} points for a cancelled order, expected 0",
                        entry.points
                    ),
                ),
                // Not yet confirmed: being applied (or reported as still accepted above).
                Some(_) => {}
                None => report(
                    Invariant::Loyalty,
                    id,
                    format!(
                        "ledger credits {} points for an order that is not among the account's \
                         {} orders",
                        entry.points,
                        orders.len()
                    ),
                ),
            }
        }
    }
    for order in &confirmed {
        let entries = ledger.get(order.id.as_str()).map_or(&[][..], Vec::as_slice);
        if !entries.iter().any(|e| e.status == LedgerStatus::Credited) {
            report(
                Invariant::Loyalty,
                Some(&order.id),
                format!(
                    "confirmed order earning {} points has no credited ledger entry ({})",
                    order.earned_points(),
                    describe(entries.iter().map(|e| e.status.as_str()))
                ),
            );
        }
    }

    // 3. Payment.
    let mut payments: BTreeMap<&str, Vec<_>> = BTreeMap::new();
    for payment in &snapshot.payments {
        payments
            .entry(payment.order_id.as_str())
            .or_default()
            .push(payment);
    }
    let mut captured_cents: i128 = 0;
    for (&order_id, listed) in &payments {
        let id = Some(order_id);
        if listed.len() > 1 {
            report(
                Invariant::Payment,
                id,
                format!(
                    "{} payments ({}), at most 1 allowed",
                    listed.len(),
                    listed
                        .iter()
                        .map(|p| format!("{} {} cents", p.status.as_str(), p.amount_cents))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            );
        }
        let order = by_id.get(order_id);
        for payment in listed {
            if payment.account_id != account {
                report(
                    Invariant::Payment,
                    id,
                    format!(
                        "payment listed under this account's wallet belongs to account {}",
                        payment.account_id
                    ),
                );
            }
            if payment.status != PaymentStatus::Captured {
                continue;
            }
            captured_cents += i128::from(payment.amount_cents);
            match order {
                Some(o) if o.status == OrderStatus::Confirmed => {
                    if payment.amount_cents != o.total_cents {
                        report(
                            Invariant::Payment,
                            id,
                            format!(
                                "captured {} cents, the order's total is {} cents",
                                payment.amount_cents, o.total_cents
                            ),
                        );
                    }
                }
                Some(o) if o.status == OrderStatus::Cancelled => report(
                    Invariant::Payment,
                    id,
                    format!(
                        "captured {} cents for a cancelled order, expected 0",
                        payment.amount_cents
                    ),
                ),
                // Not yet confirmed: being applied (or reported as still accepted above).
                Some(_) => {}
                None => report(
                    Invariant::Payment,
                    id,
                    format!(
                        "captured {} cents for an order that is not among the account's {} \
                         orders (aborted or unknown)",
                        payment.amount_cents,
                        orders.len()
                    ),
                ),
            }
        }
    }
    for order in &confirmed {
        let listed = payments
            .get(order.id.as_str())
            .map_or(&[][..], Vec::as_slice);
        if !listed.iter().any(|p| p.status == PaymentStatus::Captured) {
            report(
                Invariant::Payment,
                Some(&order.id),
                format!(
                    "confirmed order of {} cents has no captured payment ({})",
                    order.total_cents,
                    describe(listed.iter().map(|p| p.status.as_str()))
                ),
            );
        }
    }
    let wallet = snapshot.wallet;
    let expected_balance = i128::from(wallet.top_ups_cents) - captured_cents;
    if i128::from(wallet.balance_cents) != expected_balance {
        report(
            Invariant::Payment,
            None,
            format!(
                "balance is {} cents, expected {expected_balance} = top-ups {} − captured \
                 {captured_cents}{}",
                wallet.balance_cents,
                wallet.top_ups_cents,
                held(wallet.held_cents)
            ),
        );
    }
    if wallet.balance_cents < 0 {
        report(
            Invariant::Payment,
            None,
            format!(
                "balance is {} cents, below the minimum of 0{}",
                wallet.balance_cents,
                held(wallet.held_cents)
            ),
        );
    }

    out
}

fn held(cents: i64) -> String {
    if cents == 0 {
        String::new()
    } else {
        format!(" (held {cents})")
    }
}

/// "none found", or the statuses found, e.g. "found: declined".
fn describe<'a>(statuses: impl Iterator<Item = &'a str>) -> String {
    let found: Vec<&str> = statuses.collect();
    if found.is_empty() {
        "none found".to_owned()
    } else {
        format!("found: {}", found.join(", "))
    }
}

/// Whether the global `GET /stats` equals the sums over every account's confirmed orders.
pub fn audit_totals(
    reported: &Totals,
    confirmed_orders: i128,
    revenue_cents: i128,
    accounts: usize,
) -> Vec<Violation> {
    let mut out = Vec::new();
    if i128::from(reported.orders) != confirmed_orders {
        out.push(Violation::new(
            Invariant::Stats,
            None,
            None,
            format!(
                "/stats counts {} orders, {confirmed_orders} are confirmed across {accounts} \
                 accounts",
                reported.orders
            ),
        ));
    }
    if i128::from(reported.revenue_cents) != revenue_cents {
        out.push(Violation::new(
            Invariant::Stats,
            None,
            None,
            format!(
                "/stats counts {} cents of revenue, the confirmed orders of {accounts} accounts \
                 total {revenue_cents}",
                reported.revenue_cents
            ),
        ));
    }
    out
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
    expect_settled: bool,
) -> Vec<Violation> {
    let mut out = Vec::new();
    let mut report = |message: String| {
        out.push(Violation::new(
            Invariant::NoOrderLost,
            Some(account_id),
            Some(order_id),
            message,
        ));
    };
    let Some(order) = found else {
        report("acknowledged order is lost: GET /orders/{id} answers 404".to_owned());
        return out;
    };
    if order.account_id != account_id {
        report(format!(
            "acknowledged for account {account_id}, but the order belongs to account {}",
            order.account_id
        ));
    }
    let listed = match listing {
        Some(listing) if listing.order_ids.contains(order_id) => true,
        Some(listing) => {
            report(format!(
                "acknowledged order exists but is not among the account's {} listed orders",
                listing.order_ids.len()
            ));
            false
        }
        None => false,
    };
    if expect_settled && !listed && order.status == OrderStatus::Accepted {
        report(format!(
            "acknowledged order is still {}, expected confirmed or cancelled once the system \
             is quiet",
            order.status.as_str()
        ));
    }
    out
}

#[cfg(test)]
mod tests;
