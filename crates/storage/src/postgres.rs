//! PostgreSQL: a schema per service in one database, one connection per worker thread.
//!
//! The worker threads use the synchronous client (`postgres`, which drives `tokio-postgres`
//! on a small runtime of its own), so a service's SQL is the same plain function on either
//! engine. A lost connection is noticed by the error it causes; the next use reconnects.

use std::collections::HashMap;
use std::time::Duration;

use postgres::{Client, NoTls, Statement};

use crate::conn::Conn;
use crate::error::{DbError, ErrorKind};
use crate::sql::{Engine, Param, Row, RowRef};

/// How long connecting may take before it counts as the server being down.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Prepared statements kept per connection: as for SQLite, set-based statements vary with
/// the batch's size. Past this, the cache starts again (statements are cheap to re-prepare).
const STATEMENT_CACHE_MAX: usize = 512;

/// Where and as whom to connect, and which schema is the service's own.
#[derive(Clone)]
pub(crate) struct Target {
    pub config: postgres::Config,
    pub schema: String,
    pub application_name: String,
}

pub(crate) struct PgConn {
    target: Target,
    client: Option<Client>,
    statements: HashMap<String, Statement>,
    /// A statement failed inside the current transaction: PostgreSQL will refuse everything
    /// until a rollback (to a savepoint), and a `COMMIT` would quietly roll back.
    failed: bool,
    in_transaction: bool,
}

impl PgConn {
    pub(crate) fn open(target: Target) -> Result<Self, DbError> {
        let mut conn = Self {
            target,
            client: None,
            statements: HashMap::new(),
            failed: false,
            in_transaction: false,
        };
        conn.client()?;
        Ok(conn)
    }

    fn client(&mut self) -> Result<&mut Client, DbError> {
        if self.client.as_ref().is_some_and(Client::is_closed) {
            self.client = None;
        }
        if self.client.is_none() {
            let mut config = self.target.config.clone();
            config
                .connect_timeout(CONNECT_TIMEOUT)
                .application_name(&self.target.application_name)
                .keepalives(true);
            let mut client = config.connect(NoTls)?;
            client.batch_execute(&format!(
                "SET search_path TO {}",
                quote_ident(&self.target.schema)
            ))?;
            self.statements.clear();
            self.client = Some(client);
        }
        Ok(self.client.as_mut().expect("connected above"))
    }

    fn statement(&mut self, sql: &str) -> Result<Statement, DbError> {
        if let Some(statement) = self.statements.get(sql) {
            return Ok(statement.clone());
        }
        let statement = self.client()?.prepare(sql)?;
        if self.statements.len() >= STATEMENT_CACHE_MAX {
            self.statements.clear();
        }
        self.statements.insert(sql.to_owned(), statement.clone());
        Ok(statement)
    }

    /// Notes a failed statement: inside a transaction, it is now unusable; a connection
    /// error drops the client, so the next use reconnects.
    fn failed<T>(&mut self, result: Result<T, DbError>) -> Result<T, DbError> {
        if let Err(error) = &result {
            if self.in_transaction {
                self.failed = true;
            }
            if self.client.as_ref().is_none_or(Client::is_closed) {
                self.client = None;
                self.in_transaction = false;
            }
            tracing::trace!(%error, "statement failed");
        }
        result
    }
}

fn bind<'a>(params: &'a [&'a dyn Param]) -> Vec<&'a (dyn postgres::types::ToSql + Sync)> {
    params.iter().map(|p| p.as_postgres()).collect()
}

impl Conn for PgConn {
    fn engine(&self) -> Engine {
        Engine::Postgres
    }

    fn execute(&mut self, sql: &str, params: &[&dyn Param]) -> Result<u64, DbError> {
        let result = self.statement(sql).and_then(|statement| {
            self.client()?
                .execute(&statement, &bind(params))
                .map_err(DbError::from)
        });
        self.failed(result)
    }

    fn query_each(
        &mut self,
        sql: &str,
        params: &[&dyn Param],
        each: &mut dyn FnMut(Row<'_>) -> Result<(), DbError>,
    ) -> Result<(), DbError> {
        let result = self.statement(sql).and_then(|statement| {
            let rows = self.client()?.query(&statement, &bind(params))?;
            rows.iter()
                .try_for_each(|row| each(Row(RowRef::Postgres(row))))
        });
        self.failed(result)
    }

    fn control(&mut self, sql: &str) -> Result<(), DbError> {
        let result = self
            .client()
            .and_then(|client| Ok(client.batch_execute(sql)?));
        let result = self.failed(result);
        if result.is_ok() {
            match sql {
                "COMMIT" | "ROLLBACK" => {
                    self.in_transaction = false;
                    self.failed = false;
                }
                _ if sql.starts_with("ROLLBACK TO") => self.failed = false,
                _ => {}
            }
        }
        result
    }

    fn transaction_usable(&mut self) -> bool {
        self.in_transaction && !self.failed && self.client.is_some()
    }

    fn begin(&mut self) -> Result<(), DbError> {
        self.control("BEGIN")?;
        self.in_transaction = true;
        self.failed = false;
        Ok(())
    }

    fn recover(&mut self) {
        if self.in_transaction {
            let _ = self.control("ROLLBACK");
        }
        self.in_transaction = false;
        self.failed = false;
    }
}

/// A schema name as an SQL identifier, quoted.
pub(crate) fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Creates the service's schema if it is not there. Under an advisory lock: two instances
/// starting at once would otherwise race to create it, and one would fail.
pub(crate) fn create_schema(target: &Target, lock_key: i64) -> Result<(), DbError> {
    let mut config = target.config.clone();
    config.connect_timeout(CONNECT_TIMEOUT);
    let mut client = config.connect(NoTls)?;
    let mut tx = client.transaction()?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&lock_key])?;
    tx.batch_execute(&format!(
        "CREATE SCHEMA IF NOT EXISTS {}",
        quote_ident(&target.schema)
    ))?;
    tx.commit()?;
    Ok(())
}

/// The error for a `COMMIT` that did not succeed: an error the server answered means the
/// transaction did not commit; a lost connection leaves the outcome unknown.
pub(crate) fn commit_error(error: DbError) -> DbError {
    let answered = error.code().is_some() && error.kind() != ErrorKind::Unknown;
    error.at_commit(answered)
}
