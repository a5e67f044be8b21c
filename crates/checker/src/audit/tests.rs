use super::*;
use crate::model::{LedgerEntry, LedgerStatus, Payment, PaymentStatus, Wallet};
use crate::{InFlight, Report, Violation};

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
/// on a declined payment (points reversed), one cancelled after a capture (refunded, points
/// reversed), and one cancelled before anything was applied.
fn consistent() -> AccountSnapshot {
    use LedgerStatus::*;
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
        points: 12 + 9,
        ledger: vec![
            entry("ord_1", Credited, 12),
            entry("ord_2", Credited, 9),
            entry("ord_3", Reversed, 50),
            entry("ord_4", Reversed, 7),
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
    let violations = settled(audit_account(snapshot));
    assert_eq!(
        found(&violations),
        vec![(invariant, Some(ACC), order)],
        "violations: {violations:#?}"
    );
    violations[0].message.clone()
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
fn a_consistent_account_has_no_violation() {
    let snapshot = consistent();
    assert_eq!(settled(audit_account(&snapshot)), vec![]);
    assert_eq!(busy(audit_account(&snapshot)).violations, vec![]);
    assert_eq!(confirmed_totals(&snapshot), (2, 1250 + 999));
}

#[test]
fn an_empty_account_is_consistent() {
    let snapshot = AccountSnapshot {
        account_id: ACC.to_owned(),
        ..AccountSnapshot::default()
    };
    assert_eq!(settled(audit_account(&snapshot)), vec![]);
    assert_eq!(confirmed_totals(&snapshot), (0, 0));
}

// 1. Stats

#[test]
fn stats_counting_one_order_too_many_is_reported_with_both_counts() {
    let mut s = consistent();
    s.stats.orders = 3;
    let message = only_violation(&s, Invariant::Stats, None);
    assert_eq!(message, "counts 3 orders, 2 are confirmed");
}

#[test]
fn stats_missing_a_confirmed_order_is_reported() {
    let mut s = consistent();
    s.orders.push(order("ord_6", OrderStatus::Confirmed, 100));
    s.points += 1;
    s.ledger.push(entry("ord_6", LedgerStatus::Credited, 1));
    s.payments
        .push(payment("ord_6", PaymentStatus::Captured, 100));
    s.wallet.balance_cents -= 100;
    // Stats still says 2 orders and the old revenue: two violations, count and revenue.
    let violations = settled(audit_account(&s));
    assert_eq!(
        found(&violations),
        vec![(Invariant::Stats, Some(ACC), None); 2],
        "{violations:#?}"
    );
    assert!(violations[1].message.contains(&format!("{}", 1250 + 999)));
    assert!(
        violations[1]
            .message
            .contains(&format!("{}", 1250 + 999 + 100))
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
fn stats_counting_a_cancelled_order_is_reported() {
    let mut s = consistent();
    s.stats.orders += 1;
    s.stats.revenue_cents += 5000;
    let violations = settled(audit_account(&s));
    assert_eq!(
        found(&violations),
        vec![(Invariant::Stats, Some(ACC), None); 2]
    );
}

// 2. Loyalty

#[test]
fn a_ledger_entry_twice_is_reported_as_counted_twice() {
    let mut s = consistent();
    s.ledger.push(entry("ord_1", LedgerStatus::Credited, 12));
    let message = only_violation(&s, Invariant::Loyalty, Some("ord_1"));
    assert!(message.contains("counted twice"), "{message}");
    assert!(message.starts_with("2 ledger entries"), "{message}");
}

#[test]
fn a_credited_and_a_reversed_entry_for_one_order_are_two_entries() {
    let mut s = consistent();
    s.ledger.push(entry("ord_3", LedgerStatus::Reversed, 50));
    only_violation(&s, Invariant::Loyalty, Some("ord_3"));
}

#[test]
fn a_confirmed_order_without_a_ledger_entry_is_reported() {
    let mut s = consistent();
    s.ledger.retain(|e| e.order_id != "ord_2");
    let message = only_violation(&s, Invariant::Loyalty, Some("ord_2"));
    assert!(message.contains("none found"), "{message}");
}

#[test]
fn a_confirmed_order_with_only_a_reversed_entry_is_reported() {
    let mut s = consistent();
    credited_mut(&mut s, "ord_2").status = LedgerStatus::Reversed;
    let message = only_violation(&s, Invariant::Loyalty, Some("ord_2"));
    assert!(message.contains("found: reversed"), "{message}");
}

#[test]
fn a_credited_entry_with_the_wrong_points_is_reported() {
    let mut s = consistent();
    credited_mut(&mut s, "ord_1").points = 13;
    let message = only_violation(&s, Invariant::Loyalty, Some("ord_1"));
    assert!(message.contains("credits 13 points"), "{message}");
    assert!(message.contains("earns 12"), "{message}");
}

#[test]
fn a_points_balance_off_is_reported_with_both_numbers() {
    let mut s = consistent();
    s.points = 22;
    let message = only_violation(&s, Invariant::Loyalty, None);
    assert_eq!(message, "has 22 points, the confirmed orders earn 21");
}

#[test]
fn points_count_whole_currency_units_only() {
    let mut s = consistent();
    // 1250 + 999 cents is 22.49 units, but each order earns its own whole units: 12 + 9.
    s.points = (1250 + 999) / 100;
    only_violation(&s, Invariant::Loyalty, None);
}

#[test]
fn an_order_showing_the_wrong_points_is_reported() {
    let mut s = consistent();
    s.orders[0].points = 13;
    let message = only_violation(&s, Invariant::Loyalty, Some("ord_1"));
    assert!(message.contains("13 points"), "{message}");
    assert!(message.contains("earns 12"), "{message}");
}

#[test]
fn a_credited_entry_for_a_cancelled_order_is_reported() {
    let mut s = consistent();
    credited_mut(&mut s, "ord_3").status = LedgerStatus::Credited;
    let message = only_violation(&s, Invariant::Loyalty, Some("ord_3"));
    assert!(message.contains("cancelled"), "{message}");
}

#[test]
fn a_credited_entry_for_an_unknown_order_is_reported() {
    let mut s = consistent();
    s.ledger.push(entry("ord_ghost", LedgerStatus::Credited, 3));
    let message = only_violation(&s, Invariant::Loyalty, Some("ord_ghost"));
    assert!(
        message.contains("not among the account's 5 orders"),
        "{message}"
    );
}

// 3. Payment

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
    assert_eq!(settled(audit_account(&s)), vec![]);
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
    let violations = settled(audit_account(&s));
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

// 4. No order lost

#[test]
fn an_accepted_order_is_reported_only_when_settled_is_expected() {
    let mut s = consistent();
    s.orders.push(order("ord_6", OrderStatus::Accepted, 400));
    only_violation(&s, Invariant::NoOrderLost, Some("ord_6"));
    assert_eq!(busy(audit_account(&s)).violations, vec![]);
}

#[test]
fn an_accepted_order_already_applied_downstream_is_not_a_money_or_points_violation() {
    let mut s = consistent();
    s.orders.push(order("ord_6", OrderStatus::Accepted, 400));
    s.payments
        .push(payment("ord_6", PaymentStatus::Captured, 400));
    s.wallet.balance_cents -= 400;
    s.ledger.push(entry("ord_6", LedgerStatus::Credited, 4));
    assert_eq!(busy(audit_account(&s)).violations, vec![]);
}

#[test]
fn an_order_listed_twice_is_reported_and_counted_once() {
    let mut s = consistent();
    s.orders.push(order("ord_1", OrderStatus::Confirmed, 1250));
    let message = only_violation(&s, Invariant::NoOrderLost, Some("ord_1"));
    assert!(message.contains("listed 2 times"), "{message}");
    assert_eq!(confirmed_totals(&s), (2, 1250 + 999));
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
    s.points += 1;
    let violations = settled(audit_account(&s));
    assert_eq!(
        found(&violations),
        vec![(Invariant::Loyalty, Some("acc_other"), None)]
    );
}

// Still in flight: what a lag explains is a violation once settled, an entry in flight before

fn in_flight(account: &str, order: Option<&str>, pending: &[&str]) -> InFlight {
    InFlight {
        account_id: Some(account.to_owned()),
        order_id: order.map(str::to_owned),
        pending: pending.iter().map(|p| (*p).to_owned()).collect(),
    }
}

#[test]
fn while_busy_an_accepted_order_is_in_flight_not_a_violation() {
    let mut s = consistent();
    s.orders.push(order("ord_6", OrderStatus::Accepted, 400));
    let judged = busy(audit_account(&s));
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
    let judged = busy(audit_account(&s));
    assert_eq!(judged.violations, vec![]);
    assert_eq!(
        judged.in_flight,
        vec![
            in_flight(
                ACC,
                Some("ord_6"),
                &[
                    "confirmed order earning 1 points has no credited ledger entry (none found)",
                    "confirmed order of 100 cents has no captured payment (none found)",
                ]
            ),
            in_flight(
                ACC,
                None,
                &[
                    "counts 2 orders, 3 are confirmed",
                    "counts 2249 cents of revenue, the confirmed orders total 2349",
                    "has 21 points, the confirmed orders earn 22",
                ]
            ),
        ]
    );
    // Once settled, the same differences are violations, and nothing is in flight.
    let judged = judge(audit_account(&s), moment(true));
    assert_eq!(judged.violations.len(), 5, "{:#?}", judged.violations);
    assert_eq!(judged.in_flight, vec![]);
}

#[test]
fn while_busy_a_cancelled_order_not_yet_compensated_is_in_flight() {
    let mut s = consistent();
    // ord_4 was captured and credited before it was cancelled; neither is undone yet.
    credited_mut(&mut s, "ord_4").status = LedgerStatus::Credited;
    payment_mut(&mut s, "ord_4").status = PaymentStatus::Captured;
    s.points += 7;
    s.wallet.balance_cents -= 700;
    let judged = busy(audit_account(&s));
    assert_eq!(judged.violations, vec![]);
    assert_eq!(
        judged.in_flight,
        vec![
            in_flight(
                ACC,
                Some("ord_4"),
                &[
                    "ledger credits 7 points for a cancelled order, expected 0",
                    "captured 700 cents for a cancelled order, expected 0",
                ]
            ),
            in_flight(ACC, None, &["has 28 points, the confirmed orders earn 21"]),
        ]
    );
}

#[test]
fn a_confirmed_order_whose_ledger_entry_is_reversed_is_a_violation_even_while_busy() {
    // No lag turns a reversed entry back into a credit: the opposite of what Order decided.
    let mut s = consistent();
    credited_mut(&mut s, "ord_2").status = LedgerStatus::Reversed;
    s.points -= 9;
    let judged = busy(audit_account(&s));
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
    let judged = busy(audit_account(&s));
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
    let judged = busy(audit_account(&s));
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

// Global totals

#[test]
fn global_totals_that_match_the_sums_are_clean() {
    let reported = Totals {
        orders: 5,
        revenue_cents: 7000,
    };
    assert_eq!(settled(audit_totals(&reported, 5, 7000, 3)), vec![]);
}

#[test]
fn global_totals_off_are_reported_for_all_accounts() {
    let reported = Totals {
        orders: 6,
        revenue_cents: 7001,
    };
    let violations = settled(audit_totals(&reported, 5, 7000, 3));
    assert_eq!(found(&violations), vec![(Invariant::Stats, None, None); 2]);
    assert_eq!(
        violations[0].to_string(),
        "stats: all accounts: /stats counts 6 orders, 5 are confirmed across 3 accounts"
    );
    assert!(violations[1].message.contains("7001"));
    assert!(violations[1].message.contains("7000"));
}

// Acknowledged orders

fn listing_of(ids: &[&str]) -> HashSet<String> {
    ids.iter().map(|s| (*s).to_owned()).collect()
}

#[test]
fn an_acknowledged_order_that_is_listed_and_settled_is_clean() {
    let ids = listing_of(&["ord_1"]);
    let listing = Listing { order_ids: &ids };
    let o = order("ord_1", OrderStatus::Confirmed, 100);
    assert_eq!(
        settled(audit_acknowledged("ord_1", ACC, Some(&o), Some(&listing))),
        vec![]
    );
}

#[test]
fn an_acknowledged_order_that_answers_404_is_lost() {
    let ids = listing_of(&[]);
    let listing = Listing { order_ids: &ids };
    for listing in [Some(&listing), None] {
        for settled in [true, false] {
            let violations = judge(
                audit_acknowledged("ord_9", ACC, None, listing),
                moment(settled),
            )
            .violations;
            assert_eq!(
                found(&violations),
                vec![(Invariant::NoOrderLost, Some(ACC), Some("ord_9"))]
            );
            assert!(violations[0].message.contains("lost"));
        }
    }
}

#[test]
fn an_acknowledged_order_of_another_account_is_reported() {
    let o = Order {
        account_id: "acc_2".to_owned(),
        ..order("ord_1", OrderStatus::Confirmed, 100)
    };
    let violations = settled(audit_acknowledged("ord_1", ACC, Some(&o), None));
    assert_eq!(
        found(&violations),
        vec![(Invariant::NoOrderLost, Some(ACC), Some("ord_1"))]
    );
    assert!(violations[0].message.contains("acc_2"));
}

#[test]
fn an_acknowledged_order_missing_from_its_accounts_listing_is_reported() {
    let ids = listing_of(&["ord_2", "ord_3"]);
    let listing = Listing { order_ids: &ids };
    let o = order("ord_1", OrderStatus::Cancelled, 100);
    let violations = settled(audit_acknowledged("ord_1", ACC, Some(&o), Some(&listing)));
    assert_eq!(
        found(&violations),
        vec![(Invariant::NoOrderLost, Some(ACC), Some("ord_1"))]
    );
    assert!(violations[0].message.contains("2 listed orders"));
}

#[test]
fn an_acknowledged_order_still_accepted_is_reported_once_and_only_when_settled() {
    let o = order("ord_1", OrderStatus::Accepted, 100);
    // Account not audited: only this check sees the status.
    assert_eq!(
        found(&settled(audit_acknowledged("ord_1", ACC, Some(&o), None))),
        vec![(Invariant::NoOrderLost, Some(ACC), Some("ord_1"))]
    );
    assert_eq!(
        busy(audit_acknowledged("ord_1", ACC, Some(&o), None)).violations,
        vec![]
    );
    // Listed under its audited account: audit_account reports the status, not this check.
    let ids = listing_of(&["ord_1"]);
    let listing = Listing { order_ids: &ids };
    assert_eq!(
        settled(audit_acknowledged("ord_1", ACC, Some(&o), Some(&listing))),
        vec![]
    );
}

// Display

#[test]
fn a_violation_displays_on_one_line_with_invariant_account_order_and_numbers() {
    // Orders come first, then the account's sums.
    let mut s = consistent();
    s.stats.orders = 3;
    payment_mut(&mut s, "ord_1").amount_cents = 1200;
    s.wallet.balance_cents += 50;
    let shown: Vec<String> = settled(audit_account(&s))
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        shown,
        vec![
            "payment: account acc_1: order ord_1: captured 1200 cents, the order's total is 1250 cents",
            "stats: account acc_1: counts 3 orders, 2 are confirmed",
        ]
    );
}

#[test]
fn a_violation_message_with_a_newline_still_displays_on_one_line() {
    let v = Violation {
        invariant: Invariant::NoOrderLost,
        account_id: Some("acc\n1".to_owned()),
        order_id: Some("ord_1".to_owned()),
        message: "first\nsecond".to_owned(),
    };
    let shown = v.to_string();
    assert_eq!(
        shown,
        "no order lost: account acc 1: order ord_1: first second"
    );
}

#[test]
fn a_report_is_clean_only_without_violations() {
    let mut report = Report {
        accounts: 2,
        orders: 5,
        violations: vec![],
        ..Report::default()
    };
    assert!(report.is_clean());
    assert_eq!(
        report.to_string(),
        "checked 2 accounts and 5 orders: every invariant holds"
    );
    report.violations = settled(audit_totals(&Totals::default(), 1, 0, 2));
    assert!(!report.is_clean());
    assert_eq!(
        report.to_string(),
        "checked 2 accounts and 5 orders: 1 violation"
    );
}

#[test]
fn a_report_with_orders_in_flight_is_clean_but_not_settled() {
    let mut report = Report {
        accounts: 1,
        orders: 1,
        in_flight: vec![in_flight(
            ACC,
            Some("ord_6"),
            &["still accepted", "not counted"],
        )],
        ..Report::default()
    };
    assert!(report.is_clean());
    assert!(!report.is_settled());
    assert_eq!(
        report.to_string(),
        "checked 1 account and 1 order: every invariant holds; 1 still in flight"
    );
    assert_eq!(
        report.in_flight[0].to_string(),
        "in flight: account acc_1: order ord_6: still accepted; not counted"
    );
    report.in_flight.clear();
    assert!(report.is_settled());
}
