//! What can go wrong with a database, sorted by what a caller can do about it.

/// What a caller can do about a [`DbError`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// May pass by itself or by an operator's hand: the database is busy or locked, the disk
    /// is full, an I/O error, the connection was lost, a serialization failure or a deadlock.
    /// Nothing was written; trying again later is right.
    Transient,
    /// A rule of the schema refused the write (a unique key, a check, a foreign key). The same
    /// write fails the same way every time.
    Constraint,
    /// The commit's answer was lost (the connection dropped during `COMMIT`, or the disk
    /// failed to confirm a sync): the write may or may not be durable. Only a read can tell.
    Unknown,
    /// A bug: SQL the database cannot run, a value of the wrong type. Fails every time.
    Permanent,
}

/// A database error: what kind it is, the engine's message, and its code when it has one
/// (SQLite's extended result code, PostgreSQL's SQLSTATE).
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct DbError {
    kind: ErrorKind,
    message: String,
    code: Option<String>,
}

impl DbError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
            code: None,
        }
    }

    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// Whether waiting and trying again can help.
    pub fn is_transient(&self) -> bool {
        self.kind == ErrorKind::Transient
    }

    /// The engine's code: SQLite's extended result code or PostgreSQL's SQLSTATE.
    pub fn code(&self) -> Option<&str> {
        self.code.as_deref()
    }

    /// A unique or primary key refused the row.
    pub fn is_unique_violation(&self) -> bool {
        // SQLITE_CONSTRAINT_UNIQUE, SQLITE_CONSTRAINT_PRIMARYKEY; unique_violation.
        matches!(self.code(), Some("2067" | "1555" | "23505"))
    }

    /// The same error, said to have happened at `COMMIT`: a lost connection there means the
    /// outcome is unknown, while an error the engine answered means nothing was committed.
    pub(crate) fn at_commit(mut self, answered: bool) -> Self {
        if !answered {
            self.kind = ErrorKind::Unknown;
        }
        self.message = format!("commit failed: {}", self.message);
        self
    }

    pub(crate) fn closed() -> Self {
        Self::new(
            ErrorKind::Transient,
            "the database is closed (the service is stopping)",
        )
    }

    pub(crate) fn rolled_back(cause: &str) -> Self {
        Self::new(
            ErrorKind::Transient,
            format!("the shared transaction was rolled back, nothing written: {cause}"),
        )
    }
}

impl From<rusqlite::Error> for DbError {
    fn from(error: rusqlite::Error) -> Self {
        use rusqlite::ErrorCode::*;
        let (kind, code) = match &error {
            rusqlite::Error::SqliteFailure(failure, _) => {
                let kind = match failure.code {
                    DatabaseBusy
                    | DatabaseLocked
                    | DiskFull
                    | SystemIoFailure
                    | CannotOpen
                    | OutOfMemory
                    | FileLockingProtocolFailed
                    | ReadOnly
                    | PermissionDenied
                    | OperationInterrupted => ErrorKind::Transient,
                    ConstraintViolation => ErrorKind::Constraint,
                    _ => ErrorKind::Permanent,
                };
                (kind, Some(failure.extended_code.to_string()))
            }
            _ => (ErrorKind::Permanent, None),
        };
        Self {
            kind,
            message: format!("sqlite: {error}"),
            code,
        }
    }
}

impl From<postgres::Error> for DbError {
    fn from(error: postgres::Error) -> Self {
        let code = error.code().map(|state| state.code().to_owned());
        let kind = match code.as_deref() {
            // No SQLSTATE: the connection itself failed.
            None => ErrorKind::Transient,
            Some(state) => pg_kind(state),
        };
        // Display of a server error is only "db error"; the source says what it was.
        let message = match std::error::Error::source(&error) {
            Some(source) => format!("postgres: {error}: {source}"),
            None => format!("postgres: {error}"),
        };
        Self {
            kind,
            message,
            code,
        }
    }
}

/// PostgreSQL's SQLSTATE classes (Appendix A of its manual), by what a caller can do.
fn pg_kind(state: &str) -> ErrorKind {
    match state {
        // serialization_failure, deadlock_detected, lock_not_available, query_canceled
        // (a statement timeout), read_only_sql_transaction (a standby promoted or not yet).
        "40001" | "40P01" | "55P03" | "57014" | "25006" => ErrorKind::Transient,
        // statement_completion_unknown, transaction_resolution_unknown.
        "40003" | "08007" => ErrorKind::Unknown,
        _ => match &state[..2] {
            // connection_exception, insufficient_resources (disk full, out of memory, too many
            // connections), operator_intervention (shutdown, cannot connect now), system_error.
            "08" | "53" | "57" | "58" => ErrorKind::Transient,
            "23" => ErrorKind::Constraint,
            _ => ErrorKind::Permanent,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlstates_sort_by_what_a_caller_can_do() {
        assert_eq!(pg_kind("53100"), ErrorKind::Transient, "disk full");
        assert_eq!(pg_kind("08006"), ErrorKind::Transient, "connection failure");
        assert_eq!(pg_kind("57P01"), ErrorKind::Transient, "admin shutdown");
        assert_eq!(pg_kind("40001"), ErrorKind::Transient, "serialization");
        assert_eq!(pg_kind("23505"), ErrorKind::Constraint, "unique");
        assert_eq!(pg_kind("23514"), ErrorKind::Constraint, "check");
        assert_eq!(pg_kind("42601"), ErrorKind::Permanent, "syntax");
        assert_eq!(pg_kind("08007"), ErrorKind::Unknown, "resolution unknown");
    }

    #[test]
    fn a_lost_commit_answer_is_unknown_and_an_answered_one_is_not() {
        let lost = DbError::new(ErrorKind::Transient, "connection reset").at_commit(false);
        assert_eq!(lost.kind(), ErrorKind::Unknown);
        let answered = DbError::new(ErrorKind::Transient, "disk full").at_commit(true);
        assert_eq!(answered.kind(), ErrorKind::Transient);
    }
}
