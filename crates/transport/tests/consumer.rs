//! The consumer against the real embedded transport, on each engine: a producer's outbox in
//! one database, served over HTTP on a free port, read by consumers that apply into another.
//! The PostgreSQL cases use the server named by `CONVERGE_TEST_POSTGRES_URL` (the machine's
//! own by default), each in schemas of its own.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::Duration;

use contracts::Mode;
use contracts::events::{Cursor, Event, EventBody};
use contracts::internal::ConsumerState;
use runtime::{Metrics, Peer};
use storage::{Db, DbError, ErrorKind, Location, Migration, Tx};
use tokio_util::sync::CancellationToken;
use transport::{
    Apply, ApplyError, Consumer, ConsumerConfig, Control, HttpFeed, Outbox, Schedule, inbox,
};

static APPLIED: &[Migration] = &[Migration {
    name: "test_applied",
    // No primary key: a second apply of the same event would show as a second row.
    sqlite: "CREATE TABLE applied (order_id TEXT NOT NULL, seq INTEGER NOT NULL)",
    postgres: "CREATE TABLE applied (order_id TEXT NOT NULL, seq BIGINT NOT NULL)",
}];

/// Records each order it applies. An order id starting with "poison" fails permanently while
/// `cured` is false; one starting with "flaky" fails transiently while `flaky` is true.
#[derive(Clone, Default)]
struct Recorder {
    cured: Arc<AtomicBool>,
    flaky: Arc<AtomicBool>,
}

impl Apply for Recorder {
    type Context = ();
    type Output = ();

    fn apply(&self, tx: &mut Tx<'_>, events: &[Event], (): ()) -> Result<(), ApplyError> {
        for event in events {
            let EventBody::OrderPlaced { order_id, .. } = transport::consumer::decode(event)?
            else {
                continue;
            };
            if order_id.starts_with("poison") && !self.cured.load(Ordering::Relaxed) {
                return Err(ApplyError::Permanent(anyhow::anyhow!(
                    "cannot apply {order_id}"
                )));
            }
            if order_id.starts_with("flaky") && self.flaky.load(Ordering::Relaxed) {
                return Err(DbError::new(ErrorKind::Transient, "disk full (simulated)").into());
            }
            tx.execute(
                "INSERT INTO applied (order_id, seq) VALUES ($1, $2)",
                &[&order_id, &event.seq],
            )?;
        }
        Ok(())
    }

    fn committed(&self, (): ()) {}
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
        let body = body.clone();
        producer
            .write(move |tx| Outbox::append_all(tx, &[body], contracts::now_ms()))
            .await
            .unwrap();
        outbox.published();
    }
}

async fn applied(db: &Db) -> Vec<String> {
    db.read(|tx| tx.query::<String>("SELECT order_id FROM applied ORDER BY seq", &[]))
        .await
        .unwrap()
}

async fn position(db: &Db) -> Cursor {
    db.read(|tx| inbox::position(tx, "order")).await.unwrap()
}

