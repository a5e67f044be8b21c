//! Each service's own database: SQLite (a file per service, the default) or PostgreSQL (a
//! schema per service), chosen by a URL.
//!
//! A tour:
//! - [`Db`]: a service's handle. [`Db::write`] runs a plain function on the writer thread,
//!   inside a transaction shared with every write waiting at that moment, and answers once
//!   that transaction is durable (group commit, see [`worker`]). [`Db::read`] runs one on a
//!   reader thread. Both hand the function a [`Tx`].
//! - [`sql`]: SQL written once for both engines: `$1` placeholders, [`Param`]s in, rows out
//!   as tuples ([`FromRow`]), and helpers for set-based statements ([`sql::values`]).
//! - [`Migration`]: a schema step written for each engine; [`Db::open`] applies what is
//!   missing and checks the database belongs to the mode it is opened in.
//! - [`DbError`]: every failure, sorted by what a caller can do ([`ErrorKind`]): retry
//!   (busy, disk full, connection lost), give up (a constraint, a bug), or find out (a commit
//!   whose answer was lost).
//!
//! Durability: a write is answered only once its transaction is committed and synced
//! (SQLite: WAL with `synchronous = FULL`; PostgreSQL: its default `synchronous_commit = on`).

mod conn;
mod error;
mod migrate;
mod postgres;
pub mod sql;
mod sqlite;
pub mod worker;

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use contracts::Mode;
use tokio::sync::{mpsc, oneshot};

pub use conn::Tx;
pub use error::{DbError, ErrorKind};
pub use migrate::Migration;
pub use sql::{Engine, FromRow, Param, Row};
pub use worker::BATCH_MAX;

use crate::conn::Conn;
use crate::worker::{Job, READ_QUEUE_MAX, ReadJob, WRITE_QUEUE_MAX, WriteJob};

/// Reader threads per SQLite database. Reads are short (an index lookup, a small aggregate)
/// and five services share two cores: more readers only add context switches.
const SQLITE_READERS: usize = 3;

/// Reader connections per PostgreSQL schema. Fewer than for SQLite: every one is a server
/// process, and a test machine runs many systems against one server (`max_connections` is
/// 100 by default).
const POSTGRES_READERS: usize = 2;

/// Where a service's database lives.
#[derive(Clone, PartialEq, Eq)]
pub enum Location {
    /// `DIR/<service>.db`, one SQLite file per service.
    Sqlite { dir: PathBuf },
    /// The schema `<prefix><service>` of one PostgreSQL database; the URL may carry a
    /// password, so it is never printed whole.
    Postgres { url: String, schema_prefix: String },
}

impl Location {
    /// `postgres://…` (or `postgresql://…`) is PostgreSQL; `sqlite://DIR`, or no URL at all,
    /// is SQLite in `data_dir`.
    pub fn parse(
        url: Option<&str>,
        data_dir: &Path,
        schema_prefix: &str,
    ) -> Result<Self, StorageError> {
        match url.map(str::trim).filter(|u| !u.is_empty()) {
            None => Ok(Location::Sqlite {
                dir: data_dir.to_owned(),
            }),
            Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
                url.parse::<::postgres::Config>()
                    .map_err(|e| StorageError::BadUrl(format!("{}: {e}", redact(url))))?;
                valid_schema_prefix(schema_prefix)?;
                Ok(Location::Postgres {
                    url: url.to_owned(),
                    schema_prefix: schema_prefix.to_owned(),
                })
            }
            Some(url) => match url.strip_prefix("sqlite://") {
                Some(dir) if !dir.is_empty() => Ok(Location::Sqlite { dir: dir.into() }),
                _ => Err(StorageError::BadUrl(format!(
                    "{}: expected postgres://… or sqlite://DIR",
                    redact(url)
                ))),
            },
        }
    }

    pub fn engine(&self) -> Engine {
        match self {
            Location::Sqlite { .. } => Engine::Sqlite,
            Location::Postgres { .. } => Engine::Postgres,
        }
    }

    /// Where `service`'s data is, for messages: the file, or the schema and server.
    pub fn describe(&self, service: &str) -> String {
        match self {
            Location::Sqlite { dir } => dir.join(format!("{service}.db")).display().to_string(),
            Location::Postgres { url, schema_prefix } => {
                format!("schema {schema_prefix}{service} at {}", redact(url))
            }
        }
    }
}

