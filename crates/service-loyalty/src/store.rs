//! Loyalty's tables: every statement it runs, for both engines.
//!
//! Crediting is idempotent per order: an order's ledger entry is inserted (or moved from
//! `pending`) at most once, and the balance moves only for the entries that did.

use std::collections::{BTreeMap, HashSet};

use contracts::api::{LedgerEntry, LedgerStatus};
use contracts::internal::PrepareRequest;
use contracts::now_ms;
use storage::{DbError, Param, Tx, sql};

/// An order's points, as Loyalty credits them.
#[derive(Debug, Clone)]
pub(crate) struct Credit {
    pub order_id: String,
    pub account_id: String,
    pub points: i64,
    pub acknowledged_at_ms: i64,
}

/// Credits many orders at once, each at most once: one insert for the entries (which returns
/// the orders not credited before), then one upsert of the balances, summed here. Returns
/// the orders credited.
pub(crate) fn credit_all(tx: &mut Tx<'_>, credits: &[Credit]) -> Result<Vec<Credit>, DbError> {
    let mut seen = HashSet::new();
    let credits: Vec<&Credit> = credits
        .iter()
        .filter(|c| seen.insert(c.order_id.as_str()))
        .collect();
    if credits.is_empty() {
        return Ok(Vec::new());
    }
    let now = now_ms();
    let params: Vec<&dyn Param> = credits
        .iter()
        .flat_map(|c| {
            [
                &c.order_id as &dyn Param,
                &c.account_id,
                &c.points,
                &"credited",
                &now,
            ]
        })
        .collect();
    let credited: HashSet<String> = tx
        .query(
            &format!(
                "INSERT INTO ledger (order_id, account_id, points, status, applied_at_ms) VALUES {}
                 ON CONFLICT (order_id) DO UPDATE SET status = 'credited',
                     applied_at_ms = excluded.applied_at_ms
                 WHERE ledger.status = 'pending' RETURNING order_id",
                sql::values(credits.len(), 5)
            ),
            &params,
        )?
        .into_iter()
        .collect();
    let credited: Vec<Credit> = credits
        .into_iter()
        .filter(|c| credited.contains(&c.order_id))
        .cloned()
        .collect();
    let mut balances: BTreeMap<&str, i64> = BTreeMap::new();
    for c in &credited {
        *balances.entry(&c.account_id).or_default() += c.points;
    }
    add_all(tx, &balances)?;
    Ok(credited)
}

/// Moves balances by the given points, with one relative upsert.
fn add_all(tx: &mut Tx<'_>, balances: &BTreeMap<&str, i64>) -> Result<(), DbError> {
    if balances.is_empty() {
        return Ok(());
    }
    let params: Vec<&dyn Param> = balances
        .iter()
        .flat_map(|(account_id, points)| [account_id as &dyn Param, points as &dyn Param])
        .collect();
    tx.execute(
        &format!(
            "INSERT INTO balances (account_id, points) VALUES {}
             ON CONFLICT (account_id) DO UPDATE SET points = balances.points + excluded.points",
            sql::values(balances.len(), 2)
        ),
        &params,
    )?;
    Ok(())
}

/// Takes back a cancelled order's points if they were credited; an order not seen yet gets a
/// reversed entry, so that it is never credited later.
pub(crate) fn reverse(tx: &mut Tx<'_>, cancelled: &Credit) -> Result<(), DbError> {
    let previous: Option<String> = tx.query_opt(
        &format!(
            "SELECT status FROM ledger WHERE order_id = $1{}",
            tx.engine().for_update()
        ),
        &[&cancelled.order_id],
    )?;
    tx.execute(
        "INSERT INTO ledger (order_id, account_id, points, status, applied_at_ms)
         VALUES ($1, $2, $3, 'reversed', $4)
         ON CONFLICT (order_id) DO UPDATE SET status = 'reversed',
             applied_at_ms = excluded.applied_at_ms",
        &[
            &cancelled.order_id,
            &cancelled.account_id,
            &cancelled.points,
            &now_ms(),
        ],
    )?;
    if previous.as_deref() == Some("credited") {
        add_all(
            tx,
            &BTreeMap::from([(cancelled.account_id.as_str(), -cancelled.points)]),
        )?;
    }
    Ok(())
}

/// Phase one for many transactions: their pending entries, in one statement. A transaction
/// already known (prepared again, or aborted: its tombstone) is left as it is.
pub(crate) fn record_pending_all(
    tx: &mut Tx<'_>,
    requests: &[PrepareRequest],
) -> Result<(), DbError> {
    if requests.is_empty() {
        return Ok(());
    }
    let now = now_ms();
    let params: Vec<&dyn Param> = requests
        .iter()
        .flat_map(|r| {
            [
                &r.tx_id as &dyn Param,
                &r.account_id,
                &r.points,
                &"pending",
                &now,
            ]
        })
        .collect();
    tx.execute(
        &format!(
            "INSERT INTO ledger (order_id, account_id, points, status, prepared_at_ms) VALUES {}
             ON CONFLICT (order_id) DO NOTHING",
            sql::values(requests.len(), 5)
        ),
        &params,
    )?;
    Ok(())
}

