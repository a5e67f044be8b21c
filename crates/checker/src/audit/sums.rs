//! The rules of a whole account: what each service sums up for it, and its wallet.
//!
//! A sum and the records it sums are read at different instants, so while the system is busy
//! they may differ by what happened in between: every sum that can differ that way is
//! [`Sink::lagging`].

use super::index::AccountIndex;
use super::sink::Sink;
use crate::Invariant;
use crate::model::{AccountSnapshot, FactStatus, LedgerStatus, PaymentStatus};

/// Stats' totals for the account are the sum of its per-order facts: the listed orders it
/// holds as `counted` under this account. With [`stats_of`](super::per_order) holding each
/// fact to its order's status, the totals then count exactly the confirmed orders.
pub(super) fn stats_sums(
    sink: &mut Sink<'_>,
    snapshot: &AccountSnapshot,
    index: &AccountIndex<'_>,
) {
    let counted: Vec<_> = index
        .listed_facts()
        .filter(|f| f.status == FactStatus::Counted && f.account_id == index.account)
        .collect();
    let counted_orders = counted.len() as i128;
    let counted_revenue: i128 = counted.iter().map(|f| i128::from(f.total_cents)).sum();
    let confirmed = index.confirmed().count();
    if i128::from(snapshot.stats.orders) != counted_orders {
        sink.lagging(
            Invariant::Stats,
            None,
            format!(
                "counts {} orders, {counted_orders} of its orders are counted ({confirmed} are \
                 confirmed)",
                snapshot.stats.orders
            ),
        );
    }
    if i128::from(snapshot.stats.revenue_cents) != counted_revenue {
        let confirmed_revenue: i128 = index.confirmed().map(|o| i128::from(o.total_cents)).sum();
        sink.lagging(
            Invariant::Stats,
            None,
            format!(
                "counts {} cents of revenue, its counted orders total {counted_revenue} (the \
                 confirmed ones {confirmed_revenue})",
                snapshot.stats.revenue_cents
            ),
        );
    }
}

/// The points balance is the sum of the ledger's `credited` entries. With
/// [`loyalty_of`](super::per_order) holding each entry to its order, the balance is then what
/// the confirmed orders earn.
pub(super) fn points_sum(
    sink: &mut Sink<'_>,
    snapshot: &AccountSnapshot,
    index: &AccountIndex<'_>,
) {
    let credited: i128 = snapshot
        .ledger
        .iter()
        .filter(|e| e.status == LedgerStatus::Credited)
        .map(|e| i128::from(e.points))
        .sum();
    if i128::from(snapshot.points) != credited {
        let earned: i128 = index
            .confirmed()
            .map(|o| i128::from(o.earned_points()))
            .sum();
        sink.lagging(
            Invariant::Loyalty,
            None,
            format!(
                "has {} points, its ledger credits {credited} (the confirmed orders earn \
                 {earned})",
                snapshot.points
            ),
        );
    }
}

/// `balance = top-ups − captures + refunds`, never below zero. A refunded payment is listed as
/// `refunded`, not `captured`: it gave back what it took, so only `captured` ones count.
pub(super) fn wallet(sink: &mut Sink<'_>, snapshot: &AccountSnapshot) {
    let wallet = snapshot.wallet;
    let captured_cents: i128 = snapshot
        .payments
        .iter()
        .filter(|p| p.status == PaymentStatus::Captured)
        .map(|p| i128::from(p.amount_cents))
        .sum();
    let expected_balance = i128::from(wallet.top_ups_cents) - captured_cents;
    if i128::from(wallet.balance_cents) != expected_balance {
        sink.lagging(
            Invariant::Payment,
            None,
            format!(
                "balance is {} cents, expected {expected_balance} = top-ups {} − captured \
                 {captured_cents}{}",
                wallet.balance_cents,
                wallet.top_ups_cents,
                held(wallet.held_cents)
            ),
        );
    }
    if wallet.balance_cents < 0 {
        sink.broken(
            Invariant::Payment,
            None,
            format!(
                "balance is {} cents, below the minimum of 0{}",
                wallet.balance_cents,
                held(wallet.held_cents)
            ),
        );
    }
}

fn held(cents: i64) -> String {
    if cents == 0 {
        String::new()
    } else {
        format!(" (held {cents})")
    }
}
