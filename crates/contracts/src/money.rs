//! Money is integer minor units (cents), never floats.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::ValidationError;

/// A strictly positive amount of money in cents, below a bound chosen by the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Cents(i64);

impl Cents {
    /// Parses `value` as an amount of 1 to `max` cents; `field` names it in the error.
    pub fn parse(field: &str, value: i64, max: i64) -> Result<Self, ValidationError> {
        if value <= 0 {
            return Err(ValidationError::new(format!(
                "{field} must be a positive number of cents, got {value}"
            )));
        }
        if value > max {
            return Err(ValidationError::new(format!(
                "{field} must be at most {max} cents, got {value}"
            )));
        }
        Ok(Self(value))
    }

    pub fn get(self) -> i64 {
        self.0
    }

    /// Loyalty points earned by an order of this total: one per whole currency unit.
    pub fn points(self) -> i64 {
        self.0 / 100
    }
}

impl fmt::Display for Cents {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{:02}", self.0 / 100, self.0 % 100)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn points_are_whole_currency_units() {
        assert_eq!(Cents::parse("x", 1999, 10_000).unwrap().points(), 19);
        assert_eq!(Cents::parse("x", 99, 10_000).unwrap().points(), 0);
    }

    #[test]
    fn zero_negative_and_over_limit_are_refused() {
        assert!(Cents::parse("x", 0, 10).is_err());
        assert!(Cents::parse("x", -5, 10).is_err());
        assert!(Cents::parse("x", 11, 10).is_err());
        assert_eq!(Cents::parse("x", 10, 10).unwrap().to_string(), "0.10");
    }
}
