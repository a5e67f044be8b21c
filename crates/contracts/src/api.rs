//! The JSON bodies of the public API, as users, scripts and the load generator see them.

use serde::de::{self, Deserializer, Unexpected, Visitor};
use serde::{Deserialize, Serialize};

/// `POST /accounts`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateAccountRequest {
    pub name: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AccountStatus {
    Active,
    Suspended,
}

impl AccountStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            AccountStatus::Active => "active",
            AccountStatus::Suspended => "suspended",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Account {
    pub id: String,
    pub name: String,
    pub status: AccountStatus,
}

/// `GET /accounts` answers a page of accounts, oldest first; `next_after` is the cursor for
/// the next page, absent on the last.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AccountPage {
    pub accounts: Vec<Account>,
    pub next_after: Option<String>,
}

/// `POST /wallets/{account_id}/top-ups`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TopUpRequest {
    #[serde(deserialize_with = "whole_number")]
    pub amount_cents: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Wallet {
    pub account_id: String,
    pub balance_cents: i64,
    /// Funds held by a prepared two-phase commit (strong mode), not yet captured.
    pub held_cents: i64,
    /// The sum of every top-up, so that `balance = top-ups − captures + refunds` can be checked.
    pub top_ups_cents: i64,
}

/// `POST /orders`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlaceOrderRequest {
    pub account_id: String,
    pub items: Vec<OrderItem>,
}

/// One line as the client sends it. Numbers are taken as `i64` so that a zero or negative
/// value gets our own message rather than a parser's.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OrderItem {
    pub sku: String,
    #[serde(deserialize_with = "whole_number")]
    pub quantity: i64,
    #[serde(deserialize_with = "whole_number")]
    pub unit_price_cents: i64,
}

/// Reads a whole number however JSON writes it. JSON has one kind of number, so `2.0`, `2` and
/// `2e0` are the same value, and the OpenAPI document's `integer` (JSON Schema's) admits all
/// three: a client that computed cents as a float must not be refused for it. A number with a
/// fractional part, or one beyond `i64`, is refused, naming what was expected.
fn whole_number<'de, D: Deserializer<'de>>(deserializer: D) -> Result<i64, D::Error> {
    struct Whole;

    impl Visitor<'_> for Whole {
        type Value = i64;

        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a whole number")
        }

        fn visit_i64<E: de::Error>(self, value: i64) -> Result<i64, E> {
            Ok(value)
        }

        fn visit_u64<E: de::Error>(self, value: u64) -> Result<i64, E> {
            i64::try_from(value).map_err(|_| E::invalid_value(Unexpected::Unsigned(value), &self))
        }

        fn visit_f64<E: de::Error>(self, value: f64) -> Result<i64, E> {
            // 2^63: the first whole number past `i64::MAX`, and exactly representable as f64.
            const END: f64 = 9_223_372_036_854_775_808.0;
            if value.fract() == 0.0 && (-END..END).contains(&value) {
                Ok(value as i64)
            } else {
                Err(E::invalid_value(Unexpected::Float(value), &self))
            }
        }
    }

    deserializer.deserialize_any(Whole)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OrderStatus {
    /// Acknowledged in an eventual mode; the other services have not all applied it yet.
    Accepted,
    Confirmed,
    Cancelled,
}

impl OrderStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            OrderStatus::Accepted => "accepted",
            OrderStatus::Confirmed => "confirmed",
            OrderStatus::Cancelled => "cancelled",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "accepted" => Some(Self::Accepted),
            "confirmed" => Some(Self::Confirmed),
            "cancelled" => Some(Self::Cancelled),
            _ => None,
        }
    }
}

/// Why an order was refused (strong) or cancelled (eventual).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Refusal {
    UnknownAccount,
    AccountSuspended,
    InsufficientFunds,
}