async fn wait_until_at(db: &Db, head: Cursor) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while position(db).await < head {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the consumer never reached {head}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

struct Running {
    control: Control,
    stop: CancellationToken,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl Running {
    async fn stop(self) {
        self.stop.cancel();
        self.task.await.unwrap().unwrap();
    }
}

fn start_consumer(consumer: &Db, url: &str, recorder: &Recorder, instance: &str) -> Running {
    let peer = Peer::new(
        "order",
        url,
        runtime::peer::http_client(),
        "secret-of-sixteen-bytes",
        Duration::from_secs(2),
        runtime::Delay::default(),
    );
    let mut config = ConsumerConfig::new(Schedule::Continuous {
        wait: Duration::from_millis(200),
    });
    config.backoff_min = Duration::from_millis(1);
    config.backoff_max = Duration::from_millis(5);
    let (consumer, control) = Consumer::new(
        consumer.clone(),
        HttpFeed::new("order", peer, "consumer"),
        recorder.clone(),
        config,
        Metrics::new("test"),
        instance,
    );
    let stop = CancellationToken::new();
    let task = tokio::spawn(consumer.run(stop.clone()));
    Running {
        control,
        stop,
        task,
    }
}

/// Each engine: a place for a producer's and a consumer's databases.
fn locations() -> Vec<(Location, Option<tempfile::TempDir>)> {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let dir = tempfile::tempdir().unwrap();
    let url = std::env::var("CONVERGE_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    let random = uuid::Uuid::new_v4().simple().to_string();
    let prefix = format!(
        "t{}_{}_{}_",
        NEXT.fetch_add(1, Ordering::Relaxed),
        std::process::id(),
        &random[..8]
    );
    vec![
        (
            Location::Sqlite {
                dir: dir.path().to_owned(),
            },
            Some(dir),
        ),
        (
            Location::parse(Some(&url), Path::new("."), &prefix).unwrap(),
            None,
        ),
    ]
}

/// A producer and a consumer database at `location`, and the producer's outbox.
async fn databases(location: &Location) -> (Db, Db, Outbox) {
    let producer = Db::open(location, "producer", &[transport::MIGRATIONS], Mode::Queue)
        .await
        .unwrap();
    let consumer = Db::open(
        location,
        "consumer",
        &[transport::MIGRATIONS, APPLIED],
        Mode::Queue,
    )
    .await
    .unwrap();
    let outbox = Outbox::new(producer.clone());
    (producer, consumer, outbox)
}

/// Serves the outbox's feed on a free port until the test ends; its URL.
async fn serve_feed(outbox: &Outbox, producer: &Db) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    serve_feed_on(listener, outbox, producer);
    url
}

fn serve_feed_on(listener: tokio::net::TcpListener, outbox: &Outbox, producer: &Db) {
    let stop = CancellationToken::new();
    let server = runtime::http::serve_task(
        listener,
        runtime::http::service_router(
            axum::Router::new(),
            transport::feed::router(outbox.clone(), producer.clone()),
            "secret-of-sixteen-bytes",
            Metrics::new("p"),
            runtime::http::Knobs::default(),
        ),
        stop.clone(),
    );
    tokio::spawn(async move { runtime::supervise::run_tasks(vec![server], stop).await });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_apply_once_in_order_and_a_poison_event_is_set_aside() {
    for (location, _dir) in locations() {
        let (producer, consumer, outbox) = databases(&location).await;
        let url = serve_feed(&outbox, &producer).await;
        // The poison event sits in the middle of a batch: the events around it go through.
        produce(
            &producer,
            &outbox,
            &[placed("a"), placed("b"), placed("poison-1"), placed("c")],
        )
        .await;
        let recorder = Recorder::default();
        let running = start_consumer(&consumer, &url, &recorder, "one");
        wait_until_at(&consumer, outbox.head().await.unwrap()).await;
        assert_eq!(applied(&consumer).await, ["a", "b", "c"], "{location:?}");
        let dead = consumer
            .read(|tx| inbox::dead_letters(tx, true))
            .await
            .unwrap();
        assert_eq!(dead.len(), 1, "{dead:?}");
        assert!(
            dead[0].error.contains("cannot apply poison-1"),
            "{}",
            dead[0].error
        );
        assert_eq!(dead[0].attempts, 5);

        // An unreadable body is set aside the same way.
        producer
            .write(|tx| {
                tx.execute(
                    "INSERT INTO outbox (event_id, recorded_at_ms, body) VALUES ('evt_bad', 0, '{\"type\":\"Nonsense\"}')",
                    &[],
                )
            })
            .await
            .unwrap();
        outbox.published();
        produce(&producer, &outbox, &[placed("d")]).await;
        wait_until_at(&consumer, outbox.head().await.unwrap()).await;
        assert_eq!(applied(&consumer).await, ["a", "b", "c", "d"]);
        let dead = consumer
            .read(|tx| inbox::dead_letters(tx, true))
            .await
            .unwrap();
        assert_eq!(dead.len(), 2);

        // Once the cause is fixed, the operator replays the poison event: applied once, and
        // off the list; the unreadable one fails again and stays.
        recorder.cured.store(true, Ordering::Relaxed);
        running
            .control
            .replay(dead[0].id)
            .await
            .expect("applies now");
        assert!(running.control.replay(dead[1].id).await.is_err());
        assert_eq!(applied(&consumer).await, ["a", "b", "poison-1", "c", "d"]);
        let dead = consumer
            .read(|tx| inbox::dead_letters(tx, false))
            .await
            .unwrap();
        assert_eq!(dead.len(), 1, "{dead:?}");
        running.stop().await;

        // A new consumer resumes from the stored position: nothing is applied twice.
        produce(&producer, &outbox, &[placed("e")]).await;
        let running = start_consumer(&consumer, &url, &recorder, "one");
        wait_until_at(&consumer, outbox.head().await.unwrap()).await;
        assert_eq!(
            applied(&consumer).await,
            ["a", "b", "poison-1", "c", "d", "e"]
        );
        running.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transient_failure_is_retried_for_as_long_as_it_lasts_and_said() {
    for (location, _dir) in locations() {
        let (producer, consumer, outbox) = databases(&location).await;
        let url = serve_feed(&outbox, &producer).await;
        let recorder = Recorder::default();
        recorder.flaky.store(true, Ordering::Relaxed);
        produce(
            &producer,
            &outbox,
            &[placed("a"), placed("flaky-1"), placed("b")],
        )
        .await;
        let running = start_consumer(&consumer, &url, &recorder, "one");
        // Well past the five tries a permanent failure gets: still retrying, and saying so.
        tokio::time::sleep(Duration::from_millis(500)).await;
        let status = running.control.status().await.unwrap();
        assert_eq!(status.state, ConsumerState::Stuck, "{status:?}");
        assert!(status.stuck_since_ms.is_some());
        assert!(
            status
                .last_error
                .as_deref()
                .unwrap_or("")
                .contains("disk full"),
            "{status:?}"
        );
        assert!(
            applied(&consumer).await.is_empty(),
            "the batch is applied whole or not at all"
        );
        let dead = consumer
            .read(|tx| inbox::dead_letters(tx, false))
            .await
            .unwrap();
        assert!(
            dead.is_empty(),
            "a transient failure is never a dead letter: {dead:?}"
        );

        // The fault passes: everything applies, once, in order, and the consumer says so.
        recorder.flaky.store(false, Ordering::Relaxed);
        wait_until_at(&consumer, outbox.head().await.unwrap()).await;
        assert_eq!(
            applied(&consumer).await,
            ["a", "flaky-1", "b"],
            "{location:?}"
        );
        let status = running.control.status().await.unwrap();
        assert_eq!(status.state, ConsumerState::Running, "{status:?}");
        running.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_consumer_applies_nothing_until_resumed() {
    let (location, _dir) = locations().remove(0);
    let (producer, consumer, outbox) = databases(&location).await;
    let url = serve_feed(&outbox, &producer).await;
    let recorder = Recorder::default();
    let running = start_consumer(&consumer, &url, &recorder, "one");
    running.control.pause();
    tokio::time::sleep(Duration::from_millis(300)).await;
    produce(&producer, &outbox, &[placed("a")]).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(applied(&consumer).await.is_empty());
    assert_eq!(
        running.control.status().await.unwrap().state,
        ConsumerState::Paused
    );
    running.control.resume();
    wait_until_at(&consumer, outbox.head().await.unwrap()).await;
    assert_eq!(applied(&consumer).await, ["a"]);
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_feed_that_is_down_is_waited_for() {
    let (location, _dir) = locations().remove(0);
    let (producer, consumer, outbox) = databases(&location).await;
    produce(&producer, &outbox, &[placed("a"), placed("b")]).await;
    // Reserve a port, start the consumer against it while nothing listens, then serve.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let recorder = Recorder::default();
    let running = start_consumer(&consumer, &format!("http://{addr}"), &recorder, "one");
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(applied(&consumer).await.is_empty());
    assert_eq!(
        running.control.status().await.unwrap().state,
        ConsumerState::Stuck,
        "a feed that is down is a stuck consumer"
    );
    let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
    serve_feed_on(listener, &outbox, &producer);
    wait_until_at(&consumer, outbox.head().await.unwrap()).await;
    assert_eq!(applied(&consumer).await, ["a", "b"]);
    running.stop().await;
}

/// Two instances of a consumer over one PostgreSQL database: one applies, the other stands by;
/// when the first stops, the second takes over from the stored position. Nothing is applied
/// twice, nothing skipped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_share_a_feed_without_applying_twice() {
    let (location, _dir) = locations().remove(1);
    let (producer, consumer, outbox) = databases(&location).await;
    let url = serve_feed(&outbox, &producer).await;
    let recorder = Recorder::default();
    let first = start_consumer(&consumer, &url, &recorder, "first");
    let second = start_consumer(&consumer, &url, &recorder, "second");
    let names: Vec<String> = (0..40).map(|i| format!("o{i:02}")).collect();
    for (i, name) in names.iter().enumerate() {
        produce(&producer, &outbox, &[placed(name)]).await;
        if i == 20 {
            // The active one stops (releasing its lease); the other carries on.
            let (a, b) = (
                first.control.status().await.unwrap().state,
                second.control.status().await.unwrap().state,
            );
            assert!(
                matches!(
                    (a, b),
                    (ConsumerState::Running, ConsumerState::Standby)
                        | (ConsumerState::Standby, ConsumerState::Running)
                ),
                "one runs and one stands by: {a:?} {b:?}"
            );
        }
    }
    wait_until_at(&consumer, outbox.head().await.unwrap()).await;
    first.stop().await;
    let more: Vec<String> = (40..60).map(|i| format!("o{i:02}")).collect();
    for name in &more {
        produce(&producer, &outbox, &[placed(name)]).await;
    }
    wait_until_at(&consumer, outbox.head().await.unwrap()).await;
    let expected: Vec<String> = names.into_iter().chain(more).collect();
    assert_eq!(applied(&consumer).await, expected);
    second.stop().await;
}

/// On PostgreSQL, a transaction that took an earlier sequence number may commit after one that
/// took a later one. The feed must never let a consumer pass the earlier event.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_committed_out_of_sequence_order_are_never_skipped() {
    let (location, _dir) = locations().remove(1);
    let Location::Postgres {
        url: pg_url,
        schema_prefix,
    } = &location
    else {
        unreachable!("the second location is PostgreSQL")
    };
    let (producer, consumer, outbox) = databases(&location).await;
    let feed_url = serve_feed(&outbox, &producer).await;
    let recorder = Recorder::default();
    let running = start_consumer(&consumer, &feed_url, &recorder, "one");

    // Transaction 1 takes a sequence number and waits; transaction 2 takes the next, commits.
    let schema = format!("{schema_prefix}producer");
    let (pg_url, schema2) = (pg_url.clone(), schema.clone());
    let (hold, held) = std::sync::mpsc::channel::<()>();
    let (inserted, has_inserted) = std::sync::mpsc::channel::<()>();
    let slow = std::thread::spawn(move || {
        let mut client = postgres::Client::connect(&pg_url, postgres::NoTls).unwrap();
        client
            .batch_execute(&format!("SET search_path TO \"{schema2}\""))
            .unwrap();
        let mut tx = client.transaction().unwrap();
        tx.execute(
            "INSERT INTO outbox (event_id, recorded_at_ms, body) VALUES ('evt_slow', 0, $1)",
            &[&serde_json::to_string(&placed("first-seq")).unwrap()],
        )
        .unwrap();
        inserted.send(()).unwrap();
        held.recv().unwrap();
        tx.commit().unwrap();
    });
    has_inserted.recv().unwrap();
    produce(&producer, &outbox, &[placed("second-seq")]).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        applied(&consumer).await.is_empty(),
        "the later event waits for the earlier transaction"
    );
    hold.send(()).unwrap();
    slow.join().unwrap();
    outbox.published();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while applied(&consumer).await.len() < 2 {
        assert!(tokio::time::Instant::now() < deadline, "both events arrive");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let mut got = applied(&consumer).await;
    got.sort();
    assert_eq!(got, ["first-seq", "second-seq"]);
    running.stop().await;
    let _ = schema;
}
