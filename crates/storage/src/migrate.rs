//! Schema migrations, each written for both engines, and the mode a database belongs to.

use contracts::{Mode, now_ms};

use crate::conn::{Conn, Tx};
use crate::error::DbError;
use crate::sql::Engine;

/// One step of a schema, written for each engine: the two differ in types (`INTEGER PRIMARY
/// KEY AUTOINCREMENT` against `BIGINT GENERATED … AS IDENTITY`) and little else.
#[derive(Debug, Clone, Copy)]
pub struct Migration {
    /// Unique across every list a database runs; applied in the order given.
    pub name: &'static str,
    pub sqlite: &'static str,
    pub postgres: &'static str,
}

/// Applies what is missing, each migration in its own transaction, and checks that the
/// database belongs to `mode`. On PostgreSQL an advisory lock keeps two instances starting at
/// once from applying the same step twice.
pub(crate) fn run(
    conn: &mut dyn Conn,
    lists: &[&[Migration]],
    mode: Mode,
    lock_key: i64,
) -> Result<Result<(), String>, DbError> {
    let engine = conn.engine();
    if engine == Engine::Postgres {
        conn.execute("SELECT pg_advisory_lock($1)", &[&lock_key])?;
    }
    let result = apply(conn, lists, mode);
    if engine == Engine::Postgres {
        conn.execute("SELECT pg_advisory_unlock($1)", &[&lock_key])?;
    }
    result
}

fn apply(
    conn: &mut dyn Conn,
    lists: &[&[Migration]],
    mode: Mode,
) -> Result<Result<(), String>, DbError> {
    conn.control(
        "CREATE TABLE IF NOT EXISTS converge_migrations (
            name TEXT PRIMARY KEY,
            applied_at_ms BIGINT NOT NULL
        );
        CREATE TABLE IF NOT EXISTS converge_meta (
            key TEXT PRIMARY KEY,
            value TEXT NOT NULL
        )",
    )?;
    for migration in lists.iter().flat_map(|list| list.iter()) {
        let mut tx = Tx {
            conn: &mut *conn,
            in_write: false,
        };
        let applied: Option<String> = tx.query_opt(
            "SELECT name FROM converge_migrations WHERE name = $1",
            &[&migration.name],
        )?;
        if applied.is_some() {
            continue;
        }
        conn.begin()?;
        let sql = match conn.engine() {
            Engine::Sqlite => migration.sqlite,
            Engine::Postgres => migration.postgres,
        };
        let step = conn.control(sql).and_then(|()| {
            conn.execute(
                "INSERT INTO converge_migrations (name, applied_at_ms) VALUES ($1, $2)",
                &[&migration.name, &now_ms()],
            )
        });
        match step {
            Ok(_) => conn.control("COMMIT")?,
            Err(error) => {
                conn.recover();
                return Err(DbError::new(
                    error.kind(),
                    format!("migration {} failed: {error}", migration.name),
                ));
            }
        }
    }
    claim_mode(conn, mode)
}

/// Records the mode on first use, and refuses another: a database left by one mode may hold
/// work in flight that another mode would never finish (events in an outbox, prepared
/// two-phase entries). The inner `Err` names the mode found.
fn claim_mode(conn: &mut dyn Conn, mode: Mode) -> Result<Result<(), String>, DbError> {
    let mut tx = Tx {
        conn,
        in_write: false,
    };
    tx.execute(
        "INSERT INTO converge_meta (key, value) VALUES ('mode', $1) ON CONFLICT (key) DO NOTHING",
        &[&mode.as_str()],
    )?;
    let found: String = tx.query_one("SELECT value FROM converge_meta WHERE key = 'mode'", &[])?;
    Ok(if found == mode.as_str() {
        Ok(())
    } else {
        Err(found)
    })
}
