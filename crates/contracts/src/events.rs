//! Events: what the eventual modes send between services.
//!
//! The Order service's outbox carries [`EventBody::OrderPlaced`] and
//! [`EventBody::OrderCancelled`]; the Payment service's carries the verdicts
//! [`EventBody::PaymentCaptured`] and [`EventBody::PaymentDeclined`].
//!
//! On the wire an event's body is kept as raw JSON and decoded by the consumer, so that an
//! event a consumer cannot read is a *permanent* failure of that one event (it ends in the
//! dead-letter list) rather than a failure of the whole feed.

use serde::{Deserialize, Serialize};

use crate::api::Refusal;

/// Where an event sits in its feed. Feeds are ordered by `(tx, seq)`: `seq` is the outbox's
/// own sequence and `tx` the producing transaction's id where several writers commit out of
/// sequence order (PostgreSQL); it is 0 where commit order is sequence order (SQLite's single
/// writer, or a JetStream stream's sequence). A consumer stores the cursor of the last event
/// it applied, with its effects, and resumes after it.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub struct Cursor {
    #[serde(default)]
    pub tx: i64,
    pub seq: i64,
}

impl Cursor {
    pub const START: Cursor = Cursor { tx: 0, seq: 0 };

    pub fn new(tx: i64, seq: i64) -> Self {
        Self { tx, seq }
    }
}

impl std::fmt::Display for Cursor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.tx == 0 {
            write!(f, "{}", self.seq)
        } else {
            write!(f, "{}.{}", self.tx, self.seq)
        }
    }
}

impl std::str::FromStr for Cursor {
    type Err = crate::ValidationError;

    /// `SEQ` or `TX.SEQ`, both non-negative.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad =
            || crate::ValidationError::new(format!("bad cursor {s:?}: expected SEQ or TX.SEQ"));
        let (tx, seq) = match s.split_once('.') {
            Some((tx, seq)) => (
                tx.parse().map_err(|_| bad())?,
                seq.parse().map_err(|_| bad())?,
            ),
            None => (0, s.parse().map_err(|_| bad())?),
        };
        if tx < 0 || seq < 0 {
            return Err(bad());
        }
        Ok(Cursor { tx, seq })
    }
}

/// An event as it travels: where it sits in its feed, a unique id, and its body.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Event {
    /// With `seq`, where the event sits in its feed: see [`Cursor`]. Kept as two plain fields
    /// (not a nested cursor) so that the body can stay raw JSON on the way through.
    #[serde(default)]
    pub tx: i64,
    pub seq: i64,
    /// Unique id of the event (`evt_…`), the de-duplication key for transports that
    /// redeliver (JetStream's `Nats-Msg-Id`).
    pub id: String,
    /// When the producer committed the event, in milliseconds since the Unix epoch.
    pub recorded_at_ms: i64,
    /// The body as the producer wrote it: passed along unparsed, decoded once by the
    /// consumer.
    pub body: Box<serde_json::value::RawValue>,
}

impl Event {
    pub fn decode(&self) -> Result<EventBody, serde_json::Error> {
        serde_json::from_str(self.body.get())
    }

    pub fn cursor(&self) -> Cursor {
        Cursor::new(self.tx, self.seq)
    }

    /// An event from a stored body. A body that is not JSON still travels, as a JSON string,
    /// so that the consumer sets it aside instead of the feed failing for everyone.
    pub fn from_stored(cursor: Cursor, id: String, recorded_at_ms: i64, body: String) -> Self {
        let body = serde_json::value::RawValue::from_string(body).unwrap_or_else(|error| {
            let text = serde_json::Value::String(format!("unreadable body ({error})"));
            serde_json::value::to_raw_value(&text).expect("a string is JSON")
        });
        Self {
            tx: cursor.tx,
            seq: cursor.seq,
            id,
            recorded_at_ms,
            body,
        }
    }
}

impl PartialEq for Event {
    fn eq(&self, other: &Self) -> bool {
        self.cursor() == other.cursor()
            && self.id == other.id
            && self.recorded_at_ms == other.recorded_at_ms
            && self.body.get() == other.body.get()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum EventBody {
    /// An order was acknowledged (eventual modes). Payment decides on it; Loyalty and Stats
    /// apply it at once and compensate if it is cancelled later.
    OrderPlaced {
        order_id: String,
        account_id: String,
        total_cents: i64,
        points: i64,
        acknowledged_at_ms: i64,
    },
    /// The order was cancelled: what was applied for it must be undone.
    OrderCancelled {
        order_id: String,
        account_id: String,
        total_cents: i64,
        points: i64,
        reason: Refusal,
    },
    /// Payment took the order's total from the wallet.
    PaymentCaptured {
        order_id: String,
        account_id: String,
        amount_cents: i64,
    },
    /// Payment refused the order; the Order service cancels it.
    PaymentDeclined {
        order_id: String,
        account_id: String,
        reason: Refusal,
    },
}

impl EventBody {
    pub fn kind(&self) -> &'static str {
        match self {
            EventBody::OrderPlaced { .. } => "OrderPlaced",
            EventBody::OrderCancelled { .. } => "OrderCancelled",
            EventBody::PaymentCaptured { .. } => "PaymentCaptured",
            EventBody::PaymentDeclined { .. } => "PaymentDeclined",
        }
    }

    pub fn account_id(&self) -> &str {
        match self {
            EventBody::OrderPlaced { account_id, .. }
            | EventBody::OrderCancelled { account_id, .. }
            | EventBody::PaymentCaptured { account_id, .. }
            | EventBody::PaymentDeclined { account_id, .. } => account_id,
        }
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("an event body always serializes")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_round_trip_through_an_event() {
        let body = EventBody::PaymentDeclined {
            order_id: "ord_1".into(),
            account_id: "acc_1".into(),
            reason: Refusal::InsufficientFunds,
        };
        let event = Event::from_stored(Cursor::new(0, 7), "evt_1".into(), 1, body.to_json());
        assert_eq!(event.decode().unwrap(), body);
        assert!(event.body.get().contains(r#""type":"PaymentDeclined""#));
    }

    #[test]
    fn an_unknown_body_does_not_decode() {
        let event = Event::from_stored(
            Cursor::new(0, 1),
            "evt_x".into(),
            1,
            r#"{"type":"Nonsense"}"#.into(),
        );
        assert!(event.decode().is_err());
        let garbage = Event::from_stored(Cursor::new(0, 2), "evt_y".into(), 1, "not json".into());
        assert!(
            garbage.decode().is_err(),
            "travels, and fails at the consumer"
        );
    }

    #[test]
    fn cursors_order_by_transaction_then_sequence_and_read_back() {
        assert!(Cursor::new(1, 9) < Cursor::new(2, 3));
        assert!(Cursor::new(2, 3) < Cursor::new(2, 4));
        for text in ["0", "17", "5.9"] {
            assert_eq!(text.parse::<Cursor>().unwrap().to_string(), text);
        }
        assert!("-1".parse::<Cursor>().is_err());
        assert!("1.x".parse::<Cursor>().is_err());
    }

    #[test]
    fn an_event_travels_as_flat_json() {
        let event = Event::from_stored(Cursor::new(3, 4), "evt".into(), 5, "{}".into());
        let json = serde_json::to_string(&event).unwrap();
        assert_eq!(
            json,
            r#"{"tx":3,"seq":4,"id":"evt","recorded_at_ms":5,"body":{}}"#
        );
        let back: Event = serde_json::from_str(&json).unwrap();
        assert_eq!(back, event);
    }
}
