//! Each service's own database: one SQLite file per service under the data directory.
//!
//! Two pools share the file. Every write goes through `write`, which has exactly one
//! connection: SQLite allows one writer at a time anyway, and a single connection means a
//! transaction never meets `SQLITE_BUSY` half-way through (which a deferred transaction that
//! reads, then writes, can). Reads go through `read`, which WAL lets run beside the writer.
//!
//! Durability: WAL with `synchronous = FULL`, so a transaction that has committed is on disk
//! (fsynced) before the service answers. Nothing is acknowledged before it is durable.

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

mod group;

pub use group::{BATCH_MAX, Committer, GroupCommit};

use contracts::Mode;
use sqlx::ConnectOptions;
use sqlx::migrate::Migrator;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

pub use sqlx;

/// Readers per service. Reads are short (an index lookup or a small aggregate). Each reader is
/// an OS thread (sqlx runs every SQLite connection on its own), and five services share two
/// cores: more readers only add context switches (measured: 8 readers were no faster than 3).
const READ_CONNECTIONS_MAX: u32 = 4;

/// How long a statement waits for a lock before failing. Only checkpoints and the reader
/// pool's rare schema reads contend with the single writer, so 5 s means something is stuck.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("cannot create data directory {path}: {source}")]
    CreateDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot open database {path}: {source}")]
    Open { path: PathBuf, source: sqlx::Error },
    #[error("cannot migrate database {path}: {source}")]
    Migrate {
        path: PathBuf,
        source: sqlx::migrate::MigrateError,
    },
    #[error(
        "database {path} was created in {found} mode and cannot be served in {wanted} mode; \
         use another --data-dir"
    )]
    ModeMismatch {
        path: PathBuf,
        found: String,
        wanted: Mode,
    },
    #[error(transparent)]
    Sql(#[from] sqlx::Error),
}

/// A service's database. Cheap to clone: the pools and the group-commit queue are handles.
#[derive(Debug, Clone)]
pub struct Db {
    /// The only connection that writes; see the module docs for why there is one.
    pub write: SqlitePool,
    pub read: SqlitePool,
    /// Writes on a request's path go here: they share transactions, and fsyncs, with the
    /// writes of concurrent requests. Needs its [`Committer`] running.
    pub group: GroupCommit,
    path: PathBuf,
}

