//! Rule 3, Payment: each confirmed order captured once, of its total; the wallet adds up.

use super::*;

#[test]
fn a_captured_payment_for_a_cancelled_order_is_reported() {
    let mut s = consistent();
    payment_mut(&mut s, "ord_3").status = PaymentStatus::Captured;
    s.wallet.balance_cents -= 5000; // the wallet agrees; the capture itself is the violation
    let message = only_violation(&s, Invariant::Payment, Some("ord_3"));
    assert!(
        message.contains("captured 5000 cents for a cancelled order"),
        "{message}"
    );
}

#[test]
fn a_captured_payment_for_an_unknown_order_is_reported() {
    let mut s = consistent();
    s.payments
        .push(payment("ord_aborted", PaymentStatus::Captured, 500));
    s.wallet.balance_cents -= 500;
    let message = only_violation(&s, Invariant::Payment, Some("ord_aborted"));
    assert!(message.contains("aborted or unknown"), "{message}");
}

#[test]
fn a_declined_or_refunded_payment_for_an_unknown_order_moves_no_money() {
    let mut s = consistent();
    s.payments
        .push(payment("ord_x", PaymentStatus::Declined, 500));
    s.payments
        .push(payment("ord_y", PaymentStatus::Refunded, 500));
    assert_eq!(settled(audit_account(&s, None)), vec![]);
}

#[test]
fn two_payments_for_one_order_are_reported() {
    let mut s = consistent();
    s.payments
        .push(payment("ord_1", PaymentStatus::Declined, 1250));
    let message = only_violation(&s, Invariant::Payment, Some("ord_1"));
    assert!(message.starts_with("2 payments"), "{message}");
}

#[test]
fn two_captures_for_one_order_are_reported_and_counted_in_the_balance() {
    let mut s = consistent();
    s.payments
        .push(payment("ord_1", PaymentStatus::Captured, 1250));
    // The wallet shows a single capture: the second one is both a duplicate and a balance gap.
    let violations = settled(audit_account(&s, None));
    assert_eq!(
        found(&violations),
        vec![
            (Invariant::Payment, Some(ACC), Some("ord_1")),
            (Invariant::Payment, Some(ACC), None),
        ],
        "{violations:#?}"
    );
}

#[test]
fn a_confirmed_order_without_a_captured_payment_is_reported() {
    let mut s = consistent();
    payment_mut(&mut s, "ord_2").status = PaymentStatus::Declined;
    s.wallet.balance_cents += 999;
    let message = only_violation(&s, Invariant::Payment, Some("ord_2"));
    assert!(message.contains("found: declined"), "{message}");
}

#[test]
fn a_confirmed_order_with_no_payment_at_all_is_reported() {
    let mut s = consistent();
    s.payments.retain(|p| p.order_id != "ord_2");
    s.wallet.balance_cents += 999;
    let message = only_violation(&s, Invariant::Payment, Some("ord_2"));
    assert!(message.contains("none found"), "{message}");
}

#[test]
fn a_capture_of_the_wrong_amount_is_reported_with_both_amounts() {
    let mut s = consistent();
    payment_mut(&mut s, "ord_1").amount_cents = 1200;
    s.wallet.balance_cents += 50;
    let message = only_violation(&s, Invariant::Payment, Some("ord_1"));
    assert_eq!(
        message,
        "captured 1200 cents, the order's total is 1250 cents"
    );
}

#[test]
fn a_balance_that_does_not_add_up_is_reported_with_both_numbers() {
    let mut s = consistent();
    s.wallet.balance_cents += 1;
    let message = only_violation(&s, Invariant::Payment, None);
    assert!(
        message.starts_with("balance is 7752 cents, expected 7751"),
        "{message}"
    );
}

#[test]
fn a_refund_that_did_not_give_the_money_back_is_a_balance_mismatch() {
    let mut s = consistent();
    s.wallet.balance_cents -= 700;
    only_violation(&s, Invariant::Payment, None);
}

#[test]
fn a_negative_balance_is_reported_even_when_it_adds_up() {
    let mut s = consistent();
    s.wallet.top_ups_cents = 0;
    s.wallet.balance_cents = -(1250 + 999);
    let message = only_violation(&s, Invariant::Payment, None);
    assert!(message.contains("-2249"), "{message}");
    assert!(message.contains("below"), "{message}");
}

