//! Order's tables: every statement it runs on orders and decisions, for both engines. The
//! idempotency keys are in [`crate::idempotency`].

use std::collections::BTreeMap;

use contracts::api::{Order, OrderStatus, Refusal};
use contracts::events::EventBody;
use contracts::ids::OrderId;
use contracts::internal::Outcome;
use contracts::order::{LineItem, NewOrder};
use storage::{DbError, ErrorKind, Param, Tx, sql};

const COLUMNS: &str =
    "id, account_id, status, total_cents, points, items, reason, acknowledged_at_ms, settled_at_ms";

type OrderRow = (
    String,
    String,
    String,
    i64,
    i64,
    String,
    Option<String>,
    i64,
    Option<i64>,
);

fn order_from(row: OrderRow) -> Order {
    let (
        id,
        account_id,
        status,
        total_cents,
        points,
        items,
        reason,
        acknowledged_at_ms,
        settled_at_ms,
    ) = row;
    Order {
        id,
        account_id,
        status: OrderStatus::parse(&status).unwrap_or(OrderStatus::Accepted),
        total_cents,
        points,
        items: serde_json::from_str::<Vec<LineItem>>(&items).unwrap_or_default(),
        reason: reason.as_deref().and_then(Refusal::parse),
        acknowledged_at_ms,
        settled_at_ms,
    }
}

/// The order as it will be stored and shown.
pub(crate) fn new_order(id: &OrderId, order: &NewOrder, status: OrderStatus, now_ms: i64) -> Order {
    Order {
        id: id.to_string(),
        account_id: order.account_id().to_string(),
        status,
        total_cents: order.total().get(),
        points: order.total().points(),
        items: order.items().to_vec(),
        reason: None,
        acknowledged_at_ms: now_ms,
        settled_at_ms: (status == OrderStatus::Confirmed).then_some(now_ms),
    }
}

/// Inserts orders with one statement.
pub(crate) fn insert_all(tx: &mut Tx<'_>, orders: &[&Order]) -> Result<(), DbError> {
    if orders.is_empty() {
        return Ok(());
    }
    let items: Vec<String> = orders
        .iter()
        .map(|o| serde_json::to_string(&o.items).expect("line items always serialize"))
        .collect();
    let statuses: Vec<&str> = orders.iter().map(|o| o.status.as_str()).collect();
    let mut params: Vec<&dyn Param> = Vec::with_capacity(orders.len() * 8);
    for (i, order) in orders.iter().enumerate() {
        params.extend([
            &order.id as &dyn Param,
            &order.account_id,
            &statuses[i],
            &order.total_cents,
            &order.points,
            &items[i],
            &order.acknowledged_at_ms,
            &order.settled_at_ms,
        ]);
    }
    tx.execute(
        &format!(
            "INSERT INTO orders (id, account_id, status, total_cents, points, items, acknowledged_at_ms, settled_at_ms)
             VALUES {}",
            sql::values(orders.len(), 8)
        ),
        &params,
    )?;
    Ok(())
}

pub(crate) fn find(tx: &mut Tx<'_>, id: &str) -> Result<Option<Order>, DbError> {
    let row: Option<OrderRow> = tx.query_opt(
        &format!("SELECT {COLUMNS} FROM orders WHERE id = $1"),
        &[&id],
    )?;
    Ok(row.map(order_from))
}

pub(crate) fn list(
    tx: &mut Tx<'_>,
    account_id: &str,
    after: &str,
    limit: i64,
) -> Result<Vec<Order>, DbError> {
    let rows: Vec<OrderRow> = tx.query(
        &format!(
            "SELECT {COLUMNS} FROM orders WHERE account_id = $1 AND id > $2 ORDER BY id LIMIT $3"
        ),
        &[&account_id, &after, &limit],
    )?;
    Ok(rows.into_iter().map(order_from).collect())
}

/// What settling a batch of verdicts came to: the acknowledgement times of the orders it
/// settled, and the `OrderCancelled` events to write.
pub(crate) struct Settled {
    pub acknowledged: Vec<i64>,
    pub cancellations: Vec<EventBody>,
}

