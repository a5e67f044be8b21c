//! SQLite: one file per service, opened by the writer thread and by each reader thread.
//!
//! Durability: WAL with `synchronous = FULL`, so a transaction that has committed is on disk
//! (fsynced) before the service answers. Statements are prepared once per connection and
//! kept (rusqlite's statement cache), so the hot paths pay no parsing.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::OpenFlags;

use crate::conn::Conn;
use crate::error::DbError;
use crate::sql::{Engine, Param, Row, RowRef, to_sqlite};

/// How long a statement waits for a lock before failing. Only checkpoints and a reader's rare
/// schema read contend with the single writer, so 5 s means something is stuck.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Prepared statements kept per connection: the fixed statements, and the set-based ones of
/// small batches.
const STATEMENT_CACHE_MAX: usize = 512;

/// Statements with more parameters than this are prepared at each use, not kept. They are
/// set-based statements over a batch, one per batch size, each a program as long as its
/// batch: kept, they filled the cache over minutes as new sizes came (tens of MiB per
/// connection, the memory growth `converge soak` showed). Each use parses it again, a cost
/// its whole batch shares.
const CACHED_PARAMS_MAX: usize = 32;

/// Placeholder rewrites kept per connection, for the same reason.
const REWRITES_MAX: usize = 1_024;

pub(crate) struct SqliteConn {
    conn: rusqlite::Connection,
    /// `$N` → `?N` rewrites, by the statement as written.
    rewrites: HashMap<String, String>,
    path: PathBuf,
    read_only: bool,
}

impl SqliteConn {
    pub(crate) fn open(path: &Path, read_only: bool) -> Result<Self, DbError> {
        let flags = if read_only {
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX
        } else {
            OpenFlags::SQLITE_OPEN_READ_WRITE
                | OpenFlags::SQLITE_OPEN_CREATE
                | OpenFlags::SQLITE_OPEN_NO_MUTEX
        };
        let conn = rusqlite::Connection::open_with_flags(path, flags)?;
        conn.busy_timeout(BUSY_TIMEOUT)?;
        if !read_only {
            // WAL lets readers run beside the writer; FULL syncs the WAL at every commit.
            conn.pragma_update(None, "journal_mode", "WAL")?;
        }
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE_MAX);
        Ok(Self {
            conn,
            rewrites: HashMap::new(),
            path: path.to_owned(),
            read_only,
        })
    }

    /// Runs `f` on `sql` prepared: from the cache, unless it is a large set-based statement
    /// (see [`CACHED_PARAMS_MAX`]).
    fn with_statement<T>(
        &mut self,
        sql: &str,
        params: &[&dyn Param],
        f: impl FnOnce(&mut rusqlite::Statement<'_>) -> Result<T, DbError>,
    ) -> Result<T, DbError> {
        if params.len() > CACHED_PARAMS_MAX {
            let mut statement = self.conn.prepare(&to_sqlite(sql))?;
            return f(&mut statement);
        }
        let sql = Self::rewrite(&mut self.rewrites, sql);
        let mut statement = self.conn.prepare_cached(sql)?;
        f(&mut statement)
    }

    fn rewrite<'s>(rewrites: &'s mut HashMap<String, String>, sql: &str) -> &'s str {
        if !rewrites.contains_key(sql) {
            if rewrites.len() >= REWRITES_MAX {
                rewrites.clear();
            }
            rewrites.insert(sql.to_owned(), to_sqlite(sql).into_owned());
        }
        &rewrites[sql]
    }
}

fn bind(params: &[&dyn Param]) -> impl rusqlite::Params {
    rusqlite::params_from_iter(params.iter().map(|p| p.as_sqlite()))
}

impl Conn for SqliteConn {
    fn engine(&self) -> Engine {
        Engine::Sqlite
    }

    fn execute(&mut self, sql: &str, params: &[&dyn Param]) -> Result<u64, DbError> {
        self.with_statement(sql, params, |statement| {
            Ok(statement.execute(bind(params))? as u64)
        })
    }

    fn query_each(
        &mut self,
        sql: &str,
        params: &[&dyn Param],
        each: &mut dyn FnMut(Row<'_>) -> Result<(), DbError>,
    ) -> Result<(), DbError> {
        self.with_statement(sql, params, |statement| {
            let mut rows = statement.query(bind(params))?;
            while let Some(row) = rows.next()? {
                each(Row(RowRef::Sqlite(row)))?;
            }
            Ok(())
        })
    }

    fn control(&mut self, sql: &str) -> Result<(), DbError> {
        Ok(self.conn.execute_batch(sql)?)
    }

    fn transaction_usable(&mut self) -> bool {
        !self.conn.is_autocommit()
    }

    fn begin(&mut self) -> Result<(), DbError> {
        // IMMEDIATE takes the write lock now, so no statement of the batch meets SQLITE_BUSY
        // half-way (another process may hold the file: a second instance, a backup).
        self.control("BEGIN IMMEDIATE")
    }

    fn recover(&mut self) {
        if !self.conn.is_autocommit() {
            let _ = self.conn.execute_batch("ROLLBACK");
        }
        tracing::trace!(path = %self.path.display(), read_only = self.read_only, "connection ready again");
    }
}
