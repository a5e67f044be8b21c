//! The rules on hand-built snapshots whose answer is known: [`consistent`] is an account where
//! everything adds up, and each test breaks it in one way and checks that exactly that is
//! reported, naming the invariant, the account and the order.

use super::*;
use crate::model::{
    FactStatus, LedgerEntry, LedgerStatus, Payment, PaymentStatus, StatsFact, Wallet,
};
use crate::{InFlight, Report, Violation};

mod acknowledged;
mod display;
mod global;
mod in_flight;
mod loyalty;
mod orders;
mod payment;
mod stats;

const ACC: &str = "acc_1";

fn order(id: &str, status: OrderStatus, total_cents: i64) -> Order {
    Order {
        id: id.to_owned(),
        account_id: ACC.to_owned(),
        status,
        total_cents,
        points: total_cents / 100,
    }
}

fn fact(order_id: &str, status: FactStatus, total_cents: i64) -> StatsFact {
    StatsFact {
        order_id: order_id.to_owned(),
        account_id: ACC.to_owned(),
        total_cents,
        status,
    }
}

fn entry(order_id: &str, status: LedgerStatus, points: i64) -> LedgerEntry {
    LedgerEntry {
        order_id: order_id.to_owned(),
        points,
        status,
    }
}

fn payment(order_id: &str, status: PaymentStatus, amount_cents: i64) -> Payment {
    Payment {
        order_id: order_id.to_owned(),
        account_id: ACC.to_owned(),
        amount_cents,
        status,
    }
}

/// An account where everything adds up, with every kind of order: two confirmed, one cancelled
/// on a declined payment (counted and credited at placement, then reversed), one cancelled
/// after a capture (refunded, reversed), and one cancelled before anything was applied.
fn consistent() -> AccountSnapshot {
    use FactStatus::Counted;
    use LedgerStatus::Credited;
    use OrderStatus::*;
    use PaymentStatus::*;
    AccountSnapshot {
        account_id: ACC.to_owned(),
        orders: vec![
            order("ord_1", Confirmed, 1250),
            order("ord_2", Confirmed, 999),
            order("ord_3", Cancelled, 5000),
            order("ord_4", Cancelled, 700),
            order("ord_5", Cancelled, 300),
        ],
        stats: Totals {
            orders: 2,
            revenue_cents: 1250 + 999,
        },
        stats_facts: vec![
            fact("ord_1", Counted, 1250),
            fact("ord_2", Counted, 999),
            fact("ord_3", FactStatus::Reversed, 5000),
            fact("ord_4", FactStatus::Reversed, 700),
        ],
        points: 12 + 9,
        ledger: vec![
            entry("ord_1", Credited, 12),
            entry("ord_2", Credited, 9),
            entry("ord_3", LedgerStatus::Reversed, 50),
            entry("ord_4", LedgerStatus::Reversed, 7),
        ],
        wallet: Wallet {
            balance_cents: 10_000 - 1250 - 999,
            held_cents: 0,
            top_ups_cents: 10_000,
        },
        payments: vec![
            payment("ord_1", Captured, 1250),
            payment("ord_2", Captured, 999),
            payment("ord_3", Declined, 5000),
            payment("ord_4", Refunded, 700),
        ],
    }
}

/// The moment of a check: settled and quiet, or busy (neither).
fn moment(settled: bool) -> Moment {
    Moment {
        settled,
        quiet: settled,
    }
}

/// The violations of `findings` judged once the system is settled and quiet.
fn settled(findings: Vec<Finding>) -> Vec<Violation> {
    judge(findings, moment(true)).violations
}

/// `findings` judged while the system is busy: not settled, not quiet.
fn busy(findings: Vec<Finding>) -> Judged {
    judge(findings, moment(false))
}

/// (invariant, account, order) of each violation, in the order reported.
fn found(violations: &[Violation]) -> Vec<(Invariant, Option<&str>, Option<&str>)> {
    violations
        .iter()
        .map(|v| (v.invariant, v.account_id.as_deref(), v.order_id.as_deref()))
        .collect()
}

/// Audits `snapshot` (settled expected) and asserts exactly one violation, of `invariant`, about
/// `order` in account ACC; returns its message.
fn only_violation(snapshot: &AccountSnapshot, invariant: Invariant, order: Option<&str>) -> String {
    only_violation_with(snapshot, None, invariant, order)
}

/// [`only_violation`] with the caller's top-ups for ACC.
fn only_violation_with(
    snapshot: &AccountSnapshot,
    top_ups_cents: Option<i128>,
    invariant: Invariant,
    order: Option<&str>,
) -> String {
    let violations = settled(audit_account(snapshot, top_ups_cents));
    assert_eq!(
        found(&violations),
        vec![(invariant, Some(ACC), order)],
        "violations: {violations:#?}"
    );
    violations[0].message.clone()
}

/// An entry still in flight.
fn in_flight(account: &str, order: Option<&str>, pending: &[&str]) -> InFlight {
    InFlight {
        account_id: Some(account.to_owned()),
        order_id: order.map(str::to_owned),
        pending: pending.iter().map(|p| (*p).to_owned()).collect(),
    }
}

fn fact_mut<'a>(s: &'a mut AccountSnapshot, order_id: &str) -> &'a mut StatsFact {
    s.stats_facts
        .iter_mut()
        .find(|f| f.order_id == order_id)
        .unwrap()
}

fn credited_mut<'a>(s: &'a mut AccountSnapshot, order_id: &str) -> &'a mut LedgerEntry {
    s.ledger
        .iter_mut()
        .find(|e| e.order_id == order_id)
        .unwrap()
}

fn payment_mut<'a>(s: &'a mut AccountSnapshot, order_id: &str) -> &'a mut Payment {
    s.payments
        .iter_mut()
        .find(|p| p.order_id == order_id)
        .unwrap()
}

#[test]
fn a_consistent_account_has_no_violation_and_nothing_in_flight() {
    let snapshot = consistent();
    assert_eq!(
        judge(audit_account(&snapshot, None), moment(true)),
        Judged::default()
    );
    assert_eq!(busy(audit_account(&snapshot, None)), Judged::default());
}

#[test]
fn an_empty_account_is_consistent() {
    let snapshot = AccountSnapshot {
        account_id: ACC.to_owned(),
        ..AccountSnapshot::default()
    };
    assert_eq!(busy(audit_account(&snapshot, None)), Judged::default());
    assert_eq!(settled(audit_account(&snapshot, None)), vec![]);
}
