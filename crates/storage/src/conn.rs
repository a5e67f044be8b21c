//! One connection, whichever the engine, and [`Tx`], what a service's SQL runs on.

use crate::error::DbError;
use crate::sql::{Engine, FromRow, Param, Row, no_row};

/// What the worker threads need of a connection. Implemented by each engine.
pub(crate) trait Conn: Send {
    fn engine(&self) -> Engine;

    /// Runs a statement; returns the rows it changed.
    fn execute(&mut self, sql: &str, params: &[&dyn Param]) -> Result<u64, DbError>;

    /// Runs a query and hands each row to `each`.
    fn query_each(
        &mut self,
        sql: &str,
        params: &[&dyn Param],
        each: &mut dyn FnMut(Row<'_>) -> Result<(), DbError>,
    ) -> Result<(), DbError>;

    /// Runs transaction control (`BEGIN`, `SAVEPOINT s`, `COMMIT`, …).
    fn control(&mut self, sql: &str) -> Result<(), DbError>;

    /// Whether the transaction begun with `begin` is still open and usable. SQLite rolls a
    /// whole transaction back by itself on some errors (disk full, I/O), and a PostgreSQL
    /// transaction in which a statement failed can only roll back: the group commit must
    /// know, or it would tell callers their writes committed.
    fn transaction_usable(&mut self) -> bool;

    /// Starts a write transaction.
    fn begin(&mut self) -> Result<(), DbError>;

    /// Gets ready for work after a failure: reconnects if the connection was lost.
    fn recover(&mut self);
}

/// Where a service's SQL runs: inside the shared write transaction (for [`Db::write`]) or on
/// a reader (for [`Db::read`]).
///
/// [`Db::write`]: crate::Db::write
/// [`Db::read`]: crate::Db::read
pub struct Tx<'c> {
    pub(crate) conn: &'c mut dyn Conn,
    /// In a write, every statement first checks that the shared transaction is still open:
    /// after SQLite rolled it back by itself, a statement would otherwise run, and commit, on
    /// its own.
    pub(crate) in_write: bool,
}

impl Tx<'_> {
    pub fn engine(&self) -> Engine {
        self.conn.engine()
    }

    /// Runs a statement; returns how many rows it changed.
    pub fn execute(&mut self, sql: &str, params: &[&dyn Param]) -> Result<u64, DbError> {
        self.check()?;
        self.conn.execute(sql, params)
    }

    /// Every row of a query.
    pub fn query<T: FromRow>(
        &mut self,
        sql: &str,
        params: &[&dyn Param],
    ) -> Result<Vec<T>, DbError> {
        self.check()?;
        let mut rows = Vec::new();
        self.conn.query_each(sql, params, &mut |row| {
            rows.push(T::from_row(&row)?);
            Ok(())
        })?;
        Ok(rows)
    }

    /// The first row of a query, if there is one.
    pub fn query_opt<T: FromRow>(
        &mut self,
        sql: &str,
        params: &[&dyn Param],
    ) -> Result<Option<T>, DbError> {
        self.check()?;
        let mut first = None;
        self.conn.query_each(sql, params, &mut |row| {
            if first.is_none() {
                first = Some(T::from_row(&row)?);
            }
            Ok(())
        })?;
        Ok(first)
    }

    /// The first row of a query that always returns one (an aggregate, a `RETURNING`).
    pub fn query_one<T: FromRow>(
        &mut self,
        sql: &str,
        params: &[&dyn Param],
    ) -> Result<T, DbError> {
        self.query_opt(sql, params)?.ok_or_else(|| no_row(sql))
    }

    fn check(&mut self) -> Result<(), DbError> {
        if self.in_write && !self.conn.transaction_usable() {
            return Err(DbError::rolled_back(
                "the engine ended the transaction after an error",
            ));
        }
        Ok(())
    }
}
