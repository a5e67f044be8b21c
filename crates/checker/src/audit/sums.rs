//! The rules of a whole account: what each service sums up for it, and its wallet.
//!
//! A sum and the records it sums are read at different instants, so while the system is busy
//! they may differ by what happened in between: every sum that can differ that way is
//! [`Sink::lagging`].

use super::index::AccountIndex;
use super::sink::Sink;
use crate::Invariant;
use crate::model::{AccountSnapshot, PaymentStatus};

/// Stats counts the confirmed orders and their revenue.
pub(super) fn stats_sums(
    sink: &mut Sink<'_>,
    snapshot: &AccountSnapshot,
    index: &AccountIndex<'_>,
) {
    let confirmed_count = index.confirmed().count() as i128;
    let confirmed_revenue: i128 = index.confirmed().map(|o| i128::from(o.total_cents)).sum();
    if i128::from(snapshot.stats.orders) != confirmed_count {
        sink.lagging(
            Invariant::Stats,
            None,
            format!(
                "counts {} orders, {confirmed_count} are confirmed",
                snapshot.stats.orders
            ),
        );
    }
    if i128::from(snapshot.stats.revenue_cents) != confirmed_revenue {
        sink.lagging(
            Invariant::Stats,
            None,
            format!(
                "counts {} cents of revenue, the confirmed orders total {confirmed_revenue}",
                snapshot.stats.revenue_cents
            ),
        );
    }
}

/// The points balance is what the confirmed orders earn.
pub(super) fn points_sum(
    sink: &mut Sink<'_>,
    snapshot: &AccountSnapshot,
    index: &AccountIndex<'_>,
) {
    let confirmed_points: i128 = index
        .confirmed()
        .map(|o| i128::from(o.earned_points()))
        .sum();
    if i128::from(snapshot.points) != confirmed_points {
        sink.lagging(
            Invariant::Loyalty,
            None,
            format!(
                "has {} points, the confirmed orders earn {confirmed_points}",
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
