//! The global `/stats` against the accounts' Stats totals.

use super::*;

const SUMS: Sums = Sums {
    orders: 5,
    revenue_cents: 7000,
};

#[test]
fn global_totals_that_match_the_accounts_are_clean() {
    let reported = Totals {
        orders: 5,
        revenue_cents: 7000,
    };
    assert_eq!(busy(audit_totals(&reported, &SUMS, 3)), Judged::default());
}

#[test]
fn global_totals_off_are_reported_for_all_accounts_once_settled() {
    let reported = Totals {
        orders: 6,
        revenue_cents: 7001,
    };
    let violations = settled(audit_totals(&reported, &SUMS, 3));
    assert_eq!(found(&violations), vec![(Invariant::Stats, None, None); 2]);
    assert_eq!(
        violations[0].to_string(),
        "stats: all accounts: /stats counts 6 orders, the Stats totals of the 3 accounts add \
         up to 5"
    );
    assert!(violations[1].message.contains("7001"));
    assert!(violations[1].message.contains("7000"));
}

#[test]
fn global_totals_off_while_busy_are_in_flight() {
    // `/stats` and the accounts are read at different instants: an order may land between.
    let reported = Totals {
        orders: 6,
        revenue_cents: 7100,
    };
    let judged = busy(audit_totals(&reported, &SUMS, 3));
    assert_eq!(judged.violations, vec![]);
    assert_eq!(judged.in_flight.len(), 1);
    assert_eq!(judged.in_flight[0].account_id, None);
    assert_eq!(judged.in_flight[0].pending.len(), 2);
}

#[test]
fn sums_add_every_account_without_overflow() {
    let mut sums = Sums::default();
    for _ in 0..3 {
        sums.add(&Totals {
            orders: i64::MAX,
            revenue_cents: i64::MAX,
        });
    }
    assert_eq!(sums.orders, 3 * i128::from(i64::MAX));
}
