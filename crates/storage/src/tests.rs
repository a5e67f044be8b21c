//! The storage layer on both engines: the PostgreSQL tests use the server named by
//! `CONVERGE_TEST_POSTGRES_URL` (the machine's own by default), each in a fresh schema.

use std::sync::atomic::{AtomicU32, Ordering};

use super::*;

static TABLE: &[Migration] = &[Migration {
    name: "test_0001",
    sqlite: "CREATE TABLE t (n INTEGER PRIMARY KEY, label TEXT)",
    postgres: "CREATE TABLE t (n BIGINT PRIMARY KEY, label TEXT)",
}];

fn postgres_url() -> String {
    std::env::var("CONVERGE_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

/// A fresh place on each engine: a temporary directory, or a schema prefix of its own.
fn places() -> Vec<(Location, Option<tempfile::TempDir>)> {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let dir = tempfile::tempdir().unwrap();
    let prefix = format!(
        "t{}_{}_{}_",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed),
        contracts::now_ms() % 1_000_000
    );
    vec![
        (
            Location::Sqlite {
                dir: dir.path().to_owned(),
            },
            Some(dir),
        ),
        (
            Location::parse(Some(&postgres_url()), Path::new("."), &prefix).unwrap(),
            None,
        ),
    ]
}

#[tokio::test]
async fn writes_and_reads_round_trip_on_each_engine() {
    for (location, _dir) in places() {
        let db = Db::open(&location, "svc", &[TABLE], Mode::Queue)
            .await
            .unwrap();
        let changed: u64 = db
            .write(|tx| {
                tx.execute(
                    &format!("INSERT INTO t (n, label) VALUES {}", sql::values(2, 2)),
                    &[&1i64, &"one", &2i64, &None::<String>],
                )
            })
            .await
            .unwrap();
        assert_eq!(changed, 2);
        let rows: Vec<(i64, Option<String>)> = db
            .read(|tx| tx.query("SELECT n, label FROM t ORDER BY n", &[]))
            .await
            .unwrap();
        assert_eq!(
            rows,
            vec![(1, Some("one".into())), (2, None)],
            "{location:?}"
        );
        let count: i64 = db
            .read(|tx| tx.query_one("SELECT COUNT(*) FROM t WHERE n > $1", &[&0i64]))
            .await
            .unwrap();
        assert_eq!(count, 2);
    }
}

#[tokio::test]
async fn a_database_keeps_the_mode_it_was_created_in() {
    for (location, _dir) in places() {
        let db = Db::open(&location, "svc", &[TABLE], Mode::Queue)
            .await
            .unwrap();
        drop(db);
        Db::open(&location, "svc", &[TABLE], Mode::Queue)
            .await
            .expect("the same mode opens again");
        let err = Db::open(&location, "svc", &[TABLE], Mode::Strong)
            .await
            .unwrap_err();
        assert!(matches!(err, StorageError::ModeMismatch { .. }), "{err}");
    }
}

#[tokio::test]
async fn the_sqlite_file_is_in_wal_mode_with_full_sync() {
    let dir = tempfile::tempdir().unwrap();
    let location = Location::Sqlite {
        dir: dir.path().to_owned(),
    };
    let db = Db::open(&location, "svc", &[TABLE], Mode::Strong)
        .await
        .unwrap();
    let (mode, sync): (String, i64) = db
        .write(|tx| {
            let mode = tx.query_one("PRAGMA journal_mode", &[])?;
            let sync = tx.query_one("PRAGMA synchronous", &[])?;
            Ok::<_, DbError>((mode, sync))
        })
        .await
        .unwrap();
    assert_eq!(mode, "wal");
    assert_eq!(sync, 2, "FULL");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writes_share_transactions_and_fail_alone() {
    for (location, _dir) in places() {
        let db = Db::open(&location, "svc", &[TABLE], Mode::Queue)
            .await
            .unwrap();
        // 300 writers at once, one of which breaks the primary key.
        let writes = (0..300i64).map(|i| {
            let db = db.clone();
            let n = if i == 150 { 3 } else { i };
            tokio::spawn(async move {
                db.write(move |tx| tx.execute("INSERT INTO t (n) VALUES ($1)", &[&n]))
                    .await
            })
        });
        let mut failed = Vec::new();
        for write in writes {
            if let Err(error) = write.await.unwrap() {
                failed.push(error);
            }
        }
        assert_eq!(failed.len(), 1, "only the duplicate fails: {failed:?}");
        assert!(failed[0].is_unique_violation(), "{:?}", failed[0]);
        assert_eq!(failed[0].kind(), ErrorKind::Constraint);
        let count: i64 = db
            .read(|tx| tx.query_one("SELECT COUNT(*) FROM t", &[]))
            .await
            .unwrap();
        assert_eq!(count, 299, "every other write committed ({location:?})");
    }
}

#[tokio::test]
async fn a_failed_write_alone_changes_nothing() {
    for (location, _dir) in places() {
        let db = Db::open(&location, "svc", &[TABLE], Mode::Queue)
            .await
            .unwrap();
        let result: Result<(), DbError> = db
            .write(|tx| {
                tx.execute("INSERT INTO t (n) VALUES (1)", &[])?;
                tx.execute("INSERT INTO t (n) VALUES (1)", &[])?;
                Ok(())
            })
            .await;
        assert!(result.unwrap_err().is_unique_violation());
        let count: i64 = db
            .read(|tx| tx.query_one("SELECT COUNT(*) FROM t", &[]))
            .await
            .unwrap();
        assert_eq!(
            count, 0,
            "the first insert went with the second ({location:?})"
        );
    }
}

#[test]
fn urls_choose_the_engine_and_never_show_a_password() {
    let here = Path::new("./data");
    assert_eq!(
        Location::parse(None, here, "converge_").unwrap(),
        Location::Sqlite { dir: here.into() }
    );
    assert_eq!(
        Location::parse(Some("sqlite://./x"), here, "converge_").unwrap(),
        Location::Sqlite { dir: "./x".into() }
    );
    let pg = Location::parse(
        Some("postgres://ada:hunter2@db.local:5432/shop"),
        here,
        "converge_",
    )
    .unwrap();
    assert_eq!(pg.engine(), Engine::Postgres);
    assert!(!format!("{pg:?}").contains("hunter2"));
    assert!(!pg.describe("stats").contains("hunter2"));
    assert!(pg.describe("stats").contains("converge_stats"));
    assert!(Location::parse(Some("mysql://x"), here, "converge_").is_err());
    assert!(Location::parse(Some("postgres://x/y"), here, "Bad-Prefix").is_err());
}
