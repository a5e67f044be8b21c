//! Rule 2, Loyalty: each confirmed order credited once, with its points (one per whole
//! currency unit), each cancelled one not credited; the balance equals the ledger's credits.

use super::*;

// Per order

#[test]
fn a_ledger_entry_twice_is_reported_as_counted_twice() {
    // Applied twice: a second entry, and the balance went up with it.
    let mut s = consistent();
    s.ledger.push(entry("ord_1", LedgerStatus::Credited, 12));
    s.points += 12;
    let message = only_violation(&s, Invariant::Loyalty, Some("ord_1"));
    assert!(message.contains("counted twice"), "{message}");
    assert!(message.starts_with("2 ledger entries"), "{message}");
}

#[test]
fn a_second_entry_the_balance_does_not_show_is_two_violations() {
    let mut s = consistent();
    s.ledger.push(entry("ord_1", LedgerStatus::Credited, 12));
    let violations = settled(audit_account(&s, None));
    assert_eq!(
        found(&violations),
        vec![
            (Invariant::Loyalty, Some(ACC), Some("ord_1")),
            (Invariant::Loyalty, Some(ACC), None),
        ]
    );
    assert_eq!(
        violations[1].message,
        "has 21 points, its ledger credits 33 (the confirmed orders earn 21)"
    );
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
    s.points -= 9;
    let message = only_violation(&s, Invariant::Loyalty, Some("ord_2"));
    assert_eq!(
        message,
        "confirmed order earning 9 points has no credited ledger entry (none found)"
    );
}

#[test]
fn a_confirmed_order_with_only_a_reversed_entry_is_reported() {
    let mut s = consistent();
    credited_mut(&mut s, "ord_2").status = LedgerStatus::Reversed;
    s.points -= 9;
    let message = only_violation(&s, Invariant::Loyalty, Some("ord_2"));
    assert!(message.contains("found: reversed"), "{message}");
}

#[test]
fn a_credited_entry_with_the_wrong_points_is_reported() {
    let mut s = consistent();
    credited_mut(&mut s, "ord_1").points = 13;
    s.points += 1;
    let message = only_violation(&s, Invariant::Loyalty, Some("ord_1"));
    assert!(message.contains("credits 13 points"), "{message}");
    assert!(message.contains("earns 12"), "{message}");
}

#[test]
fn points_count_whole_currency_units_of_each_order() {
    // 999 cents is 9.99 units: 9 points, not 10.
    let mut s = consistent();
    credited_mut(&mut s, "ord_2").points = 10;
    s.points += 1;
    let message = only_violation(&s, Invariant::Loyalty, Some("ord_2"));
    assert_eq!(
        message,
        "ledger credits 10 points, the order earns 9 (total 999 cents)"
    );
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
    s.points += 50;
    let message = only_violation(&s, Invariant::Loyalty, Some("ord_3"));
    assert_eq!(
        message,
        "ledger credits 50 points for a cancelled order, expected 0"
    );
}

#[test]
fn a_credited_entry_for_an_unknown_order_is_reported() {
    let mut s = consistent();
    s.ledger.push(entry("ord_ghost", LedgerStatus::Credited, 3));
    s.points += 3;
    let message = only_violation(&s, Invariant::Loyalty, Some("ord_ghost"));
    assert!(
        message.contains("not among the account's 5 orders"),
        "{message}"
    );
}

// The balance against the ledger

#[test]
fn a_points_balance_off_is_reported_with_every_number() {
    let mut s = consistent();
    s.points = 22;
    let message = only_violation(&s, Invariant::Loyalty, None);
    assert_eq!(
        message,
        "has 22 points, its ledger credits 21 (the confirmed orders earn 21)"
    );
}

#[test]
fn a_balance_summing_the_total_instead_of_each_order_is_reported() {
    // 1250 + 999 cents is 22.49 units, but each order earns its own whole units: 12 + 9.
    let mut s = consistent();
    s.points = (1250 + 999) / 100;
    only_violation(&s, Invariant::Loyalty, None);
}