/// Schema names are built from the prefix; keep it to what needs no quoting anywhere.
fn valid_schema_prefix(prefix: &str) -> Result<(), StorageError> {
    let ok = !prefix.is_empty()
        && prefix.len() <= 40
        && prefix
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && !prefix.starts_with(|c: char| c.is_ascii_digit());
    if ok {
        Ok(())
    } else {
        Err(StorageError::BadUrl(format!(
            "schema prefix {prefix:?}: use 1 to 40 of a-z, 0-9 and _, not starting with a digit"
        )))
    }
}

/// The URL with its password, if any, replaced by `***`.
pub fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let Some((userinfo, host)) = rest.split_once('@') else {
        return url.to_owned();
    };
    match userinfo.split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:***@{host}"),
        None => url.to_owned(),
    }
}

impl fmt::Debug for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::Sqlite { dir } => f.debug_struct("Sqlite").field("dir", dir).finish(),
            Location::Postgres { url, schema_prefix } => f
                .debug_struct("Postgres")
                .field("url", &redact(url))
                .field("schema_prefix", schema_prefix)
                .finish(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("bad database URL {0}")]
    BadUrl(String),
    #[error("cannot create data directory {path}: {source}")]
    CreateDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot open the database ({place}): {source}")]
    Open { place: String, source: DbError },
    #[error(
        "the database ({place}) was created in {found} mode and cannot be served in {wanted} \
         mode; use another --data-dir or schema prefix"
    )]
    ModeMismatch {
        place: String,
        found: String,
        wanted: Mode,
    },
}

/// A service's database. Cheap to clone: the queues to its threads are handles. The threads
/// stop once every clone is dropped.
#[derive(Clone)]
pub struct Db {
    inner: Arc<Inner>,
}

struct Inner {
    engine: Engine,
    place: String,
    writes: mpsc::Sender<Box<dyn Job>>,
    reads: mpsc::Sender<ReadJob>,
}

impl fmt::Debug for Db {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Db")
            .field("engine", &self.inner.engine)
            .field("place", &self.inner.place)
            .finish()
    }
}

