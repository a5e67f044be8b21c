//! The orders the caller says were acknowledged.

use super::*;

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