impl Refusal {
    pub fn as_str(self) -> &'static str {
        match self {
            Refusal::UnknownAccount => "unknown_account",
            Refusal::AccountSuspended => "account_suspended",
            Refusal::InsufficientFunds => "insufficient_funds",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "unknown_account" => Some(Self::UnknownAccount),
            "account_suspended" => Some(Self::AccountSuspended),
            "insufficient_funds" => Some(Self::InsufficientFunds),
            _ => None,
        }
    }

    /// The HTTP status a refusal gets in strong mode, where it is known before the answer.
    pub fn status_code(self) -> u16 {
        match self {
            Refusal::UnknownAccount => 404,
            Refusal::AccountSuspended => 403,
            Refusal::InsufficientFunds => 402,
        }
    }

    pub fn message(self) -> &'static str {
        match self {
            Refusal::UnknownAccount => "unknown account",
            Refusal::AccountSuspended => "account is suspended",
            Refusal::InsufficientFunds => "insufficient funds",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Order {
    pub id: String,
    pub account_id: String,
    pub status: OrderStatus,
    pub total_cents: i64,
    pub points: i64,
    pub items: Vec<crate::order::LineItem>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<Refusal>,
    /// When the order was acknowledged, in milliseconds since the Unix epoch.
    pub acknowledged_at_ms: i64,
    /// When the order reached its final status, if it has.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub settled_at_ms: Option<i64>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OrderList {
    pub orders: Vec<Order>,
    /// Pass as `?after=` for the next page; absent on the last page.
    pub next_after: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PaymentStatus {
    Captured,
    Declined,
    Refunded,
}

impl PaymentStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            PaymentStatus::Captured => "captured",
            PaymentStatus::Declined => "declined",
            PaymentStatus::Refunded => "refunded",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "captured" => Some(Self::Captured),
            "declined" => Some(Self::Declined),
            "refunded" => Some(Self::Refunded),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Payment {
    pub order_id: String,
    pub account_id: String,
    pub amount_cents: i64,
    pub status: PaymentStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<Refusal>,
    /// When Payment last changed it (captured, declined, refunded), in milliseconds since
    /// the epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_at_ms: Option<i64>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PaymentList {
    pub payments: Vec<Payment>,
    /// Pass as `?after=` for the next page; absent on the last page.
    pub next_after: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Points {
    pub account_id: String,
    pub points: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LedgerStatus {
    /// Points granted for the order.
    Credited,
    /// Points taken back because the order was cancelled (a saga's compensation).
    Reversed,
}

impl LedgerStatus {
    /// The status of a stored entry; anything but `credited` counts no points.
    pub fn parse(s: &str) -> Self {
        if s == "credited" {
            LedgerStatus::Credited
        } else {
            LedgerStatus::Reversed
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LedgerEntry {
    pub order_id: String,
    pub points: i64,
    pub status: LedgerStatus,
    /// When Loyalty applied it (credited, or took back), in milliseconds since the epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub applied_at_ms: Option<i64>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Ledger {
    pub account_id: String,
    pub entries: Vec<LedgerEntry>,
    /// Pass as `?after=` for the next page; absent on the last page.
    pub next_after: Option<String>,
}

/// `?after=ID&limit=N` on every listing: ids sort by creation, so a page is "the next N
/// after this id".
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct PageQuery {
    pub after: Option<String>,
    pub limit: Option<usize>,
}

impl PageQuery {
    /// The page size asked for, within 1..=[`LIST_LIMIT_MAX`](crate::limits::LIST_LIMIT_MAX);
    /// 100 when not given.
    pub fn limit(&self) -> Result<usize, crate::ValidationError> {
        match self.limit {
            None => Ok(100),
            Some(n) if (1..=crate::limits::LIST_LIMIT_MAX).contains(&n) => Ok(n),
            Some(n) => Err(crate::ValidationError::new(format!(
                "limit must be between 1 and {}, got {n}",
                crate::limits::LIST_LIMIT_MAX
            ))),
        }
    }

    /// Where the page starts: after this id, or from the first ("" sorts before every id).
    pub fn after(&self) -> &str {
        self.after.as_deref().unwrap_or("")
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Totals {
    pub orders: i64,
    pub revenue_cents: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountTotals {
    pub account_id: String,
    pub orders: i64,
    pub revenue_cents: i64,
}

/// Every error answer: `{"error": "<what was wrong>"}`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ErrorBody {
    pub error: String,
}

/// `GET /progress`: how far each service has got, and whether the system is quiet (every
/// event consumed, nothing in doubt), which is when the eventual modes must agree.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Progress {
    pub quiet: bool,
    pub services: std::collections::BTreeMap<String, crate::internal::ServiceStatus>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn quantity(json: &str) -> Result<i64, String> {
        let item = format!(r#"{{"sku":"ramen","quantity":{json},"unit_price_cents":100}}"#);
        serde_json::from_str::<OrderItem>(&item)
            .map(|item| item.quantity)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn a_whole_number_counts_however_it_is_written() {
        assert_eq!(quantity("2"), Ok(2));
        assert_eq!(quantity("2.0"), Ok(2));
        assert_eq!(quantity("2e0"), Ok(2));
        assert_eq!(
            quantity("-3.0"),
            Ok(-3),
            "the range is checked later, with its own message"
        );
        let top_up: TopUpRequest = serde_json::from_str(r#"{"amount_cents": 481.0}"#).unwrap();
        assert_eq!(top_up.amount_cents, 481);
    }

    #[test]
    fn a_fraction_a_string_or_a_number_beyond_i64_is_refused() {
        for json in ["2.5", "\"2\"", "9223372036854775808", "1e19", "null"] {
            let error = quantity(json).unwrap_err();
            assert!(error.contains("a whole number"), "{json}: {error}");
        }
    }
}
