//! Rule 1, Stats: each confirmed order counted once, with its total, each cancelled one in
//! neither; the account's totals equal those per-order facts.

use super::*;

/// `consistent()` with a confirmed ord_6 of 100 cents that every service but Stats applied.
fn confirmed_order_stats_missed() -> AccountSnapshot {
    let mut s = consistent();
    s.orders.push(order("ord_6", OrderStatus::Confirmed, 100));
    s.points += 1;
    s.ledger.push(entry("ord_6", LedgerStatus::Credited, 1));
    s.payments
        .push(payment("ord_6", PaymentStatus::Captured, 100));
    s.wallet.balance_cents -= 100;
    s
}

// Per order

#[test]
fn a_confirmed_order_stats_has_no_fact_for_is_reported_by_order() {
    let s = confirmed_order_stats_missed();
    let message = only_violation(&s, Invariant::Stats, Some("ord_6"));
    assert_eq!(
        message,
        "confirmed order of 100 cents is not counted at Stats (no fact)"
    );
}

#[test]
fn a_confirmed_order_stats_reversed_is_reported() {
    let mut s = consistent();
    fact_mut(&mut s, "ord_2").status = FactStatus::Reversed;
    s.stats.orders -= 1;
    s.stats.revenue_cents -= 999;
    let message = only_violation(&s, Invariant::Stats, Some("ord_2"));
    assert!(message.contains("reversed at Stats"), "{message}");
}

#[test]
fn a_cancelled_order_still_counted_is_reported_by_order() {
    // The saga's compensation never reached Stats: its fact and its totals both count ord_3.
    let mut s = consistent();
    fact_mut(&mut s, "ord_3").status = FactStatus::Counted;
    s.stats.orders += 1;
    s.stats.revenue_cents += 5000;
    let message = only_violation(&s, Invariant::Stats, Some("ord_3"));
    assert_eq!(
        message,
        "cancelled order is still counted at Stats (5000 cents), expected reversed or absent"
    );
}

#[test]
fn a_cancelled_order_stats_never_heard_of_is_consistent() {
    let mut s = consistent();
    s.stats_facts.retain(|f| f.order_id != "ord_3");
    assert_eq!(settled(audit_account(&s, None)), vec![]);
}

#[test]
fn an_order_counted_with_the_wrong_total_is_reported_with_both_totals() {
    let mut s = consistent();
    fact_mut(&mut s, "ord_1").total_cents = 1205;
    s.stats.revenue_cents -= 45;
    let message = only_violation(&s, Invariant::Stats, Some("ord_1"));
    assert_eq!(
        message,
        "Stats counts 1205 cents, the order's total is 1250 cents"
    );
}

#[test]
fn an_order_counted_under_another_account_is_reported() {
    // Stats put ord_1 in acc_2's totals: this account's totals miss it, the fact says why.
    let mut s = consistent();
    fact_mut(&mut s, "ord_1").account_id = "acc_2".to_owned();
    s.stats.orders -= 1;
    s.stats.revenue_cents -= 1250;
    let message = only_violation(&s, Invariant::Stats, Some("ord_1"));
    assert!(message.contains("account acc_2"), "{message}");
}

#[test]
fn an_accepted_order_counted_at_placement_is_only_the_accepted_violation() {
    // Queue mode counts an order as it is placed; until the verdict that is no Stats problem.
    let mut s = consistent();
    s.orders.push(order("ord_6", OrderStatus::Accepted, 400));
    s.stats_facts.push(fact("ord_6", FactStatus::Counted, 400));
    s.stats.orders += 1;
    s.stats.revenue_cents += 400;
    only_violation(&s, Invariant::NoOrderLost, Some("ord_6"));
}

// The account's totals against the facts

#[test]
fn stats_counting_one_order_too_many_is_reported_with_every_count() {
    let mut s = consistent();
    s.stats.orders = 3;
    let message = only_violation(&s, Invariant::Stats, None);
    assert_eq!(
        message,
        "counts 3 orders, 2 of its orders are counted (2 are confirmed)"
    );
}

#[test]
fn stats_totals_behind_their_own_facts_are_reported() {
    // The fact says counted, the totals never moved: one order half applied.
    let mut s = confirmed_order_stats_missed();
    s.stats_facts.push(fact("ord_6", FactStatus::Counted, 100));
    let violations = settled(audit_account(&s, None));
    assert_eq!(
        found(&violations),
        vec![(Invariant::Stats, Some(ACC), None); 2],
        "{violations:#?}"
    );
    assert_eq!(
        violations[0].message,
        "counts 2 orders, 3 of its orders are counted (3 are confirmed)"
    );
    assert_eq!(
        violations[1].message,
        "counts 2249 cents of revenue, its counted orders total 2349 (the confirmed ones 2349)"
    );
}

#[test]
fn stats_revenue_off_is_reported_with_both_sums() {
    let mut s = consistent();
    s.stats.revenue_cents += 1;
    let message = only_violation(&s, Invariant::Stats, None);
    assert!(message.contains("2250"), "{message}");
    assert!(message.contains("2249"), "{message}");
}

#[test]
fn stats_totals_counting_an_order_it_holds_no_fact_for_are_reported() {
    // Counted twice into the totals, or an order that is not listed: the facts do not add up.
    let mut s = consistent();
    s.stats.orders += 1;
    s.stats.revenue_cents += 5000;
    let violations = settled(audit_account(&s, None));
    assert_eq!(
        found(&violations),
        vec![(Invariant::Stats, Some(ACC), None); 2]
    );
}
