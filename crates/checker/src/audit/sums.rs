//! The rules of a whole account: what each service sums up for it, and its wallet.
//!
//! A sum and the records it sums are read at different instants, so while the system is busy
//! they may differ by what happened in between: every sum that can differ that way is
//! [`Sink::lagging`].

use super::index::AccountIndex;
use super::sink::Sink;
use crate::Invariant;
use crate::model::{AccountSnapshot, FactStatus, LedgerStatus, PaymentStatus, Wallet};

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

/// The wallet: its top-ups are the ones acknowledged to the caller (when it says which), its
/// balance adds up and is never below zero, and what it holds for two-phase commits is
/// covered by the balance and gone once nothing is in doubt.
///
/// `top_ups_cents`: what the caller's acknowledged top-ups to this account add up to.
pub(super) fn wallet(sink: &mut Sink<'_>, snapshot: &AccountSnapshot, top_ups_cents: Option<i128>) {
    balance(sink, snapshot);
    holds(sink, &snapshot.wallet);
    if let Some(expected) = top_ups_cents {
        top_ups(sink, &snapshot.wallet, expected);
    }
}

/// `balance = top-ups − captures + refunds`, never below zero. A refunded payment is listed as
/// `refunded`, not `captured`: it gave back what it took, so only `captured` ones count. A
/// hold is not in the balance: it leaves the balance only when it is captured.
fn balance(sink: &mut Sink<'_>, snapshot: &AccountSnapshot) {
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

/// Funds held by prepared two-phase commits. Payment holds only what the balance not yet
/// held covers, and releases or captures each hold once, so a hold is never negative nor
/// above the balance (one row, read at once: never a race). A hold at all is a prepare not
/// yet committed or aborted: in flight while `/progress` shows something in doubt, a leaked
/// prepare once it says quiet.
fn holds(sink: &mut Sink<'_>, wallet: &Wallet) {
    let (held, balance) = (wallet.held_cents, wallet.balance_cents);
    if held < 0 {
        sink.broken(
            Invariant::Payment,
            None,
            format!("holds {held} cents, below 0: a hold was released or captured twice"),
        );
    } else if held > 0 && held > balance {
        sink.broken(
            Invariant::Payment,
            None,
            format!(
                "holds {held} cents, more than the balance of {balance}: a hold the wallet \
                 cannot cover"
            ),
        );
    }
    if held > 0 {
        sink.in_doubt(
            Invariant::Payment,
            None,
            format!(
                "holds {held} cents for a two-phase commit not committed or aborted (a leaked \
                 prepare if the system is quiet)"
            ),
        );
    }
}

/// The wallet's top-ups are the ones acknowledged to the caller. Fewer is an acknowledged
/// top-up lost, at any moment (it was applied before it was acknowledged). More is one the
/// caller was never told of, or one still on its way back to the caller while busy.
fn top_ups(sink: &mut Sink<'_>, wallet: &Wallet, expected: i128) {
    let found = i128::from(wallet.top_ups_cents);
    let message = format!(
        "top-ups are {found} cents, the top-ups acknowledged to the caller add up to {expected}"
    );
    if found < expected {
        sink.broken(Invariant::Payment, None, message);
    } else if found > expected {
        sink.lagging(Invariant::Payment, None, message);
    }
}

fn held(cents: i64) -> String {
    if cents == 0 {
        String::new()
    } else {
        format!(" (held {cents})")
    }
}
