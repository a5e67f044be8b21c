mod common;

use common::*;

each_mode!(an_order_is_applied_everywhere, |mode| async move {
    let system = spawn(mode).await;
    let account = system.account_with(10_000).await;
    let placed = system
        .place(&account.id, &[("ramen", 2, 1_450)], None)
        .await;
    assert_eq!(placed.status.map(|s| s.as_u16()), Some(ack_status(mode)));
    let order = placed.order.expect("an order body");
    system.wait_quiet().await;
    assert_eq!(
        system.order(&order.id).await.status,
        contracts::api::OrderStatus::Confirmed
    );
    assert_eq!(
        system.wallet(&account.id).await.balance_cents,
        10_000 - 2_900
    );
    system.assert_invariants(&[(order.id, account.id)]).await;
    system.stop().await;
});