/// Settles accepted orders on Payment's verdicts, a batch at a time: every captured order is
/// confirmed with one statement, the declined ones cancelled with one per reason. An order
/// already settled (a redelivered verdict) is left as it is.
pub(crate) fn settle_all(
    tx: &mut Tx<'_>,
    captured: &[String],
    declined: &BTreeMap<Refusal, Vec<String>>,
    now: i64,
) -> Result<Settled, DbError> {
    let mut settled = Settled {
        acknowledged: Vec::new(),
        cancellations: Vec::new(),
    };
    if !captured.is_empty() {
        let mut params: Vec<&dyn Param> = vec![&now];
        params.extend(captured.iter().map(|id| id as &dyn Param));
        let acknowledged: Vec<i64> = tx.query(
            &format!(
                "UPDATE orders SET status = 'confirmed', settled_at_ms = $1
                 WHERE status = 'accepted' AND id IN ({}) RETURNING acknowledged_at_ms",
                sql::list(captured.len(), 2)
            ),
            &params,
        )?;
        settled.acknowledged.extend(acknowledged);
    }
    for (reason, order_ids) in declined {
        let reason_text = reason.as_str();
        let mut params: Vec<&dyn Param> = vec![&reason_text, &now];
        params.extend(order_ids.iter().map(|id| id as &dyn Param));
        let rows: Vec<(String, String, i64, i64, i64)> = tx.query(
            &format!(
                "UPDATE orders SET status = 'cancelled', reason = $1, settled_at_ms = $2
                 WHERE status = 'accepted' AND id IN ({})
                 RETURNING id, account_id, total_cents, points, acknowledged_at_ms",
                sql::list(order_ids.len(), 3)
            ),
            &params,
        )?;
        for (order_id, account_id, total_cents, points, acknowledged_at_ms) in rows {
            settled.acknowledged.push(acknowledged_at_ms);
            settled.cancellations.push(EventBody::OrderCancelled {
                order_id,
                account_id,
                total_cents,
                points,
                reason: *reason,
            });
        }
    }
    Ok(settled)
}

/// Logs a decision for `tx_id` unless one is logged already, and returns the one that stands:
/// the primary key makes every attempt (and a participant's question) race for one row.
pub(crate) fn decide(
    tx: &mut Tx<'_>,
    tx_id: &str,
    outcome: Outcome,
    now: i64,
) -> Result<Outcome, DbError> {
    // An abort is born completed: no participant needs to hear it for the log to be right
    // (presumed abort), and recovery only re-sends commits.
    let completed = i64::from(outcome == Outcome::Abort);
    tx.execute(
        "INSERT INTO decisions (tx_id, outcome, decided_at_ms, completed) VALUES ($1, $2, $3, $4)
         ON CONFLICT (tx_id) DO NOTHING",
        &[&tx_id, &outcome.as_str(), &now, &completed],
    )?;
    decision(tx, tx_id)?.ok_or_else(|| {
        DbError::new(
            ErrorKind::Permanent,
            format!("decision for {tx_id} vanished"),
        )
    })
}

/// The decision logged for `tx_id`, if any.
pub(crate) fn decision(tx: &mut Tx<'_>, tx_id: &str) -> Result<Option<Outcome>, DbError> {
    let logged: Option<String> =
        tx.query_opt("SELECT outcome FROM decisions WHERE tx_id = $1", &[&tx_id])?;
    logged
        .map(|text| {
            Outcome::parse(&text).ok_or_else(|| {
                DbError::new(
                    ErrorKind::Permanent,
                    format!("bad outcome {text:?} in the log"),
                )
            })
        })
        .transpose()
}

/// Marks decisions completed: every participant has applied them.
pub(crate) fn mark_completed(tx: &mut Tx<'_>, tx_ids: &[String]) -> Result<(), DbError> {
    if tx_ids.is_empty() {
        return Ok(());
    }
    let params: Vec<&dyn Param> = tx_ids.iter().map(|id| id as &dyn Param).collect();
    tx.execute(
        &format!(
            "UPDATE decisions SET completed = 1 WHERE tx_id IN ({})",
            sql::list(tx_ids.len(), 1)
        ),
        &params,
    )?;
    Ok(())
}

/// Logged commits not yet applied everywhere, decided before `before_ms`, oldest first.
pub(crate) fn owed(tx: &mut Tx<'_>, before_ms: i64) -> Result<Vec<String>, DbError> {
    tx.query(
        "SELECT tx_id FROM decisions WHERE completed = 0 AND outcome = 'commit' AND decided_at_ms < $1
         ORDER BY decided_at_ms LIMIT 100",
        &[&before_ms],
    )
}

pub(crate) const IN_DOUBT_SQL: &str = "SELECT COUNT(*) FROM decisions WHERE completed = 0";

/// Completed decisions older than `before_ms` go. No participant asks about a decision every
/// participant has applied.
pub(crate) fn prune_decisions(tx: &mut Tx<'_>, before_ms: i64) -> Result<u64, DbError> {
    tx.execute(
        "DELETE FROM decisions WHERE completed = 1 AND decided_at_ms < $1",
        &[&before_ms],
    )
}
