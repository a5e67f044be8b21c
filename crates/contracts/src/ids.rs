//! Identifiers. Ids are opaque strings with a prefix that says what they name
//! (`acc_…`, `ord_…`), made of a time-ordered UUID (v7) so that they sort by creation.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::ValidationError;
use crate::limits::ID_CHARS_MAX;

/// Checks the shape shared by every id and key: 1 to [`ID_CHARS_MAX`] characters of ASCII
/// letters, digits, `-` and `_`. Anything else cannot name a record, so it is refused before
/// it reaches a database or a log line.
fn check_token(what: &str, s: &str) -> Result<(), ValidationError> {
    if s.is_empty() {
        return Err(ValidationError::new(format!("{what} must not be empty")));
    }
    if s.len() > ID_CHARS_MAX {
        return Err(ValidationError::new(format!(
            "{what} must be at most {ID_CHARS_MAX} characters"
        )));
    }
    if !s
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err(ValidationError::new(format!(
            "{what} may contain only ASCII letters, digits, '-' and '_'"
        )));
    }
    Ok(())
}

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident, $prefix:literal, $what:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// A new, unique id.
            pub fn generate() -> Self {
                Self(format!(concat!($prefix, "{}"), uuid::Uuid::now_v7().simple()))
            }

            pub fn parse(s: &str) -> Result<Self, ValidationError> {
                check_token($what, s)?;
                Ok(Self(s.to_owned()))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

id_type!(
    /// Names an account, and the wallet, points and stats that belong to it.
    AccountId, "acc_", "account_id"
);
id_type!(
    /// Names an order. In strong mode it is also the id of the order's two-phase commit.
    OrderId, "ord_", "order id"
);

/// A client's `Idempotency-Key`: a retried `POST /orders` with the same key returns the first
/// answer instead of placing a second order.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct IdempotencyKey(String);

impl IdempotencyKey {
    pub fn parse(s: &str) -> Result<Self, ValidationError> {
        check_token("Idempotency-Key", s)?;
        Ok(Self(s.to_owned()))
    }

    /// A key for a request that came without one: the server makes one up and returns it,
    /// so the client can still retry safely.
    pub fn generate() -> Self {
        Self(format!("gen_{}", uuid::Uuid::now_v7().simple()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_ids_parse_and_sort_by_creation() {
        let a = OrderId::generate();
        let b = OrderId::generate();
        assert!(a.as_str().starts_with("ord_"));
        assert_eq!(OrderId::parse(a.as_str()).unwrap(), a);
        assert!(a < b, "v7 ids sort by creation time");
    }

    #[test]
    fn ids_refuse_what_cannot_name_a_record() {
        assert!(AccountId::parse("").is_err());
        assert!(AccountId::parse("acc 1").is_err());
        assert!(AccountId::parse("../etc/passwd").is_err());
        assert!(AccountId::parse(&"a".repeat(ID_CHARS_MAX + 1)).is_err());
        assert!(AccountId::parse(&"a".repeat(ID_CHARS_MAX)).is_ok());
    }
}
