//! How violations, entries in flight and reports read.

use super::*;

#[test]
fn a_violation_displays_on_one_line_with_invariant_account_order_and_numbers() {
    // Orders come first, then the account's sums.
    let mut s = consistent();
    s.stats.orders = 3;
    payment_mut(&mut s, "ord_1").amount_cents = 1200;
    s.wallet.balance_cents += 50;
    let shown: Vec<String> = settled(audit_account(&s, None))
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        shown,
        vec![
            "payment: account acc_1: order ord_1: captured 1200 cents, the order's total is 1250 cents",
            "stats: account acc_1: counts 3 orders, 2 of its orders are counted (2 are confirmed)",
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
        quiet: true,
        violations: vec![],
        ..Report::default()
    };
    assert!(report.is_clean());
    assert_eq!(
        report.to_string(),
        "checked 2 accounts and 5 orders: every invariant holds"
    );
    report.violations = settled(audit_totals(
        &Totals::default(),
        &Sums {
            orders: 1,
            revenue_cents: 0,
        },
        2,
    ));
    assert!(!report.is_clean());
    assert_eq!(
        report.to_string(),
        "checked 2 accounts and 5 orders: 1 violation"
    );
    // Settled was expected of a system that was moving: the summary warns a lag may be in it.
    report.quiet = false;
    assert_eq!(
        report.to_string(),
        "checked 2 accounts and 5 orders: 1 violation (the system was not quiet while checked)"
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
