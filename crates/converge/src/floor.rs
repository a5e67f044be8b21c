//! The floor: this machine's limit for "take an order durably", written as plainly as possible
//! and sharing no code with Converge's storage layer, so that every other figure has the
//! machine's own limit beside it.
//!
//! `POST /orders` reads the body as JSON (no validation beyond that), hands it to one writer
//! thread that owns its database connection, and answers `201` once the transaction holding
//! it has committed. The writer takes every order waiting, inserts each with one prepared
//! statement inside one transaction, commits once (SQLite: WAL, `synchronous = FULL`;
//! PostgreSQL: its default, synchronous commit), and answers them all.

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use storage::Location;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

/// Orders waiting for the writer at most; past this, requests wait to enqueue.
const QUEUE_MAX: usize = 16_384;

/// Orders per transaction at most, as Converge's group commit.
const BATCH_MAX: usize = 512;

/// An order's body, and where to send its row id once committed (`None`: not committed).
type Waiting = (String, oneshot::Sender<Option<i64>>);

/// Serves the floor on `listener` until `shutdown`, its database at `location` (a file of its
/// own, or a schema of its own).
pub async fn serve(
    location: &Location,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let (orders, waiting) = mpsc::channel::<Waiting>(QUEUE_MAX);
    // The writer's connection is opened on its own thread: the synchronous PostgreSQL client
    // must not be driven from inside the async runtime.
    let (ready, opened) = oneshot::channel();
    let location = location.clone();
    std::thread::Builder::new()
        .name("floor-writer".into())
        .spawn(move || match Writer::open(&location) {
            Ok(writer) => {
                let _ = ready.send(Ok(()));
                writer.run(waiting);
            }
            Err(error) => {
                let _ = ready.send(Err(error));
            }
        })?;
    opened.await??;
    let router = Router::new()
        .route("/orders", post(place))
        .with_state(orders);
    axum::serve(listener, router)
        .with_graceful_shutdown(async move { shutdown.cancelled().await })
        .await?;
    Ok(())
}

impl Writer {
    fn open(location: &Location) -> anyhow::Result<Self> {
        Ok(match location {
            Location::Sqlite { dir } => {
                std::fs::create_dir_all(dir)?;
                let conn = rusqlite::Connection::open(dir.join("floor.db"))?;
                conn.pragma_update(None, "journal_mode", "WAL")?;
                conn.pragma_update(None, "synchronous", "FULL")?;
                conn.execute_batch(
                "CREATE TABLE IF NOT EXISTS orders (id INTEGER PRIMARY KEY, body TEXT NOT NULL)",
            )?;
                Writer::Sqlite(conn)
            }
            Location::Postgres { url, schema_prefix } => {
                let mut client = postgres::Client::connect(url, postgres::NoTls)?;
                let schema = format!("{schema_prefix}floor");
                client.batch_execute(&format!(
                    "CREATE SCHEMA IF NOT EXISTS \"{schema}\";
                 SET search_path TO \"{schema}\";
                 CREATE TABLE IF NOT EXISTS orders (
                     id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY, body TEXT NOT NULL)"
                ))?;
                Writer::Postgres(client)
            }
        })
    }
}

/// Just what the answer needs: whose order, and its total.
#[derive(serde::Deserialize)]
struct Order {
    account_id: String,
    items: Vec<Item>,
}

#[derive(serde::Deserialize)]
struct Item {
    quantity: i64,
    unit_price_cents: i64,
}

async fn place(State(orders): State<mpsc::Sender<Waiting>>, body: String) -> (StatusCode, String) {
    let Ok(order) = serde_json::from_str::<Order>(&body) else {
        return (
            StatusCode::BAD_REQUEST,
            r#"{"error":"not an order"}"#.into(),
        );
    };
    let total: i64 = order
        .items
        .iter()
        .map(|i| i.quantity.saturating_mul(i.unit_price_cents))
        .sum();
    let (done, committed) = oneshot::channel();
    if orders.send((body, done)).await.is_err() {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            r#"{"error":"stopping"}"#.into(),
        );
    }
    match committed.await {
        Ok(Some(id)) => (
            StatusCode::CREATED,
            serde_json::json!({
                "id": format!("floor_{id}"),
                "account_id": order.account_id,
                "status": "confirmed",
                "total_cents": total,
                "points": total / 100,
            })
            .to_string(),
        ),
        _ => (
            StatusCode::SERVICE_UNAVAILABLE,
            r#"{"error":"not committed"}"#.into(),
        ),
    }
}

enum Writer {
    Sqlite(rusqlite::Connection),
    Postgres(postgres::Client),
}

impl Writer {
    fn run(mut self, mut waiting: mpsc::Receiver<Waiting>) {
        let mut batch = Vec::with_capacity(BATCH_MAX);
        while let Some(first) = waiting.blocking_recv() {
            batch.push(first);
            while batch.len() < BATCH_MAX {
                match waiting.try_recv() {
                    Ok(next) => batch.push(next),
                    Err(_) => break,
                }
            }
            match self.commit(&batch) {
                Ok(ids) => {
                    for ((_, done), id) in batch.drain(..).zip(ids) {
                        let _ = done.send(Some(id));
                    }
                }
                Err(_) => {
                    for (_, done) in batch.drain(..) {
                        let _ = done.send(None);
                    }
                }
            }
        }
    }

    /// Inserts the batch in one transaction; the row ids, in order.
    fn commit(&mut self, batch: &[Waiting]) -> anyhow::Result<Vec<i64>> {
        let ids = match self {
            Writer::Sqlite(conn) => {
                let tx = conn.transaction()?;
                let mut ids = Vec::with_capacity(batch.len());
                {
                    let mut insert = tx.prepare_cached("INSERT INTO orders (body) VALUES (?1)")?;
                    for (body, _) in batch {
                        insert.execute([body])?;
                        ids.push(tx.last_insert_rowid());
                    }
                }
                tx.commit()?;
                ids
            }
            Writer::Postgres(client) => {
                // One statement for the batch: a round trip per row would be the network's
                // floor, not the database's.
                let mut tx = client.transaction()?;
                let bodies: Vec<&str> = batch.iter().map(|(body, _)| body.as_str()).collect();
                let rows = tx.query(
                    "INSERT INTO orders (body) SELECT unnest($1::text[]) RETURNING id",
                    &[&bodies],
                )?;
                tx.commit()?;
                rows.iter().map(|row| row.get(0)).collect()
            }
        };
        Ok(ids)
    }
}
