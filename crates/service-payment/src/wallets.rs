//! Wallets and payments: every statement Payment runs on them, for both engines.
//!
//! Deciding a run of orders (eventual modes) and holding a batch of prepares (strong mode)
//! share a shape: read the batch's payments and wallets once, decide in memory, write back
//! with one statement per table. On PostgreSQL the wallets are read `FOR UPDATE`, in account
//! order, so that several instances never decide on the same money twice.

use std::collections::{BTreeMap, HashSet};

use contracts::api::{Payment, PaymentStatus, Refusal, Wallet};
use contracts::now_ms;
use storage::{DbError, Param, Tx, sql};

/// A wallet's figures as read inside the batch's transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Figures {
    pub balance: i64,
    pub held: i64,
    pub top_ups: i64,
}

/// The orders among `order_ids` that already have a payment (or a hold, or a tombstone).
pub(crate) fn with_payment(
    tx: &mut Tx<'_>,
    order_ids: &[&str],
) -> Result<HashSet<String>, DbError> {
    if order_ids.is_empty() {
        return Ok(HashSet::new());
    }
    let params: Vec<&dyn Param> = order_ids.iter().map(|id| id as &dyn Param).collect();
    let rows: Vec<String> = tx.query(
        &format!(
            "SELECT order_id FROM payments WHERE order_id IN ({})",
            sql::list(params.len(), 1)
        ),
        &params,
    )?;
    Ok(rows.into_iter().collect())
}

/// The wallets of `account_ids` that exist, by account, locked against other writers.
pub(crate) fn read(
    tx: &mut Tx<'_>,
    account_ids: &[&str],
) -> Result<BTreeMap<String, Figures>, DbError> {
    let ids: std::collections::BTreeSet<&str> = account_ids.iter().copied().collect();
    if ids.is_empty() {
        return Ok(BTreeMap::new());
    }
    let params: Vec<&dyn Param> = ids.iter().map(|id| id as &dyn Param).collect();
    let rows: Vec<(String, i64, i64, i64)> = tx.query(
        &format!(
            "SELECT account_id, balance_cents, held_cents, top_ups_cents FROM wallets
             WHERE account_id IN ({}) ORDER BY account_id{}",
            sql::list(params.len(), 1),
            tx.engine().for_update()
        ),
        &params,
    )?;
    Ok(rows
        .into_iter()
        .map(|(account, balance, held, top_ups)| {
            (
                account,
                Figures {
                    balance,
                    held,
                    top_ups,
                },
            )
        })
        .collect())
}

/// Writes back the balance and the hold of each wallet in one statement. The rows were read
/// (and, on PostgreSQL, locked) in the same transaction.
pub(crate) fn write<'a>(
    tx: &mut Tx<'_>,
    wallets: impl IntoIterator<Item = (&'a str, Figures)>,
) -> Result<(), DbError> {
    let wallets: Vec<(&str, Figures)> = wallets.into_iter().collect();
    if wallets.is_empty() {
        return Ok(());
    }
    let params: Vec<&dyn Param> = wallets
        .iter()
        .flat_map(|(account, figures)| {
            [
                account as &dyn Param,
                &figures.balance,
                &figures.held,
                &figures.top_ups,
            ]
        })
        .collect();
    tx.execute(
        &format!(
            "INSERT INTO wallets (account_id, balance_cents, held_cents, top_ups_cents) VALUES {}
             ON CONFLICT (account_id) DO UPDATE SET balance_cents = excluded.balance_cents,
                 held_cents = excluded.held_cents",
            sql::values(wallets.len(), 4)
        ),
        &params,
    )?;
    Ok(())
}

/// A new payment row.
pub(crate) struct NewPayment<'a> {
    pub order_id: &'a str,
    pub account_id: &'a str,
    pub amount_cents: i64,
    pub status: &'static str,
    pub reason: Option<&'static str>,
}

