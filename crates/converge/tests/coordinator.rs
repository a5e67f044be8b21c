//! Strong mode's coordinator when its own decision log refuses the commit: every participant
//! voted yes, the write of `commit` failed, so nothing is decided. The coordinator must log
//! `abort` before it tells anyone to abort; told first, the participants would keep tombstones
//! of a transaction that a retry under the same `Idempotency-Key` then prepares again (holding
//! nothing) and commits: an order confirmed that Stats, Loyalty and Payment never applied.
//!
//! Its own test binary: the failure is armed in this process (`fail::cfg`), for whichever
//! order reaches the point first.

mod common;

use contracts::Mode;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_commit_the_log_refused_is_aborted_in_the_log_before_the_participants_hear_of_it() {
    let system = common::spawn(Mode::Strong).await;
    let account = system.account_with(10_000).await;
    let items = [("ramen", 2, 1_450)];
    let key = "decision-log-refuses";
    fail::cfg("order::decision-write", "1*return").expect("the failure point is armed");

    let first = system.place(&account.id, &items, Some(key)).await;
    assert_eq!(
        first.status.map(|s| s.as_u16()),
        Some(503),
        "the order could not be decided"
    );
    let retried = system.place(&account.id, &items, Some(key)).await;
    assert_eq!(retried.status.map(|s| s.as_u16()), Some(201));
    let order = retried.order.expect("the order");
    fail::remove("order::decision-write");

    system.wait_quiet().await;
    system
        .assert_invariants(&[(order.id.clone(), account.id.clone())])
        .await;
    let wallet = system.wallet(&account.id).await;
    assert_eq!(wallet.balance_cents, 10_000 - 2_900, "paid once");
    assert_eq!(wallet.held_cents, 0, "nothing held");
}
