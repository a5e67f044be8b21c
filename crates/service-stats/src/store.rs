//! Stats' tables: every statement it runs, for both engines.
//!
//! Counting is idempotent per order: an order's fact row is inserted (or moved from `pending`)
//! at most once, and the totals move only for the rows that did.

use std::collections::{BTreeMap, HashSet};

use contracts::internal::PrepareRequest;
use contracts::now_ms;
use storage::{DbError, Param, Tx, sql};

/// A placed order, as Stats counts it.
#[derive(Debug, Clone)]
pub(crate) struct Placed {
    pub order_id: String,
    pub account_id: String,
    pub total_cents: i64,
    pub acknowledged_at_ms: i64,
}

fn minute_of(ms: i64) -> i64 {
    ms.div_euclid(60_000)
}

/// Counts many orders at once, each at most once: one insert for the facts (which returns
/// the orders not counted before), then one upsert each for the accounts' and the minutes'
/// totals, summed here: three statements however many orders. Returns the orders counted.
pub(crate) fn count_all(tx: &mut Tx<'_>, placed: &[Placed]) -> Result<Vec<Placed>, DbError> {
    let mut seen = HashSet::new();
    let placed: Vec<&Placed> = placed
        .iter()
        .filter(|p| seen.insert(p.order_id.as_str()))
        .collect();
    if placed.is_empty() {
        return Ok(Vec::new());
    }
    let now = now_ms();
    let mut params: Vec<&dyn Param> = Vec::with_capacity(placed.len() * 6);
    for p in &placed {
        params.extend([
            &p.order_id as &dyn Param,
            &p.account_id,
            &p.total_cents,
            &p.acknowledged_at_ms,
            &now,
            &"counted",
        ]);
    }
    let counted: HashSet<String> = tx
        .query(
            &format!(
                "INSERT INTO order_facts (order_id, account_id, total_cents, acknowledged_at_ms, applied_at_ms, status)
                 VALUES {}
                 ON CONFLICT (order_id) DO UPDATE SET status = 'counted',
                     applied_at_ms = excluded.applied_at_ms
                 WHERE order_facts.status = 'pending'
                 RETURNING order_id",
                sql::values(placed.len(), 6)
            ),
            &params,
        )?
        .into_iter()
        .collect();
    let counted: Vec<Placed> = placed
        .into_iter()
        .filter(|p| counted.contains(&p.order_id))
        .cloned()
        .collect();
    add_all(tx, &counted, 1)?;
    Ok(counted)
}

/// Adds (`sign` 1) or takes away (`sign` -1) orders from the account and minute totals: one
/// upsert each, with relative updates, so concurrent writers never lose a count.
fn add_all(tx: &mut Tx<'_>, orders: &[Placed], sign: i64) -> Result<(), DbError> {
    let mut accounts: BTreeMap<&str, (i64, i64)> = BTreeMap::new();
    let mut minutes: BTreeMap<i64, (i64, i64)> = BTreeMap::new();
    for p in orders {
        let account = accounts.entry(&p.account_id).or_default();
        account.0 += sign;
        account.1 += sign * p.total_cents;
        let minute = minutes.entry(minute_of(p.acknowledged_at_ms)).or_default();
        minute.0 += sign;
        minute.1 += sign * p.total_cents;
    }
    if accounts.is_empty() {
        return Ok(());
    }
    let params: Vec<&dyn Param> = accounts
        .iter()
        .flat_map(|(account_id, (orders, revenue))| {
            [
                account_id as &dyn Param,
                orders as &dyn Param,
                revenue as &dyn Param,
            ]
        })
        .collect();
    tx.execute(
        &format!(
            "INSERT INTO account_totals (account_id, orders, revenue_cents) VALUES {}
             ON CONFLICT (account_id) DO UPDATE SET orders = account_totals.orders + excluded.orders,
                 revenue_cents = account_totals.revenue_cents + excluded.revenue_cents",
            sql::values(accounts.len(), 3)
        ),
        &params,
    )?;
    let params: Vec<&dyn Param> = minutes
        .iter()
        .flat_map(|(minute, (orders, revenue))| {
            [
                minute as &dyn Param,
                orders as &dyn Param,
                revenue as &dyn Param,
            ]
        })
        .collect();
    tx.execute(
        &format!(
            "INSERT INTO minute_totals (minute, orders, revenue_cents) VALUES {}
             ON CONFLICT (minute) DO UPDATE SET orders = minute_totals.orders + excluded.orders,
                 revenue_cents = minute_totals.revenue_cents + excluded.revenue_cents",
            sql::values(minutes.len(), 3)
        ),
        &params,
    )?;
    Ok(())
}

/// Takes a cancelled order out of the totals if it was counted, and leaves a tombstone so
/// that it is never counted later.
pub(crate) fn uncount(tx: &mut Tx<'_>, cancelled: &Placed) -> Result<(), DbError> {
    let previous: Option<(String, i64)> = tx.query_opt(
        &format!(
            "SELECT status, acknowledged_at_ms FROM order_facts WHERE order_id = $1{}",
            tx.engine().for_update()
        ),
        &[&cancelled.order_id],
    )?;
    match previous {
        Some((status, _)) if status == "reversed" => {}
        Some((status, acknowledged_at_ms)) => {
            tx.execute(
                "UPDATE order_facts SET status = 'reversed', applied_at_ms = $2 WHERE order_id = $1",
                &[&cancelled.order_id, &now_ms()],
            )?;
            if status == "counted" {
                let counted = Placed {
                    acknowledged_at_ms,
                    ..cancelled.clone()
                };
                add_all(tx, &[counted], -1)?;
            }
        }
        None => {
            tx.execute(
                "INSERT INTO order_facts (order_id, account_id, total_cents, status, acknowledged_at_ms, applied_at_ms)
                 VALUES ($1, $2, $3, 'reversed', $4, $4)",
                &[
                    &cancelled.order_id,
                    &cancelled.account_id,
                    &cancelled.total_cents,
                    &now_ms(),
                ],
            )?;
        }
    }
    Ok(())
}

