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

/// An event as it travels: its position in the producer's outbox, a unique id, and its body.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// Position in the producer's outbox: strictly increasing, so a consumer's position is
    /// one integer that it stores with its effects.
    pub seq: i64,
    /// Unique id of the event (`evt_…`), the de-duplication key for transports that
    /// redeliver.
    pub id: String,
    /// When the producer committed the event, in milliseconds since the Unix epoch.
    pub recorded_at_ms: i64,
    pub body: serde_json::Value,
}

impl Event {
    pub fn decode(&self) -> Result<EventBody, serde_json::Error> {
        EventBody::deserialize(&self.body)
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

    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self).expect("an event body always serializes")
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
        let event = Event {
            seq: 7,
            id: "evt_1".into(),
            recorded_at_ms: 1,
            body: body.to_json(),
        };
        assert_eq!(event.decode().unwrap(), body);
        assert_eq!(event.body["type"], "PaymentDeclined");
    }

    #[test]
    fn an_unknown_body_does_not_decode() {
        let event = Event {
            seq: 1,
            id: "evt_x".into(),
            recorded_at_ms: 1,
            body: serde_json::json!({"type": "Nonsense"}),
        };
        assert!(event.decode().is_err());
    }
}
