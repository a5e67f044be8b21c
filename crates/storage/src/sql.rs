//! SQL written once for both engines: parameters, rows, placeholders.
//!
//! Statements use PostgreSQL's numbered placeholders (`$1`, `$2`, …); the SQLite connection
//! rewrites them to SQLite's own numbered form (`?1`, `?2`, …), which binds by number too, so
//! a placeholder may repeat or come out of order in either engine. Both engines speak the
//! rest of what Converge needs the same way: `INSERT … ON CONFLICT … DO UPDATE/NOTHING`,
//! `RETURNING`, multi-row `VALUES`, partial indexes. Where they differ (`FOR UPDATE`, the
//! types of sums), a service asks [`Engine`] and says so where it does.

use std::borrow::Cow;
use std::fmt::Write;

use crate::error::{DbError, ErrorKind};

/// Which database a connection speaks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Engine {
    Sqlite,
    Postgres,
}

impl Engine {
    pub fn as_str(self) -> &'static str {
        match self {
            Engine::Sqlite => "sqlite",
            Engine::Postgres => "postgres",
        }
    }

    /// `" FOR UPDATE"` where rows read in a write transaction must be locked against other
    /// writers (PostgreSQL, with several instances of a service); nothing on SQLite, whose
    /// single writer already excludes them.
    pub fn for_update(self) -> &'static str {
        match self {
            Engine::Sqlite => "",
            Engine::Postgres => " FOR UPDATE",
        }
    }
}

impl std::fmt::Display for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A value bound to a placeholder: anything both engines can take. Integers go to `BIGINT`
/// (`INTEGER` in SQLite) columns and strings to `TEXT`; `Option` binds `NULL`.
pub trait Param: Sync {
    fn as_sqlite(&self) -> &dyn rusqlite::ToSql;
    fn as_postgres(&self) -> &(dyn postgres::types::ToSql + Sync);
}

impl<T: rusqlite::ToSql + postgres::types::ToSql + Sync> Param for T {
    fn as_sqlite(&self) -> &dyn rusqlite::ToSql {
        self
    }

    fn as_postgres(&self) -> &(dyn postgres::types::ToSql + Sync) {
        self
    }
}

/// A column value read back: `i64`, `String`, `bool`, `f64`, or an `Option` of one.
pub trait Column: Sized {
    fn from_sqlite(row: &rusqlite::Row<'_>, index: usize) -> Result<Self, DbError>;
    fn from_postgres(row: &postgres::Row, index: usize) -> Result<Self, DbError>;
}

impl<T> Column for T
where
    T: rusqlite::types::FromSql + for<'a> postgres::types::FromSql<'a>,
{
    fn from_sqlite(row: &rusqlite::Row<'_>, index: usize) -> Result<Self, DbError> {
        Ok(row.get(index)?)
    }

    fn from_postgres(row: &postgres::Row, index: usize) -> Result<Self, DbError> {
        Ok(row.try_get(index)?)
    }
}

/// One row of a result, whichever engine it came from.
pub struct Row<'r>(pub(crate) RowRef<'r>);

pub(crate) enum RowRef<'r> {
    Sqlite(&'r rusqlite::Row<'r>),
    Postgres(&'r postgres::Row),
}

impl Row<'_> {
    /// The value of column `index` (0-based).
    pub fn get<T: Column>(&self, index: usize) -> Result<T, DbError> {
        match &self.0 {
            RowRef::Sqlite(row) => T::from_sqlite(row, index),
            RowRef::Postgres(row) => T::from_postgres(row, index),
        }
    }
}