/// Phase one for many transactions: their pending rows, in one statement. A transaction
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
                &r.total_cents,
                &r.started_at_ms,
                &now,
                &"pending",
            ]
        })
        .collect();
    tx.execute(
        &format!(
            "INSERT INTO order_facts (order_id, account_id, total_cents, acknowledged_at_ms, prepared_at_ms, status)
             VALUES {} ON CONFLICT (order_id) DO NOTHING",
            sql::values(requests.len(), 6)
        ),
        &params,
    )?;
    Ok(())
}

/// Phase two for many transactions: their pending rows are counted as a set.
pub(crate) fn count_pending_all(tx: &mut Tx<'_>, tx_ids: &[String]) -> Result<(), DbError> {
    if tx_ids.is_empty() {
        return Ok(());
    }
    let params: Vec<&dyn Param> = tx_ids.iter().map(|id| id as &dyn Param).collect();
    let rows: Vec<(String, String, i64, i64)> = tx.query(
        &format!(
            "SELECT order_id, account_id, total_cents, acknowledged_at_ms FROM order_facts
             WHERE status = 'pending' AND order_id IN ({})",
            sql::list(tx_ids.len(), 1)
        ),
        &params,
    )?;
    let placed: Vec<Placed> = rows
        .into_iter()
        .map(
            |(order_id, account_id, total_cents, acknowledged_at_ms)| Placed {
                order_id,
                account_id,
                total_cents,
                acknowledged_at_ms,
            },
        )
        .collect();
    count_all(tx, &placed)?;
    Ok(())
}

/// Phase two, abort: the pending row becomes a tombstone, so a prepare that arrives late
/// holds nothing.
pub(crate) fn abort(tx: &mut Tx<'_>, tx_id: &str) -> Result<(), DbError> {
    tx.execute(
        "UPDATE order_facts SET status = 'aborted', applied_at_ms = $2
         WHERE order_id = $1 AND status = 'pending'",
        &[&tx_id, &now_ms()],
    )?;
    tx.execute(
        "INSERT INTO order_facts (order_id, account_id, total_cents, status, acknowledged_at_ms, applied_at_ms)
         VALUES ($1, '', 0, 'aborted', $2, $2) ON CONFLICT (order_id) DO NOTHING",
        &[&tx_id, &now_ms()],
    )?;
    Ok(())
}

/// Prepared entries older than `before_ms`, for the in-doubt resolver.
pub(crate) fn in_doubt(tx: &mut Tx<'_>, before_ms: i64) -> Result<Vec<String>, DbError> {
    tx.query(
        "SELECT order_id FROM order_facts WHERE status = 'pending' AND prepared_at_ms < $1
         ORDER BY prepared_at_ms LIMIT 100",
        &[&before_ms],
    )
}

pub(crate) const IN_DOUBT_SQL: &str = "SELECT COUNT(*) FROM order_facts WHERE status = 'pending'";

/// Tombstones of aborted prepares older than `before_ms` go.
pub(crate) fn prune_aborted(tx: &mut Tx<'_>, before_ms: i64) -> Result<u64, DbError> {
    tx.execute(
        "DELETE FROM order_facts WHERE status = 'aborted' AND applied_at_ms < $1",
        &[&before_ms],
    )
}

pub(crate) fn totals(tx: &mut Tx<'_>) -> Result<(i64, i64), DbError> {
    tx.query_one(
        "SELECT CAST(COALESCE(SUM(orders), 0) AS BIGINT), CAST(COALESCE(SUM(revenue_cents), 0) AS BIGINT)
         FROM account_totals",
        &[],
    )
}

pub(crate) fn account_totals(tx: &mut Tx<'_>, account_id: &str) -> Result<(i64, i64), DbError> {
    let row: Option<(i64, i64)> = tx.query_opt(
        "SELECT orders, revenue_cents FROM account_totals WHERE account_id = $1",
        &[&account_id],
    )?;
    Ok(row.unwrap_or((0, 0)))
}

pub(crate) fn minutes(tx: &mut Tx<'_>, last: i64) -> Result<Vec<(i64, i64, i64)>, DbError> {
    tx.query(
        "SELECT minute, orders, revenue_cents FROM minute_totals ORDER BY minute DESC LIMIT $1",
        &[&last],
    )
}

/// An order's fact as shown: `(account_id, total_cents, status, applied_at_ms)`.
pub(crate) type FactRow = (String, i64, String, Option<i64>);

/// An order as Stats shows it: counted or reversed (pending and aborted entries are shown to
/// no one).
pub(crate) fn order_fact(tx: &mut Tx<'_>, order_id: &str) -> Result<Option<FactRow>, DbError> {
    tx.query_opt(
        "SELECT account_id, total_cents, status, applied_at_ms FROM order_facts
         WHERE order_id = $1 AND status IN ('counted', 'reversed')",
        &[&order_id],
    )
}
