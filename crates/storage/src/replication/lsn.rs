//! [`Lsn`]: a position in PostgreSQL's write-ahead log, the unit every other module counts in.
//!
//! PostgreSQL writes an LSN as two hexadecimal halves, `16/B374D848`: the high and low 32 bits
//! of a 64-bit byte offset into the WAL. Ordering the text would be wrong (`F/0` < `10/0` as
//! numbers, not as strings), so an `Lsn` is the number, parsed once at the edge.

use std::fmt;
use std::str::FromStr;

/// A byte position in the write-ahead log. Later positions compare greater; the difference of
/// two is a number of WAL bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Lsn(u64);

/// Why a string is not an LSN.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not an LSN (expected two hexadecimal halves like 16/B374D848): {0:?}")]
pub struct LsnError(String);

impl Lsn {
    /// The start of the log: what a session that has neither written nor read requires.
    pub const ZERO: Lsn = Lsn(0);

    /// The LSN at byte offset `offset`.
    pub const fn new(offset: u64) -> Self {
        Self(offset)
    }

    /// The byte offset.
    pub const fn as_u64(self) -> u64 {
        self.0
    }

    /// Parses PostgreSQL's `X/Y` form (each half at most 8 hexadecimal digits).
    pub fn parse(text: &str) -> Result<Self, LsnError> {
        let bad = || LsnError(text.to_string());
        let (hi, lo) = text.trim().split_once('/').ok_or_else(bad)?;
        let half = |h: &str| {
            if h.is_empty() || h.len() > 8 || !h.chars().all(|c| c.is_ascii_hexdigit()) {
                return Err(bad());
            }
            u32::from_str_radix(h, 16).map_err(|_| bad())
        };
        Ok(Self((u64::from(half(hi)?) << 32) | u64::from(half(lo)?)))
    }

    /// How many WAL bytes `self` is past `earlier`; 0 when it is not past it.
    pub fn bytes_after(self, earlier: Lsn) -> u64 {
        self.0.saturating_sub(earlier.0)
    }
}

impl fmt::Display for Lsn {
    /// PostgreSQL's own form, so a printed LSN can be pasted into `'…'::pg_lsn`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:X}/{:X}", self.0 >> 32, self.0 & 0xFFFF_FFFF)
    }
}

impl FromStr for Lsn {
    type Err = LsnError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints_postgres_form() {
        for text in ["0/0", "0/16B3748", "16/B374D848", "FFFFFFFF/FFFFFFFF"] {
            assert_eq!(Lsn::parse(text).unwrap().to_string(), text);
        }
        assert_eq!(Lsn::parse("1/0").unwrap().as_u64(), 1 << 32);
        assert_eq!(
            Lsn::parse("0/ff").unwrap(),
            Lsn::new(255),
            "lower case is accepted"
        );
        assert_eq!(" 0/10\n".parse::<Lsn>().unwrap(), Lsn::new(16));
    }

    #[test]
    fn refuses_what_is_not_an_lsn() {
        for text in [
            "",
            "/",
            "0/",
            "/0",
            "12",
            "0/0/0",
            "g/0",
            "0/-1",
            "1FFFFFFFF/0",
            "0x1/0",
        ] {
            assert!(Lsn::parse(text).is_err(), "{text:?} parsed");
        }
    }

    #[test]
    fn orders_as_numbers_not_as_text() {
        let a = Lsn::parse("F/FFFFFFFF").unwrap();
        let b = Lsn::parse("10/0").unwrap();
        assert!(a < b, "the high half counts first");
        assert!("F/FFFFFFFF" > "10/0", "which the text would get wrong");
        assert!(Lsn::parse("0/9").unwrap() < Lsn::parse("0/10").unwrap());
        assert_eq!(b.bytes_after(a), 1);
        assert_eq!(a.bytes_after(b), 0, "never negative");
    }
}
