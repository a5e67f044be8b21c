//! A consumer's bookkeeping, kept in its own database: its position in each feed, and the
//! events it set aside.

use contracts::events::Event;
use contracts::internal::DeadLetter;
use storage::Db;
use storage::sqlx::{self, Row, SqliteConnection};

/// The position of the last event applied from `feed`; 0 before the first.
pub async fn position(db: &Db, feed: &str) -> Result<i64, sqlx::Error> {
    let position: Option<i64> =
        sqlx::query_scalar("SELECT position FROM inbox_positions WHERE feed = ?")
            .bind(feed)
            .fetch_optional(&db.read)
            .await?;
    Ok(position.unwrap_or(0))
}

/// Every feed's position.
pub async fn positions(db: &Db) -> Result<Vec<(String, i64)>, sqlx::Error> {
    sqlx::query_as("SELECT feed, position FROM inbox_positions ORDER BY feed")
        .fetch_all(&db.read)
        .await
}

/// Moves the position forward inside the caller's transaction: the effect and the record
/// that it was applied commit together, or neither does.
pub async fn advance(conn: &mut SqliteConnection, feed: &str, seq: i64) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO inbox_positions (feed, position) VALUES (?, ?)
         ON CONFLICT (feed) DO UPDATE SET position = MAX(position, excluded.position)",
    )
    .bind(feed)
    .bind(seq)
    .execute(conn)
    .await?;
    Ok(())
}

/// Sets an event aside and moves past it, in one transaction, so the events behind it flow on.
pub async fn dead_letter(
    db: &Db,
    feed: &str,
    event: &Event,
    error: &str,
    attempts: u32,
) -> Result<(), sqlx::Error> {
    let mut tx = db.write.begin().await?;
    sqlx::query(
        "INSERT OR IGNORE INTO dead_letters (feed, seq, event_id, body, error, attempts, recorded_at_ms)
         VALUES (?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(feed)
    .bind(event.seq)
    .bind(&event.id)
    .bind(event.body.to_string())
    .bind(error)
    .bind(i64::from(attempts))
    .bind(contracts::now_ms())
    .execute(&mut *tx)
    .await?;
    advance(&mut tx, feed, event.seq).await?;
    tx.commit().await
}

pub async fn dead_letters(db: &Db) -> Result<Vec<DeadLetter>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT feed, seq, event_id, body, error, attempts, recorded_at_ms
         FROM dead_letters ORDER BY id LIMIT 1000",
    )
    .fetch_all(&db.read)
    .await?;
    Ok(rows
        .into_iter()
        .map(|row| {
            let body: String = row.get("body");
            DeadLetter {
                feed: row.get("feed"),
                seq: row.get("seq"),
                event_id: row.get("event_id"),
                body: serde_json::from_str(&body).unwrap_or(serde_json::Value::String(body)),
                error: row.get("error"),
                attempts: row.get("attempts"),
                recorded_at_ms: row.get("recorded_at_ms"),
            }
        })
        .collect())
}