impl Db {
    /// Opens (creating if needed) `service`'s database at `location`, applies the
    /// migrations that are missing and checks that it belongs to `mode`, then starts its
    /// writer and reader threads.
    pub async fn open(
        location: &Location,
        service: &str,
        migrations: &[&'static [Migration]],
        mode: Mode,
    ) -> Result<Self, StorageError> {
        let location = location.clone();
        let service = service.to_owned();
        let migrations = migrations.to_vec();
        tokio::task::spawn_blocking(move || open_blocking(&location, &service, &migrations, mode))
            .await
            .map_err(|e| StorageError::Open {
                place: "a database".into(),
                source: DbError::new(ErrorKind::Permanent, format!("opening panicked: {e}")),
            })?
    }

    pub fn engine(&self) -> Engine {
        self.inner.engine
    }

    /// Where the data is: the file, or the schema and server (password left out).
    pub fn place(&self) -> &str {
        &self.inner.place
    }

    /// Runs `write` on the writer thread inside a transaction shared with the writes waiting
    /// beside it, and returns its result once that transaction has committed durably. If
    /// `write` fails, its changes are rolled back and the others' are not; if the transaction
    /// does not commit, every write in it gets the error (see [`ErrorKind`]).
    ///
    /// `write` runs on a thread of its own, so it may block (it is plain SQL), and must not
    /// rely on catching a failed statement and going on: end it with the error instead.
    pub async fn write<T, E, F>(&self, write: F) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<DbError> + Send + 'static,
        F: FnOnce(&mut Tx<'_>) -> Result<T, E> + Send + 'static,
    {
        let (job, answered) = WriteJob::new(write);
        self.inner
            .writes
            .send(Box::new(job))
            .await
            .map_err(|_| E::from(DbError::closed()))?;
        answered.await.unwrap_or_else(|_| Err(E::from(dropped())))
    }

    /// Runs `read` on a reader thread, outside any write transaction.
    pub async fn read<T, E, F>(&self, read: F) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<DbError> + Send + 'static,
        F: FnOnce(&mut Tx<'_>) -> Result<T, E> + Send + 'static,
    {
        let (answer, answered) = oneshot::channel();
        let job: ReadJob = Box::new(move |conn: &mut dyn Conn| {
            let result = read(&mut Tx {
                conn,
                in_write: false,
            });
            let _ = answer.send(result);
        });
        self.inner
            .reads
            .send(job)
            .await
            .map_err(|_| E::from(DbError::closed()))?;
        answered.await.unwrap_or_else(|_| Err(E::from(dropped())))
    }
}

fn dropped() -> DbError {
    DbError::new(
        ErrorKind::Transient,
        "the database dropped the request (it is stopping, or the request panicked: see the log)",
    )
}

fn open_blocking(
    location: &Location,
    service: &str,
    migrations: &[&'static [Migration]],
    mode: Mode,
) -> Result<Db, StorageError> {
    let place = location.describe(service);
    let open_error = |source: DbError| StorageError::Open {
        place: place.clone(),
        source,
    };
    let (mut writer, readers): (Box<dyn Conn>, Vec<Box<dyn Conn>>) = match location {
        Location::Sqlite { dir } => {
            std::fs::create_dir_all(dir).map_err(|source| StorageError::CreateDir {
                path: dir.clone(),
                source,
            })?;
            let path = dir.join(format!("{service}.db"));
            let writer = sqlite::SqliteConn::open(&path, false).map_err(open_error)?;
            // Readers open after the writer has made the file (and put it in WAL mode).
            let readers = (0..SQLITE_READERS)
                .map(|_| {
                    sqlite::SqliteConn::open(&path, true).map(|c| Box::new(c) as Box<dyn Conn>)
                })
                .collect::<Result<_, _>>()
                .map_err(open_error)?;
            (Box::new(writer), readers)
        }
        Location::Postgres { url, schema_prefix } => {
            let target = postgres::Target {
                config: url.parse().map_err(|e: ::postgres::Error| {
                    StorageError::BadUrl(format!("{}: {e}", redact(url)))
                })?,
                schema: format!("{schema_prefix}{service}"),
                application_name: format!("converge-{service}"),
            };
            postgres::create_schema(&target, lock_key(&place)).map_err(open_error)?;
            let writer = postgres::PgConn::open(target.clone()).map_err(open_error)?;
            let readers = (0..POSTGRES_READERS)
                .map(|_| {
                    postgres::PgConn::open(target.clone()).map(|c| Box::new(c) as Box<dyn Conn>)
                })
                .collect::<Result<_, _>>()
                .map_err(open_error)?;
            (Box::new(writer), readers)
        }
    };
    let lock_key = lock_key(&place);
    match migrate::run(&mut *writer, migrations, mode, lock_key).map_err(open_error)? {
        Ok(()) => {}
        Err(found) => {
            return Err(StorageError::ModeMismatch {
                place,
                found,
                wanted: mode,
            });
        }
    }
    let (writes, write_queue) = mpsc::channel(WRITE_QUEUE_MAX);
    let (reads, read_queue) = mpsc::channel(READ_QUEUE_MAX);
    spawn(format!("{service}-writer"), move || {
        worker::run_writer(writer, write_queue)
    });
    let read_queue = Arc::new(Mutex::new(read_queue));
    for (i, reader) in readers.into_iter().enumerate() {
        let queue = read_queue.clone();
        spawn(format!("{service}-reader-{i}"), move || {
            worker::run_reader(reader, queue)
        });
    }
    Ok(Db {
        inner: Arc::new(Inner {
            engine: location.engine(),
            place,
            writes,
            reads,
        }),
    })
}

fn spawn(name: String, work: impl FnOnce() + Send + 'static) {
    std::thread::Builder::new()
        .name(name)
        .spawn(work)
        .expect("the OS gives a thread");
}

/// A stable number per database for PostgreSQL's advisory lock around migrations (FNV-1a).
fn lock_key(place: &str) -> i64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in place.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    hash as i64
}

#[cfg(test)]
mod tests;