/// Phase two for many transactions: their pending entries are credited as a set.
pub(crate) fn credit_pending_all(tx: &mut Tx<'_>, tx_ids: &[String]) -> Result<(), DbError> {
    if tx_ids.is_empty() {
        return Ok(());
    }
    let params: Vec<&dyn Param> = tx_ids.iter().map(|id| id as &dyn Param).collect();
    let rows: Vec<(String, String, i64)> = tx.query(
        &format!(
            "SELECT order_id, account_id, points FROM ledger
             WHERE status = 'pending' AND order_id IN ({})",
            sql::list(tx_ids.len(), 1)
        ),
        &params,
    )?;
    let credits: Vec<Credit> = rows
        .into_iter()
        .map(|(order_id, account_id, points)| Credit {
            order_id,
            account_id,
            points,
            acknowledged_at_ms: 0,
        })
        .collect();
    credit_all(tx, &credits)?;
    Ok(())
}

/// Phase two, abort: the pending entry becomes a tombstone, so a prepare that arrives late
/// holds nothing.
pub(crate) fn abort(tx: &mut Tx<'_>, tx_id: &str) -> Result<(), DbError> {
    tx.execute(
        "UPDATE ledger SET status = 'aborted', applied_at_ms = $2
         WHERE order_id = $1 AND status = 'pending'",
        &[&tx_id, &now_ms()],
    )?;
    tx.execute(
        "INSERT INTO ledger (order_id, account_id, points, status, applied_at_ms)
         VALUES ($1, '', 0, 'aborted', $2) ON CONFLICT (order_id) DO NOTHING",
        &[&tx_id, &now_ms()],
    )?;
    Ok(())
}

pub(crate) fn in_doubt(tx: &mut Tx<'_>, before_ms: i64) -> Result<Vec<String>, DbError> {
    tx.query(
        "SELECT order_id FROM ledger WHERE status = 'pending' AND prepared_at_ms < $1
         ORDER BY prepared_at_ms LIMIT 100",
        &[&before_ms],
    )
}

pub(crate) const IN_DOUBT_SQL: &str = "SELECT COUNT(*) FROM ledger WHERE status = 'pending'";

/// Tombstones of aborted prepares older than `before_ms` go.
pub(crate) fn prune_aborted(tx: &mut Tx<'_>, before_ms: i64) -> Result<u64, DbError> {
    tx.execute(
        "DELETE FROM ledger WHERE status = 'aborted' AND applied_at_ms < $1",
        &[&before_ms],
    )
}

pub(crate) fn points(tx: &mut Tx<'_>, account_id: &str) -> Result<i64, DbError> {
    let points: Option<i64> = tx.query_opt(
        "SELECT points FROM balances WHERE account_id = $1",
        &[&account_id],
    )?;
    Ok(points.unwrap_or(0))
}

type EntryRow = (String, i64, String, Option<i64>);

fn entry((order_id, points, status, applied_at_ms): EntryRow) -> LedgerEntry {
    LedgerEntry {
        order_id,
        points,
        status: LedgerStatus::parse(&status),
        applied_at_ms,
    }
}

/// A page of an account's ledger, by order id. Pending and aborted entries are shown to no
/// one: no read counts a prepared entry.
pub(crate) fn ledger(
    tx: &mut Tx<'_>,
    account_id: &str,
    after: &str,
    limit: i64,
) -> Result<Vec<LedgerEntry>, DbError> {
    let rows: Vec<EntryRow> = tx.query(
        "SELECT order_id, points, status, applied_at_ms FROM ledger
         WHERE account_id = $1 AND order_id > $2 AND status IN ('credited', 'reversed')
         ORDER BY order_id LIMIT $3",
        &[&account_id, &after, &limit],
    )?;
    Ok(rows.into_iter().map(entry).collect())
}

pub(crate) fn ledger_entry(
    tx: &mut Tx<'_>,
    account_id: &str,
    order_id: &str,
) -> Result<Option<LedgerEntry>, DbError> {
    let row: Option<EntryRow> = tx.query_opt(
        "SELECT order_id, points, status, applied_at_ms FROM ledger
         WHERE order_id = $1 AND account_id = $2 AND status IN ('credited', 'reversed')",
        &[&order_id, &account_id],
    )?;
    Ok(row.map(entry))
}
