//! Order rows.

use contracts::api::{Order, OrderStatus, Refusal};
use contracts::ids::OrderId;
use contracts::order::{LineItem, NewOrder};
use sqlx::sqlite::SqliteRow;
use sqlx::{Row, SqliteConnection};

pub(crate) const COLUMNS: &str =
    "id, account_id, status, total_cents, points, items, reason, acknowledged_at_ms, settled_at_ms";

pub(crate) fn order_from(row: &SqliteRow) -> Order {
    let status: String = row.get("status");
    let items: String = row.get("items");
    let reason: Option<String> = row.get("reason");
    Order {
        id: row.get("id"),
        account_id: row.get("account_id"),
        status: OrderStatus::parse(&status).unwrap_or(OrderStatus::Accepted),
        total_cents: row.get("total_cents"),
        points: row.get("points"),
        items: serde_json::from_str::<Vec<LineItem>>(&items).unwrap_or_default(),
        reason: reason.as_deref().and_then(Refusal::parse),
        acknowledged_at_ms: row.get("acknowledged_at_ms"),
        settled_at_ms: row.get("settled_at_ms"),
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

pub(crate) async fn insert(conn: &mut SqliteConnection, order: &Order) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO orders (id, account_id, status, total_cents, points, items, acknowledged_at_ms, settled_at_ms)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(&order.id)
    .bind(&order.account_id)
    .bind(order.status.as_str())
    .bind(order.total_cents)
    .bind(order.points)
    .bind(serde_json::to_string(&order.items).expect("line items always serialize"))
    .bind(order.acknowledged_at_ms)
    .bind(order.settled_at_ms)
    .execute(conn)
    .await?;
    Ok(())
}