impl Db {
    /// Opens (creating if needed) `DIR/NAME.db`, runs the service's migrations and checks that
    /// the file belongs to `mode`: a database left by one mode may hold work in flight that
    /// another mode would never finish (events in an outbox, prepared two-phase entries).
    ///
    /// The [`Committer`] must be run (it is one of the service's tasks) for [`Db::group`]
    /// writes to complete; dropped, those writes fail at once rather than hang.
    pub async fn open(
        dir: &Path,
        name: &str,
        migrator: &Migrator,
        mode: Mode,
    ) -> Result<(Self, Committer), StorageError> {
        std::fs::create_dir_all(dir).map_err(|source| StorageError::CreateDir {
            path: dir.to_owned(),
            source,
        })?;
        let path = dir.join(format!("{name}.db"));
        let options = SqliteConnectOptions::from_str("sqlite://")
            .map_err(|source| StorageError::Open {
                path: path.clone(),
                source,
            })?
            .filename(&path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(BUSY_TIMEOUT)
            .log_statements(tracing::log::LevelFilter::Trace);
        let open_err = |source| StorageError::Open {
            path: path.clone(),
            source,
        };
        let write = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            // Never close the writer for being idle: reopening it costs a WAL recovery check.
            .idle_timeout(None)
            .max_lifetime(None)
            .connect_with(options.clone())
            .await
            .map_err(open_err)?;
        migrator
            .run(&write)
            .await
            .map_err(|source| StorageError::Migrate {
                path: path.clone(),
                source,
            })?;
        let read = SqlitePoolOptions::new()
            .max_connections(READ_CONNECTIONS_MAX)
            .connect_with(options.read_only(true))
            .await
            .map_err(open_err)?;
        let (group, committer) = GroupCommit::new(write.clone());
        let db = Self {
            write,
            read,
            group,
            path,
        };
        db.claim_mode(mode).await?;
        Ok((db, committer))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    async fn claim_mode(&self, mode: Mode) -> Result<(), StorageError> {
        sqlx::query(
            "CREATE TABLE IF NOT EXISTS converge_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
        )
        .execute(&self.write)
        .await?;
        sqlx::query("INSERT OR IGNORE INTO converge_meta (key, value) VALUES ('mode', ?)")
            .bind(mode.as_str())
            .execute(&self.write)
            .await?;
        let found: String =
            sqlx::query_scalar("SELECT value FROM converge_meta WHERE key = 'mode'")
                .fetch_one(&self.write)
                .await?;
        if found != mode.as_str() {
            return Err(StorageError::ModeMismatch {
                path: self.path.clone(),
                found,
                wanted: mode,
            });
        }
        Ok(())
    }

    /// Closes both pools, waiting for statements in flight.
    pub async fn close(&self) {
        self.read.close().await;
        self.write.close().await;
    }
}

/// Whether an error is worth retrying: a busy or locked database, or a pool that timed out.
pub fn is_transient(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::PoolTimedOut | sqlx::Error::Io(_) => true,
        sqlx::Error::Database(db) => {
            let code = db.code();
            // SQLITE_BUSY (5) and SQLITE_LOCKED (6), with their extended codes.
            matches!(code.as_deref(), Some("5" | "6" | "261" | "262" | "517"))
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    static NO_MIGRATIONS: Migrator = Migrator::DEFAULT;

    #[tokio::test]
    async fn a_database_keeps_the_mode_it_was_created_in() {
        let dir = tempfile::tempdir().unwrap();
        let (db, _) = Db::open(dir.path(), "svc", &NO_MIGRATIONS, Mode::Queue)
            .await
            .unwrap();
        db.close().await;
        let again = Db::open(dir.path(), "svc", &NO_MIGRATIONS, Mode::Queue).await;
        assert!(again.is_ok());
        again.unwrap().0.close().await;
        let err = Db::open(dir.path(), "svc", &NO_MIGRATIONS, Mode::Strong)
            .await
            .unwrap_err();
        assert!(matches!(err, StorageError::ModeMismatch { .. }), "{err}");
    }

    #[tokio::test]
    async fn the_file_is_in_wal_mode_with_full_sync() {
        let dir = tempfile::tempdir().unwrap();
        let (db, _) = Db::open(dir.path(), "svc", &NO_MIGRATIONS, Mode::Strong)
            .await
            .unwrap();
        let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
            .fetch_one(&db.write)
            .await
            .unwrap();
        let sync: i64 = sqlx::query_scalar("PRAGMA synchronous")
            .fetch_one(&db.write)
            .await
            .unwrap();
        assert_eq!(mode, "wal");
        assert_eq!(sync, 2, "FULL");
    }

    #[tokio::test]
    async fn concurrent_writes_share_transactions_and_fail_alone() {
        let dir = tempfile::tempdir().unwrap();
        let (db, committer) = Db::open(dir.path(), "svc", &NO_MIGRATIONS, Mode::Queue)
            .await
            .unwrap();
        let committer = tokio::spawn(committer.run());
        sqlx::query("CREATE TABLE t (n INTEGER PRIMARY KEY)")
            .execute(&db.write)
            .await
            .unwrap();
        // 200 writers at once, one of which breaks the primary key.
        let writes = (0..200i64).map(|i| {
            let group = db.group.clone();
            let n = if i == 150 { 3 } else { i };
            tokio::spawn(async move {
                group
                    .write(move |conn| {
                        Box::pin(async move {
                            sqlx::query("INSERT INTO t (n) VALUES (?)")
                                .bind(n)
                                .execute(&mut *conn)
                                .await
                                .map(|_| n)
                        })
                    })
                    .await
            })
        });
        let mut failed = 0;
        for write in writes {
            match write.await.unwrap() {
                Ok(_) => {}
                Err(sqlx::Error::Database(_)) => failed += 1,
                Err(other) => panic!("unexpected error {other}"),
            }
        }
        assert_eq!(failed, 1, "only the duplicate fails");
        let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM t")
            .fetch_one(&db.read)
            .await
            .unwrap();
        assert_eq!(count, 199, "every other write committed");
        drop(db);
        committer.await.unwrap().unwrap();
    }
}