/// What a row becomes: a single column (`i64`, `String`, …) or a tuple of columns.
pub trait FromRow: Sized {
    fn from_row(row: &Row<'_>) -> Result<Self, DbError>;
}

macro_rules! scalar_from_row {
    ($($t:ty),*) => {$(
        impl FromRow for $t {
            fn from_row(row: &Row<'_>) -> Result<Self, DbError> {
                row.get(0)
            }
        }
    )*};
}
scalar_from_row!(i64, String, bool, Option<i64>, Option<String>);

macro_rules! tuple_from_row {
    ($($name:ident : $index:tt),+) => {
        impl<$($name: Column),+> FromRow for ($($name,)+) {
            fn from_row(row: &Row<'_>) -> Result<Self, DbError> {
                Ok(($(row.get::<$name>($index)?,)+))
            }
        }
    };
}
tuple_from_row!(A: 0);
tuple_from_row!(A: 0, B: 1);
tuple_from_row!(A: 0, B: 1, C: 2);
tuple_from_row!(A: 0, B: 1, C: 2, D: 3);
tuple_from_row!(A: 0, B: 1, C: 2, D: 3, E: 4);
tuple_from_row!(A: 0, B: 1, C: 2, D: 3, E: 4, F: 5);
tuple_from_row!(A: 0, B: 1, C: 2, D: 3, E: 4, F: 5, G: 6);
tuple_from_row!(A: 0, B: 1, C: 2, D: 3, E: 4, F: 5, G: 6, H: 7);
tuple_from_row!(A: 0, B: 1, C: 2, D: 3, E: 4, F: 5, G: 6, H: 7, I: 8);

/// Values bound in one statement at most. SQLite allows 32,766 and PostgreSQL 65,535; every
/// set-based statement of Converge stays far below (512 rows × 8 columns).
pub const PARAMS_MAX: usize = 32_766;

/// `($1, $2), ($3, $4), …`: `rows` rows of `columns` placeholders, for a multi-row `VALUES`.
pub fn values(rows: usize, columns: usize) -> String {
    values_from(rows, columns, 1)
}

/// [`values`] numbering from `first`, for a statement that binds other values before.
pub fn values_from(rows: usize, columns: usize, first: usize) -> String {
    assert!(
        rows * columns <= PARAMS_MAX,
        "too many values in one statement"
    );
    let mut sql = String::with_capacity(rows * (columns * 6 + 4));
    let mut next = first;
    for row in 0..rows {
        if row > 0 {
            sql.push_str(", ");
        }
        sql.push('(');
        for column in 0..columns {
            if column > 0 {
                sql.push_str(", ");
            }
            let _ = write!(sql, "${next}");
            next += 1;
        }
        sql.push(')');
    }
    sql
}

/// `$first, $first+1, …`: `count` placeholders for an `IN (…)` list.
pub fn list(count: usize, first: usize) -> String {
    assert!(count <= PARAMS_MAX, "too many values in one statement");
    let mut sql = String::with_capacity(count * 6);
    for i in 0..count {
        if i > 0 {
            sql.push_str(", ");
        }
        let _ = write!(sql, "${}", first + i);
    }
    sql
}

/// Rewrites `$N` placeholders as SQLite's `?N`. Placeholders never appear inside Converge's
/// string literals, so a scan for `$` followed by digits is enough.
pub(crate) fn to_sqlite(sql: &str) -> Cow<'_, str> {
    if !sql.contains('$') {
        return Cow::Borrowed(sql);
    }
    let mut out = String::with_capacity(sql.len());
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '$' && chars.peek().is_some_and(char::is_ascii_digit) {
            out.push('?');
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// The error for a query that had to return a row and returned none.
pub(crate) fn no_row(sql: &str) -> DbError {
    DbError::new(
        ErrorKind::Permanent,
        format!("expected a row and got none: {}", first_line(sql)),
    )
}

fn first_line(sql: &str) -> &str {
    sql.trim().lines().next().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_number_every_placeholder_once() {
        assert_eq!(values(2, 3), "($1, $2, $3), ($4, $5, $6)");
        assert_eq!(values_from(1, 2, 4), "($4, $5)");
        assert_eq!(list(3, 2), "$2, $3, $4");
        assert_eq!(values(0, 3), "");
    }

    #[test]
    fn placeholders_become_sqlite_numbered_ones() {
        assert_eq!(
            to_sqlite("UPDATE w SET b = b - $2 WHERE a = $1 AND c = '$'"),
            "UPDATE w SET b = b - ?2 WHERE a = ?1 AND c = '$'"
        );
        assert!(matches!(to_sqlite("SELECT 1"), Cow::Borrowed(_)));
    }
}