/// Inserts payments (captured, declined, held) in one statement; `prepared` marks holds.
pub(crate) fn insert_payments(
    tx: &mut Tx<'_>,
    payments: &[NewPayment<'_>],
    prepared_at_ms: Option<i64>,
) -> Result<(), DbError> {
    if payments.is_empty() {
        return Ok(());
    }
    let now = now_ms();
    let params: Vec<&dyn Param> = payments
        .iter()
        .flat_map(|p| {
            [
                &p.order_id as &dyn Param,
                &p.account_id,
                &p.amount_cents,
                &p.status,
                &p.reason,
                &prepared_at_ms,
                &now,
            ]
        })
        .collect();
    tx.execute(
        &format!(
            "INSERT INTO payments (order_id, account_id, amount_cents, status, reason, prepared_at_ms, updated_at_ms)
             VALUES {}",
            sql::values(payments.len(), 7)
        ),
        &params,
    )?;
    Ok(())
}

/// Captures the held payments of `tx_ids`: one update of the payments, then the wallets.
pub(crate) fn capture_all(tx: &mut Tx<'_>, tx_ids: &[String]) -> Result<(), DbError> {
    if tx_ids.is_empty() {
        return Ok(());
    }
    let now = now_ms();
    let mut params: Vec<&dyn Param> = vec![&now];
    params.extend(tx_ids.iter().map(|id| id as &dyn Param));
    let rows: Vec<(String, i64)> = tx.query(
        &format!(
            "UPDATE payments SET status = 'captured', updated_at_ms = $1
             WHERE status = 'held' AND order_id IN ({}) RETURNING account_id, amount_cents",
            sql::list(tx_ids.len(), 2)
        ),
        &params,
    )?;
    let mut per_account: BTreeMap<String, i64> = BTreeMap::new();
    for (account_id, amount) in rows {
        *per_account.entry(account_id).or_default() += amount;
    }
    for (account_id, amount) in per_account {
        // Relative, so that it is right whatever else changed the wallet meanwhile.
        tx.execute(
            "UPDATE wallets SET balance_cents = balance_cents - $1, held_cents = held_cents - $1
             WHERE account_id = $2",
            &[&amount, &account_id],
        )?;
    }
    Ok(())
}

/// Releases what was held and leaves a tombstone, so that a prepare arriving after this abort
/// holds nothing.
pub(crate) fn release(tx: &mut Tx<'_>, tx_id: &str) -> Result<(), DbError> {
    let now = now_ms();
    let held: Option<(String, i64)> = tx.query_opt(
        "UPDATE payments SET status = 'released', updated_at_ms = $2
         WHERE order_id = $1 AND status = 'held' RETURNING account_id, amount_cents",
        &[&tx_id, &now],
    )?;
    match held {
        Some((account_id, amount)) => {
            tx.execute(
                "UPDATE wallets SET held_cents = held_cents - $1 WHERE account_id = $2",
                &[&amount, &account_id],
            )?;
        }
        None => {
            tx.execute(
                "INSERT INTO payments (order_id, account_id, amount_cents, status, updated_at_ms)
                 VALUES ($1, '', 0, 'released', $2) ON CONFLICT (order_id) DO NOTHING",
                &[&tx_id, &now],
            )?;
        }
    }
    Ok(())
}

/// Gives back a captured payment of an order cancelled for another reason (a saga's
/// compensation). Today only Payment cancels orders, so this finds nothing to refund; it is
/// here so that a new reason to cancel cannot leave money taken for a cancelled order.
pub(crate) fn refund(tx: &mut Tx<'_>, order_id: &str) -> Result<(), DbError> {
    let captured: Option<(String, i64)> = tx.query_opt(
        "UPDATE payments SET status = 'refunded', updated_at_ms = $2
         WHERE order_id = $1 AND status = 'captured' RETURNING account_id, amount_cents",
        &[&order_id, &now_ms()],
    )?;
    if let Some((account_id, amount)) = captured {
        tx.execute(
            "UPDATE wallets SET balance_cents = balance_cents + $1 WHERE account_id = $2",
            &[&amount, &account_id],
        )?;
    }
    Ok(())
}

/// Adds a top-up; `Ok(None)` if the wallet would go over `balance_max` (nothing written).
pub(crate) fn top_up(
    tx: &mut Tx<'_>,
    account_id: &str,
    amount: i64,
    balance_max: i64,
) -> Result<Option<Wallet>, DbError> {
    let current = read(tx, &[account_id])?.remove(account_id);
    if current.is_some_and(|f| f.balance + amount > balance_max) || amount > balance_max {
        return Ok(None);
    }
    let (balance, held, top_ups): (i64, i64, i64) = tx.query_one(
        "INSERT INTO wallets (account_id, balance_cents, held_cents, top_ups_cents) VALUES ($1, $2, 0, $2)
         ON CONFLICT (account_id) DO UPDATE SET balance_cents = wallets.balance_cents + excluded.balance_cents,
             top_ups_cents = wallets.top_ups_cents + excluded.top_ups_cents
         RETURNING balance_cents, held_cents, top_ups_cents",
        &[&account_id, &amount],
    )?;
    tx.execute(
        "INSERT INTO top_ups (account_id, amount_cents, at_ms) VALUES ($1, $2, $3)",
        &[&account_id, &amount, &now_ms()],
    )?;
    Ok(Some(Wallet {
        account_id: account_id.to_owned(),
        balance_cents: balance,
        held_cents: held,
        top_ups_cents: top_ups,
    }))
}

/// Claims a top-up's key: inserts it if it is new (locking it until this write commits),
/// and returns the request fingerprint it is bound to and its stored answer, if it has one.
pub(crate) fn claim_top_up_key(
    tx: &mut Tx<'_>,
    claim: &runtime::idempotency::Claim,
) -> Result<(String, Option<String>), DbError> {
    tx.execute(
        "INSERT INTO top_up_keys (key, request_hash, response, created_at_ms) VALUES ($1, $2, '', $3)
         ON CONFLICT (key) DO NOTHING",
        &[&claim.key.as_str(), &claim.request_hash, &now_ms()],
    )?;
    let (hash, response): (String, String) = tx.query_one(
        "SELECT request_hash, response FROM top_up_keys WHERE key = $1",
        &[&claim.key.as_str()],
    )?;
    Ok((hash, (!response.is_empty()).then_some(response)))
}

/// Stores the answer of a claimed top-up key.
pub(crate) fn answer_top_up_key(tx: &mut Tx<'_>, key: &str, response: &str) -> Result<(), DbError> {
    tx.execute(
        "UPDATE top_up_keys SET response = $2 WHERE key = $1",
        &[&key, &response],
    )?;
    Ok(())
}

pub(crate) fn find_wallet(tx: &mut Tx<'_>, account_id: &str) -> Result<Option<Wallet>, DbError> {
    let row: Option<(i64, i64, i64)> = tx.query_opt(
        "SELECT balance_cents, held_cents, top_ups_cents FROM wallets WHERE account_id = $1",
        &[&account_id],
    )?;
    Ok(
        row.map(|(balance_cents, held_cents, top_ups_cents)| Wallet {
            account_id: account_id.to_owned(),
            balance_cents,
            held_cents,
            top_ups_cents,
        }),
    )
}

type PaymentRow = (String, String, i64, String, Option<String>, i64);

fn payment(
    (order_id, account_id, amount_cents, status, reason, updated_at_ms): PaymentRow,
) -> Payment {
    Payment {
        order_id,
        account_id,
        amount_cents,
        status: PaymentStatus::parse(&status).unwrap_or(PaymentStatus::Declined),
        reason: reason.as_deref().and_then(Refusal::parse),
        updated_at_ms: Some(updated_at_ms),
    }
}

/// Payments users may see: held ones are a two-phase commit in flight and released ones an
/// aborted one; neither is shown.
const SHOWN: &str = "status IN ('captured', 'declined', 'refunded')";

pub(crate) fn find_payment(tx: &mut Tx<'_>, order_id: &str) -> Result<Option<Payment>, DbError> {
    let row: Option<PaymentRow> = tx.query_opt(
        &format!(
            "SELECT order_id, account_id, amount_cents, status, reason, updated_at_ms FROM payments
             WHERE order_id = $1 AND {SHOWN}"
        ),
        &[&order_id],
    )?;
    Ok(row.map(payment))
}

pub(crate) fn payments_of(
    tx: &mut Tx<'_>,
    account_id: &str,
    after: &str,
    limit: i64,
) -> Result<Vec<Payment>, DbError> {
    let rows: Vec<PaymentRow> = tx.query(
        &format!(
            "SELECT order_id, account_id, amount_cents, status, reason, updated_at_ms FROM payments
             WHERE account_id = $1 AND order_id > $2 AND {SHOWN} ORDER BY order_id LIMIT $3"
        ),
        &[&account_id, &after, &limit],
    )?;
    Ok(rows.into_iter().map(payment).collect())
}

pub(crate) fn held_before(tx: &mut Tx<'_>, before_ms: i64) -> Result<Vec<String>, DbError> {
    tx.query(
        "SELECT order_id FROM payments WHERE status = 'held' AND prepared_at_ms < $1
         ORDER BY prepared_at_ms LIMIT 100",
        &[&before_ms],
    )
}

pub(crate) const IN_DOUBT_SQL: &str = "SELECT COUNT(*) FROM payments WHERE status = 'held'";

/// Tombstones of aborted holds older than `before_ms` go.
pub(crate) fn prune_released(tx: &mut Tx<'_>, before_ms: i64) -> Result<u64, DbError> {
    tx.execute(
        "DELETE FROM payments WHERE status = 'released' AND updated_at_ms < $1",
        &[&before_ms],
    )
}

/// Top-up keys older than `before_ms` go: a retry after that is a new top-up.
pub(crate) fn prune_top_up_keys(tx: &mut Tx<'_>, before_ms: i64) -> Result<u64, DbError> {
    tx.execute(
        "DELETE FROM top_up_keys WHERE created_at_ms < $1",
        &[&before_ms],
    )
}