#[test]
fn a_payment_of_another_account_is_reported() {
    let mut s = consistent();
    payment_mut(&mut s, "ord_3").account_id = "acc_2".to_owned();
    let message = only_violation(&s, Invariant::Payment, Some("ord_3"));
    assert!(message.contains("acc_2"), "{message}");
}

// Holds: a prepared two-phase commit; leaked once the system is quiet

#[test]
fn a_hold_left_once_the_system_is_quiet_is_a_leaked_prepare() {
    let mut s = consistent();
    s.wallet.held_cents = 500;
    let message = only_violation(&s, Invariant::Payment, None);
    assert_eq!(
        message,
        "holds 500 cents for a two-phase commit not committed or aborted (a leaked prepare if \
         the system is quiet)"
    );
}

#[test]
fn a_hold_while_something_is_in_doubt_is_in_flight_even_when_settled_is_expected() {
    // `/progress` not quiet means a prepare is in doubt somewhere: the hold may be it.
    let mut s = consistent();
    s.wallet.held_cents = 500;
    for settled in [true, false] {
        let judged = judge(
            audit_account(&s, None),
            Moment {
                settled,
                quiet: false,
            },
        );
        assert_eq!(judged.violations, vec![], "settled={settled}");
        assert_eq!(judged.in_flight.len(), 1);
        assert_eq!(judged.in_flight[0].order_id, None);
    }
}

#[test]
fn a_negative_hold_is_reported_at_any_moment() {
    let mut s = consistent();
    s.wallet.held_cents = -100;
    let judged = busy(audit_account(&s, None));
    assert_eq!(
        found(&judged.violations),
        vec![(Invariant::Payment, Some(ACC), None)]
    );
    assert!(judged.violations[0].message.contains("twice"));
}

#[test]
fn a_hold_above_the_balance_is_reported_at_any_moment() {
    let mut s = consistent();
    s.wallet.held_cents = s.wallet.balance_cents + 1;
    let judged = busy(audit_account(&s, None));
    assert_eq!(
        found(&judged.violations),
        vec![(Invariant::Payment, Some(ACC), None)]
    );
    assert_eq!(
        judged.violations[0].message,
        "holds 7752 cents, more than the balance of 7751: a hold the wallet cannot cover"
    );
    // A hold the balance covers is only in flight.
    s.wallet.held_cents = s.wallet.balance_cents;
    assert_eq!(busy(audit_account(&s, None)).violations, vec![]);
}

// Top-ups: the wallet's are the ones acknowledged to the caller

#[test]
fn top_ups_equal_to_the_acknowledged_ones_are_clean() {
    let s = consistent();
    assert_eq!(settled(audit_account(&s, Some(10_000))), vec![]);
}

#[test]
fn top_ups_are_unchecked_unless_the_caller_names_them() {
    let mut s = consistent();
    s.wallet.top_ups_cents += 1;
    s.wallet.balance_cents += 1;
    assert_eq!(settled(audit_account(&s, None)), vec![]);
    only_violation_with(&s, Some(10_000), Invariant::Payment, None);
}

#[test]
fn an_acknowledged_top_up_missing_is_reported_at_any_moment() {
    let s = consistent();
    let judged = busy(audit_account(&s, Some(10_500)));
    assert_eq!(
        found(&judged.violations),
        vec![(Invariant::Payment, Some(ACC), None)]
    );
    assert_eq!(
        judged.violations[0].message,
        "top-ups are 10000 cents, the top-ups acknowledged to the caller add up to 10500"
    );
}

#[test]
fn a_top_up_never_acknowledged_is_a_violation_once_settled_and_in_flight_before() {
    // Still on its way back to the caller, or money from nowhere: only quiet tells.
    let s = consistent();
    let message = only_violation_with(&s, Some(9_000), Invariant::Payment, None);
    assert!(message.starts_with("top-ups are 10000 cents"), "{message}");
    let judged = busy(audit_account(&s, Some(9_000)));
    assert_eq!(judged.violations, vec![]);
    assert_eq!(judged.in_flight.len(), 1);
}

#[test]
fn an_account_never_topped_up_has_no_top_ups() {
    let s = AccountSnapshot {
        account_id: ACC.to_owned(),
        ..AccountSnapshot::default()
    };
    assert_eq!(settled(audit_account(&s, Some(0))), vec![]);
    only_violation_with(&s, Some(100), Invariant::Payment, None);
}
