//! The rules of one order: the order itself, then what Stats, Loyalty and Payment hold for it.
//! Each compares the status Order gave the order with another service's record of it: a
//! confirmed order is counted once at Stats, credited once at Loyalty and captured once at
//! Payment, each with its own total; a cancelled order is in none of them.
//!
//! The split between [`Sink::broken`] and [`Sink::lagging`] is the heart of "in flight is not
//! a violation": a service that has not *yet* applied what Order decided lags; a service that
//! applied the *opposite* of what Order decided (a confirmed order reversed, declined) is
//! broken, because no amount of waiting undoes that.

use super::index::AccountIndex;
use super::sink::Sink;
use crate::Invariant;
use crate::model::{
    FactStatus, LedgerEntry, LedgerStatus, Order, OrderStatus, Payment, PaymentStatus, StatsFact,
};

/// Every rule of one listed order, listed `times` times.
pub(super) fn audit_order(
    sink: &mut Sink<'_>,
    index: &AccountIndex<'_>,
    order: &Order,
    times: usize,
) {
    order_itself(sink, index.account, order, times);
    stats_of(
        sink,
        index.account,
        order,
        index.facts.get(order.id.as_str()).copied(),
    );
    loyalty_of(sink, order, index.ledger_of(&order.id));
    payment_of(sink, index.account, order, index.payments_of(&order.id));
}

/// What Loyalty and Payment hold for orders the account does not list.
pub(super) fn audit_unlisted(sink: &mut Sink<'_>, index: &AccountIndex<'_>) {
    let listed = index.orders.len();
    for (&order_id, entries) in &index.ledger {
        if index.by_id.contains_key(order_id) {
            continue;
        }
        ledger_duplicates(sink, order_id, entries);
        for entry in entries
            .iter()
            .filter(|e| e.status == LedgerStatus::Credited)
        {
            sink.broken(
                Invariant::Loyalty,
                Some(order_id),
                format!(
                    "ledger credits {} points for an order that is not among the account's \
                     {listed} orders",
                    entry.points
                ),
            );
        }
    }
    for (&order_id, payments) in &index.payments {
        if index.by_id.contains_key(order_id) {
            continue;
        }
        payment_duplicates(sink, order_id, payments);
        for payment in payments.iter() {
            payment_account(sink, index.account, payment);
            if payment.status == PaymentStatus::Captured {
                sink.broken(
                    Invariant::Payment,
                    Some(order_id),
                    format!(
                        "captured {} cents for an order that is not among the account's \
                         {listed} orders (aborted or unknown)",
                        payment.amount_cents
                    ),
                );
            }
        }
    }
}

