//! The consumer against the real embedded transport: a producer's outbox in one SQLite file,
//! served over HTTP on a free port, read by a consumer that applies into another SQLite file.

use std::time::Duration;

use contracts::Mode;
use contracts::events::{Event, EventBody};
use runtime::{Metrics, Peer};
use sqlx::SqliteConnection;
use sqlx::migrate::Migrator;
use storage::Db;
use tokio_util::sync::CancellationToken;
use transport::{Apply, ApplyError, ConsumerConfig, HttpFeed, Outbox, Schedule, inbox};

static NO_MIGRATIONS: Migrator = Migrator::DEFAULT;

/// Records each order it applies; an order id starting with "poison" always fails.
struct Recorder;

impl Apply for Recorder {
    type Context = ();

    async fn apply(
        &self,
        tx: &mut SqliteConnection,
        events: &[Event],
        _: &(),
    ) -> Result<(), ApplyError> {
        for event in events {
            let EventBody::OrderPlaced { order_id, .. } = transport::consumer::decode(event)?
            else {
                continue;
            };
            if order_id.starts_with("poison") {
                return Err(ApplyError::Permanent(anyhow::anyhow!(
                    "cannot apply {order_id}"
                )));
            }
            // No primary key: a second apply of the same event would show as a second row.
            sqlx::query("INSERT INTO applied (order_id, seq) VALUES (?, ?)")
                .bind(order_id)
                .bind(event.seq)
                .execute(&mut *tx)
                .await?;
        }
        Ok(())
    }
}

fn placed(order_id: &str) -> EventBody {
    EventBody::OrderPlaced {
        order_id: order_id.into(),
        account_id: "acc_1".into(),
        total_cents: 100,
        points: 1,
        acknowledged_at_ms: 0,
    }
}

async fn produce(producer: &Db, outbox: &Outbox, bodies: &[EventBody]) {
    for body in bodies {
        let mut tx = producer.write.begin().await.unwrap();
        let seq = Outbox::append_all(&mut tx, std::slice::from_ref(body), contracts::now_ms())
            .await
            .unwrap()
            .expect("one event written");
        tx.commit().await.unwrap();
        outbox.published(seq);
    }
}

async fn applied(db: &Db) -> Vec<String> {
    sqlx::query_scalar("SELECT order_id FROM applied ORDER BY rowid")
        .fetch_all(&db.write)
        .await
        .unwrap()
}

async fn wait_for_position(db: &Db, position: i64) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while inbox::position(db, "order").await.unwrap() < position {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the consumer never reached {position}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn start_consumer(
    consumer: &Db,
    url: &str,
) -> (
    CancellationToken,
    tokio::task::JoinHandle<anyhow::Result<()>>,
) {
    let peer = Peer::new(
        "order",
        url,
        runtime::peer::http_client(),
        "secret",
        Duration::from_secs(2),
        Duration::ZERO,
    );
    let mut config = ConsumerConfig::new(Schedule::Continuous {
        wait: Duration::from_millis(200),
    });
    config.backoff_min = Duration::from_millis(1);
    config.backoff_max = Duration::from_millis(5);
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(transport::consumer::run(
        consumer.clone(),
        HttpFeed::new("order", peer),
        Recorder,
        config,
        Metrics::new("test"),
        shutdown.clone(),
    ));
    (shutdown, task)
}

/// A producer's and a consumer's database in a fresh directory, the consumer's table of what
/// it applied, and the producer's outbox.
async fn databases() -> (tempfile::TempDir, Db, Db, Outbox) {
    let dir = tempfile::tempdir().unwrap();
    let producer = Db::open(dir.path(), "producer", &NO_MIGRATIONS, Mode::Queue)
        .await
        .unwrap()
        .0;
    let consumer = Db::open(dir.path(), "consumer", &NO_MIGRATIONS, Mode::Queue)
        .await
        .unwrap()
        .0;
    transport::install(&producer).await.unwrap();
    transport::install(&consumer).await.unwrap();
    sqlx::query("CREATE TABLE applied (order_id TEXT NOT NULL, seq INTEGER NOT NULL)")
        .execute(&consumer.write)
        .await
        .unwrap();
    let outbox = Outbox::open(producer.clone()).await.unwrap();
    (dir, producer, consumer, outbox)
}

/// Serves the outbox's feed on `listener` until the test ends.
fn serve_feed(listener: tokio::net::TcpListener, outbox: &Outbox) {
    let stop = CancellationToken::new();
    let server = runtime::http::serve_task(
        listener,
        runtime::http::service_router(
            axum::Router::new(),
            transport::feed::router(outbox.clone()),
            "secret",
            Metrics::new("p"),
        ),
        stop.clone(),
    );
    tokio::spawn(async move { runtime::supervise::run_tasks(vec![server], stop).await });
}

#[tokio::test]
async fn events_apply_once_in_order_and_a_poison_event_is_set_aside() {
    let (_dir, producer, consumer, outbox) = databases().await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    serve_feed(listener, &outbox);

    // The poison event sits in the middle of a batch: the events around it must go through.
    produce(
        &producer,
        &outbox,
        &[placed("a"), placed("b"), placed("poison-1"), placed("c")],
    )
    .await;
    let (stop, task) = start_consumer(&consumer, &url);
    wait_for_position(&consumer, outbox.head()).await;
    assert_eq!(applied(&consumer).await, ["a", "b", "c"]);
    let dead = inbox::dead_letters(&consumer).await.unwrap();
    assert_eq!(dead.len(), 1, "{dead:?}");
    assert_eq!(dead[0].seq, 3);
    assert!(
        dead[0].error.contains("cannot apply poison-1"),
        "{}",
        dead[0].error
    );
    assert_eq!(dead[0].attempts, 5);

    // An unreadable body is set aside the same way.
    let mut tx = producer.write.begin().await.unwrap();
    let seq: i64 = sqlx::query_scalar(
        "INSERT INTO outbox (event_id, recorded_at_ms, body) VALUES ('evt_bad', 0, '{\"type\":\"Nonsense\"}') RETURNING seq",
    )
    .fetch_one(&mut *tx)
    .await
    .unwrap();
    tx.commit().await.unwrap();
    outbox.published(seq);
    produce(&producer, &outbox, &[placed("d")]).await;
    wait_for_position(&consumer, outbox.head()).await;
    assert_eq!(applied(&consumer).await, ["a", "b", "c", "d"]);
    assert_eq!(inbox::dead_letters(&consumer).await.unwrap().len(), 2);
    stop.cancel();
    task.await.unwrap().unwrap();

    // A new consumer resumes from the stored position: nothing is applied twice.
    produce(&producer, &outbox, &[placed("e")]).await;
    let (stop, task) = start_consumer(&consumer, &url);
    wait_for_position(&consumer, outbox.head()).await;
    assert_eq!(applied(&consumer).await, ["a", "b", "c", "d", "e"]);
    stop.cancel();
    task.await.unwrap().unwrap();
}

#[tokio::test]
async fn a_feed_that_is_down_is_waited_for() {
    let (_dir, producer, consumer, outbox) = databases().await;
    produce(&producer, &outbox, &[placed("a"), placed("b")]).await;

    // Reserve a port, start the consumer against it while nothing listens, then serve.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let (stop, task) = start_consumer(&consumer, &format!("http://{addr}"));
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(applied(&consumer).await.is_empty());
    let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
    serve_feed(listener, &outbox);
    wait_for_position(&consumer, outbox.head()).await;
    assert_eq!(applied(&consumer).await, ["a", "b"]);
    stop.cancel();
    task.await.unwrap().unwrap();
}
