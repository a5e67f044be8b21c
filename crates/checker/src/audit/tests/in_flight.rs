//! Still in flight: what a lag explains is a violation once settled, an entry in flight before.

use super::*;

#[test]
fn while_busy_an_accepted_order_is_in_flight_not_a_violation() {
    let mut s = consistent();
    s.orders.push(order("ord_6", OrderStatus::Accepted, 400));
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
fn while_busy_a_confirmed_order_nobody_applied_yet_is_one_entry_naming_each_service() {
    let mut s = consistent();
    s.orders.push(order("ord_6", OrderStatus::Confirmed, 100));
    let judged = busy(audit_account(&s, None));
    assert_eq!(judged.violations, vec![]);
    assert_eq!(
        judged.in_flight,
        vec![in_flight(
            ACC,
            Some("ord_6"),
            &[
                "confirmed order of 100 cents is not counted at Stats (no fact)",
                "confirmed order earning 1 points has no credited ledger entry (none found)",
                "confirmed order of 100 cents has no captured payment (none found)",
            ]
        )]
    );
    // Once settled, the same differences are violations, and nothing is in flight.
    let judged = judge(audit_account(&s, None), moment(true));
    assert_eq!(
        found(&judged.violations),
        vec![
            (Invariant::Stats, Some(ACC), Some("ord_6")),
            (Invariant::Loyalty, Some(ACC), Some("ord_6")),
            (Invariant::Payment, Some(ACC), Some("ord_6")),
        ]
    );
    assert_eq!(judged.in_flight, vec![]);
}

#[test]
fn while_busy_a_cancelled_order_not_yet_compensated_is_in_flight() {
    // ord_4 was counted, credited and captured before it was cancelled; nothing is undone yet.
    let mut s = consistent();
    fact_mut(&mut s, "ord_4").status = FactStatus::Counted;
    s.stats.orders += 1;
    s.stats.revenue_cents += 700;
    credited_mut(&mut s, "ord_4").status = LedgerStatus::Credited;
    s.points += 7;
    payment_mut(&mut s, "ord_4").status = PaymentStatus::Captured;
    s.wallet.balance_cents -= 700;
    let judged = busy(audit_account(&s, None));
    assert_eq!(judged.violations, vec![]);
    assert_eq!(
        judged.in_flight,
        vec![in_flight(
            ACC,
            Some("ord_4"),
            &[
                "cancelled order is still counted at Stats (700 cents), expected reversed or \
                 absent",
                "ledger credits 7 points for a cancelled order, expected 0",
                "captured 700 cents for a cancelled order, expected 0",
            ]
        )]
    );
}

#[test]
fn while_busy_sums_read_at_another_instant_than_their_records_are_in_flight() {
    // The totals were read before an order was counted, its fact after.
    let mut s = consistent();
    s.stats.orders -= 1;
    s.stats.revenue_cents -= 999;
    s.points -= 9;
    s.wallet.balance_cents += 999;
    let judged = busy(audit_account(&s, None));
    assert_eq!(judged.violations, vec![]);
    assert_eq!(
        judged.in_flight,
        vec![in_flight(
            ACC,
            None,
            &[
                "counts 1 orders, 2 of its orders are counted (2 are confirmed)",
                "counts 1250 cents of revenue, its counted orders total 2249 (the confirmed \
                 ones 2249)",
                "has 12 points, its ledger credits 21 (the confirmed orders earn 21)",
                "balance is 8750 cents, expected 7751 = top-ups 10000 − captured 2249",
            ]
        )]
    );
}

#[test]
fn a_confirmed_order_whose_ledger_entry_is_reversed_is_a_violation_even_while_busy() {
    // No lag turns a reversed entry back into a credit: the opposite of what Order decided.
    let mut s = consistent();
    credited_mut(&mut s, "ord_2").status = LedgerStatus::Reversed;
    s.points -= 9;
    let judged = busy(audit_account(&s, None));
    assert_eq!(
        found(&judged.violations),
        vec![(Invariant::Loyalty, Some(ACC), Some("ord_2"))]
    );
}

#[test]
fn a_confirmed_order_whose_payment_was_declined_is_a_violation_even_while_busy() {
    let mut s = consistent();
    payment_mut(&mut s, "ord_2").status = PaymentStatus::Declined;
    s.wallet.balance_cents += 999;
    let judged = busy(audit_account(&s, None));
    assert_eq!(
        found(&judged.violations),
        vec![(Invariant::Payment, Some(ACC), Some("ord_2"))]
    );
    assert_eq!(judged.in_flight, vec![]);
}

#[test]
fn what_no_lag_explains_is_a_violation_even_while_busy() {
    let mut s = consistent();
    s.ledger.push(entry("ord_1", LedgerStatus::Credited, 12));
    s.points += 12;
    s.wallet.balance_cents = -1;
    s.wallet.top_ups_cents = 1250 + 999 - 1;
    let judged = busy(audit_account(&s, None));
    assert_eq!(
        found(&judged.violations),
        vec![
            (Invariant::Loyalty, Some(ACC), Some("ord_1")),
            (Invariant::Payment, Some(ACC), None),
        ],
        "{:#?}",
        judged.violations
    );
}

#[test]
fn judge_decides_by_standing_and_moment() {
    let finding = |standing| {
        Finding::new(
            standing,
            Invariant::Payment,
            Some(ACC),
            None,
            "x".to_owned(),
        )
    };
    // (standing, settled, quiet) → is it a violation?
    let table = [
        (Standing::Broken, false, false, true),
        (Standing::Broken, true, true, true),
        (Standing::Lagging, false, false, false),
        (Standing::Lagging, true, false, true),
        (Standing::Lagging, true, true, true),
        (Standing::InDoubt, false, false, false),
        (Standing::InDoubt, true, false, false),
        (Standing::InDoubt, true, true, true),
    ];
    for (standing, settled, quiet, violation) in table {
        let judged = judge([finding(standing)], Moment { settled, quiet });
        assert_eq!(
            (judged.violations.len(), judged.in_flight.len()),
            if violation { (1, 0) } else { (0, 1) },
            "{standing:?} settled={settled} quiet={quiet}"
        );
    }
}

#[test]
fn judge_gives_one_in_flight_entry_per_order_in_the_order_first_found() {
    let lag = |order: &str, message: &str| {
        Finding::new(
            Standing::Lagging,
            Invariant::Stats,
            Some(ACC),
            Some(order),
            message.to_owned(),
        )
    };
    let judged = busy(vec![lag("b", "1"), lag("a", "2"), lag("b", "3")]);
    assert_eq!(
        judged.in_flight,
        vec![
            in_flight(ACC, Some("b"), &["1", "3"]),
            in_flight(ACC, Some("a"), &["2"]),
        ]
    );
}