/// The order as Order lists it: once, under its own account, settled, with its points right.
fn order_itself(sink: &mut Sink<'_>, account: &str, order: &Order, times: usize) {
    let id = Some(order.id.as_str());
    if times > 1 {
        sink.broken(
            Invariant::NoOrderLost,
            id,
            format!("listed {times} times among the account's orders, expected once"),
        );
    }
    if order.account_id != account {
        sink.broken(
            Invariant::NoOrderLost,
            id,
            format!(
                "listed among this account's orders but belongs to account {}",
                order.account_id
            ),
        );
    }
    if order.status == OrderStatus::Accepted {
        sink.lagging(
            Invariant::NoOrderLost,
            id,
            "still accepted, not yet confirmed or cancelled".to_owned(),
        );
    }
    if order.points != order.earned_points() {
        sink.broken(
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

/// A confirmed order is `counted` at Stats, under its account, with its total; a cancelled one
/// is absent or `reversed`.
fn stats_of(sink: &mut Sink<'_>, account: &str, order: &Order, fact: Option<&StatsFact>) {
    let id = Some(order.id.as_str());
    let Some(fact) = fact else {
        if order.status == OrderStatus::Confirmed {
            sink.lagging(
                Invariant::Stats,
                id,
                format!(
                    "confirmed order of {} cents is not counted at Stats (no fact)",
                    order.total_cents
                ),
            );
        }
        return;
    };
    if fact.account_id != account {
        sink.broken(
            Invariant::Stats,
            id,
            format!("Stats holds the order under account {}", fact.account_id),
        );
    }
    let counted = fact.status == FactStatus::Counted;
    if counted && fact.total_cents != order.total_cents {
        sink.broken(
            Invariant::Stats,
            id,
            format!(
                "Stats counts {} cents, the order's total is {} cents",
                fact.total_cents, order.total_cents
            ),
        );
    }
    match (order.status, fact.status) {
        (OrderStatus::Confirmed, FactStatus::Reversed) => sink.broken(
            Invariant::Stats,
            id,
            format!(
                "confirmed order of {} cents is reversed at Stats, expected counted",
                order.total_cents
            ),
        ),
        (OrderStatus::Cancelled, FactStatus::Counted) => sink.lagging(
            Invariant::Stats,
            id,
            format!(
                "cancelled order is still counted at Stats ({} cents), expected reversed or \
                 absent",
                fact.total_cents
            ),
        ),
        // Confirmed and counted, cancelled and reversed: as it should be. Accepted: not
        // decided yet, whatever Stats holds may still be reversed.
        _ => {}
    }
}

/// A confirmed order has one `credited` entry of its points; a cancelled one none.
fn loyalty_of(sink: &mut Sink<'_>, order: &Order, entries: &[&LedgerEntry]) {
    let id = Some(order.id.as_str());
    ledger_duplicates(sink, &order.id, entries);
    let credited = entries
        .iter()
        .filter(|e| e.status == LedgerStatus::Credited);
    match order.status {
        OrderStatus::Confirmed => {
            for entry in credited
                .clone()
                .filter(|e| e.points != order.earned_points())
            {
                sink.broken(
                    Invariant::Loyalty,
                    id,
                    format!(
                        "ledger credits {} points, the order earns {} (total {} cents)",
                        entry.points,
                        order.earned_points(),
                        order.total_cents
                    ),
                );
            }
            if credited.count() == 0 {
                let message = format!(
                    "confirmed order earning {} points has no credited ledger entry ({})",
                    order.earned_points(),
                    describe(entries.iter().map(|e| e.status.as_str()))
                );
                // Nothing yet is a lag; a reversed entry is the opposite of what Order decided.
                if entries.is_empty() {
                    sink.lagging(Invariant::Loyalty, id, message);
                } else {
                    sink.broken(Invariant::Loyalty, id, message);
                }
            }
        }
        OrderStatus::Cancelled => {
            for entry in credited {
                sink.lagging(
                    Invariant::Loyalty,
                    id,
                    format!(
                        "ledger credits {} points for a cancelled order, expected 0",
                        entry.points
                    ),
                );
            }
        }
        // Not decided yet: whatever Loyalty holds may still be taken back.
        OrderStatus::Accepted => {}
    }
}

/// A confirmed order has one `captured` payment of its total; a cancelled one none.
fn payment_of(sink: &mut Sink<'_>, account: &str, order: &Order, payments: &[&Payment]) {
    let id = Some(order.id.as_str());
    payment_duplicates(sink, &order.id, payments);
    for payment in payments {
        payment_account(sink, account, payment);
    }
    let captured = payments
        .iter()
        .filter(|p| p.status == PaymentStatus::Captured);
    match order.status {
        OrderStatus::Confirmed => {
            for payment in captured
                .clone()
                .filter(|p| p.amount_cents != order.total_cents)
            {
                sink.broken(
                    Invariant::Payment,
                    id,
                    format!(
                        "captured {} cents, the order's total is {} cents",
                        payment.amount_cents, order.total_cents
                    ),
                );
            }
            if captured.count() == 0 {
                let message = format!(
                    "confirmed order of {} cents has no captured payment ({})",
                    order.total_cents,
                    describe(payments.iter().map(|p| p.status.as_str()))
                );
                // Nothing yet is a lag; a declined or refunded payment contradicts Order.
                if payments.is_empty() {
                    sink.lagging(Invariant::Payment, id, message);
                } else {
                    sink.broken(Invariant::Payment, id, message);
                }
            }
        }
        OrderStatus::Cancelled => {
            for payment in captured {
                sink.lagging(
                    Invariant::Payment,
                    id,
                    format!(
                        "captured {} cents for a cancelled order, expected 0",
                        payment.amount_cents
                    ),
                );
            }
        }
        // Not decided yet: a capture is what comes before a confirmation.
        OrderStatus::Accepted => {}
    }
}

/// "One ledger entry per order, never two", whatever their statuses.
fn ledger_duplicates(sink: &mut Sink<'_>, order_id: &str, entries: &[&LedgerEntry]) {
    if entries.len() > 1 {
        sink.broken(
            Invariant::Loyalty,
            Some(order_id),
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
}

/// At most one payment per order, whatever their statuses.
fn payment_duplicates(sink: &mut Sink<'_>, order_id: &str, payments: &[&Payment]) {
    if payments.len() > 1 {
        sink.broken(
            Invariant::Payment,
            Some(order_id),
            format!(
                "{} payments ({}), at most 1 allowed",
                payments.len(),
                payments
                    .iter()
                    .map(|p| format!("{} {} cents", p.status.as_str(), p.amount_cents))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        );
    }
}

/// A payment listed under this account's wallet is this account's.
fn payment_account(sink: &mut Sink<'_>, account: &str, payment: &Payment) {
    if payment.account_id != account {
        sink.broken(
            Invariant::Payment,
            Some(&payment.order_id),
            format!(
                "payment listed under this account's wallet belongs to account {}",
                payment.account_id
            ),
        );
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
