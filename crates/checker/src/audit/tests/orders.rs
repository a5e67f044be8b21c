//! Rule 4, no order lost: each order listed once, under its account, and settled.

use super::*;

#[test]
fn an_accepted_order_is_reported_only_when_settled_is_expected() {
    let mut s = consistent();
    s.orders.push(order("ord_6", OrderStatus::Accepted, 400));
    only_violation(&s, Invariant::NoOrderLost, Some("ord_6"));
    assert_eq!(busy(audit_account(&s, None)).violations, vec![]);
}

#[test]
fn an_accepted_order_already_applied_downstream_is_only_the_accepted_order() {
    // Counted, credited and captured, the verdict not yet back at Order: one thing pending.
    let mut s = consistent();
    s.orders.push(order("ord_6", OrderStatus::Accepted, 400));
    s.stats_facts.push(fact("ord_6", FactStatus::Counted, 400));
    s.stats.orders += 1;
    s.stats.revenue_cents += 400;
    s.payments
        .push(payment("ord_6", PaymentStatus::Captured, 400));
    s.wallet.balance_cents -= 400;
    s.ledger.push(entry("ord_6", LedgerStatus::Credited, 4));
    s.points += 4;
    let judged = busy(audit_account(&s, None));
    assert_eq!(judged.violations, vec![]);
    assert_eq!(
        judged.in_flight,
        vec![in_flight(
            ACC,
            Some("ord_6"),
            &["still accepted, not yet confirmed or cancelled"]
        )]
    );
}

#[test]
fn an_order_listed_twice_is_reported_and_counted_once() {
    let mut s = consistent();
    s.orders.push(order("ord_1", OrderStatus::Confirmed, 1250));
    let message = only_violation(&s, Invariant::NoOrderLost, Some("ord_1"));
    // ...and only that: its fact, entry and payment are not counted twice in the sums.
    assert!(message.contains("listed 2 times"), "{message}");
}

#[test]
fn an_order_of_another_account_in_the_listing_is_reported() {
    let mut s = consistent();
    s.orders[4].account_id = "acc_2".to_owned();
    let message = only_violation(&s, Invariant::NoOrderLost, Some("ord_5"));
    assert!(message.contains("acc_2"), "{message}");
}

#[test]
fn violations_name_the_account_they_concern() {
    let mut s = consistent();
    s.account_id = "acc_other".to_owned();
    for o in &mut s.orders {
        o.account_id = "acc_other".to_owned();
    }
    for p in &mut s.payments {
        p.account_id = "acc_other".to_owned();
    }
    for f in &mut s.stats_facts {
        f.account_id = "acc_other".to_owned();
    }
    s.points += 1;
    let violations = settled(audit_account(&s, None));
    assert_eq!(
        found(&violations),
        vec![(Invariant::Loyalty, Some("acc_other"), None)]
    );
}
