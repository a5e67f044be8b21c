//! One order's life: when each service applied it, read through the public per-order routes.
//!
//! | step | read | time |
//! |---|---|---|
//! | acknowledged | `GET /orders/{id}` | `acknowledged_at_ms` |
//! | captured, declined or refunded | `GET /payments/{id}` | `updated_at_ms` |
//! | counted | `GET /stats/orders/{id}` | `applied_at_ms` |
//! | credited or reversed | `GET /loyalty/{account}/ledger/{id}` | `applied_at_ms` |
//! | confirmed or cancelled | `GET /orders/{id}` | `settled_at_ms` |
//!
//! A service that answers `404` has not applied the order yet (`pending`). A body without
//! its time field still says the step happened (`done`, no time): not every service reports
//! when yet. Times are the services' clocks, milliseconds since the Unix epoch; in strong
//! mode the participants apply before the order is acknowledged, so their steps come out
//! a little *before* the acknowledgement, which is the point of that mode.

use contracts::limits::ID_CHARS_MAX;
use reqwest::StatusCode;
use serde::Serialize;
use serde_json::Value;

use loadgen::workload::Client;

/// How long one read of the timeline may take.
const READ_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(3);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum StepState {
    /// The service shows the order applied.
    Done,
    /// The service does not show it yet.
    Pending,
    /// The read failed; the service's state is not known.
    Unknown,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Step {
    /// What happened: `acknowledged`, `captured`, `counted`, `credited`, `confirmed`, …
    pub step: String,
    pub service: &'static str,
    pub state: StepState,
    /// When, if the service says.
    pub at_ms: Option<i64>,
    /// `at_ms − acknowledged_at_ms`.
    pub after_ack_ms: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Timeline {
    pub order_id: String,
    pub account_id: String,
    pub status: String,
    pub reason: Option<String>,
    pub total_cents: i64,
    pub acknowledged_at_ms: i64,
    pub steps: Vec<Step>,
}

/// Why a timeline could not be built.
#[derive(Debug)]
pub enum TimelineError {
    /// Not an order id the API could have given.
    BadId,
    /// `GET /orders/{id}` answered `404`.
    UnknownOrder,
    /// The system did not answer as expected.
    Unavailable(String),
}

/// Whether `id` can be put in a path as is: the API's ids are letters, digits, `_` and `-`.
pub fn is_plain_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= ID_CHARS_MAX
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// Reads the order, then the other three services at once, and lays out the steps.
pub async fn read(client: &Client, order_id: &str) -> Result<Timeline, TimelineError> {
    if !is_plain_id(order_id) {
        return Err(TimelineError::BadId);
    }
    let order = match get(client, &format!("/orders/{order_id}")).await {
        Read::Found(body) => body,
        Read::Missing => return Err(TimelineError::UnknownOrder),
        Read::Failed(why) => return Err(TimelineError::Unavailable(why)),
    };
    let account_id = order["account_id"].as_str().unwrap_or_default().to_owned();
    if !is_plain_id(&account_id) {
        return Err(TimelineError::Unavailable(
            "the order's body has no readable account_id".into(),
        ));
    }
    let (payment_path, stats_path, ledger_path) = (
        format!("/payments/{order_id}"),
        format!("/stats/orders/{order_id}"),
        format!("/loyalty/{account_id}/ledger/{order_id}"),
    );
    let (payment, stats, ledger) = tokio::join!(
        get(client, &payment_path),
        get(client, &stats_path),
        get(client, &ledger_path),
    );
    Ok(assemble(&order, &payment, &stats, &ledger))
}

/// The answer to one read.
#[derive(Debug, Clone, PartialEq)]
pub enum Read {
    Found(Value),
    Missing,
    Failed(String),
}

async fn get(client: &Client, path: &str) -> Read {
    let sent = client
        .http()
        .get(format!("{}{path}", client.base()))
        .timeout(READ_TIMEOUT)
        .send()
        .await;
    let response = match sent {
        Ok(response) => response,
        Err(error) => return Read::Failed(format!("{path}: {error}")),
    };
    match response.status() {
        StatusCode::OK => match response.json::<Value>().await {
            Ok(body) => Read::Found(body),
            Err(error) => Read::Failed(format!("{path}: {error}")),
        },
        StatusCode::NOT_FOUND => Read::Missing,
        status => Read::Failed(format!("{path} answered {status}")),
    }
}

/// Lays the reads out as steps, in the order of an order's life (see the module docs).
pub fn assemble(order: &Value, payment: &Read, stats: &Read, ledger: &Read) -> Timeline {
    let acknowledged_at_ms = order["acknowledged_at_ms"].as_i64().unwrap_or(0);
    let status = order["status"].as_str().unwrap_or("unknown").to_owned();
    let step = |name: &str, service: &'static str, state: StepState, at_ms: Option<i64>| Step {
        step: name.to_owned(),
        service,
        state,
        at_ms,
        after_ack_ms: at_ms.map(|at| at - acknowledged_at_ms),
    };
    let from_read = |read: &Read, service: &'static str, done_word: &str, time: &str| match read {
        Read::Found(body) => step(
            body["status"].as_str().unwrap_or(done_word),
            service,
            StepState::Done,
            body[time].as_i64(),
        ),
        Read::Missing => step(done_word, service, StepState::Pending, None),
        Read::Failed(_) => step(done_word, service, StepState::Unknown, None),
    };
    let settled = match status.as_str() {
        "confirmed" | "cancelled" => step(
            &status,
            "order",
            StepState::Done,
            order["settled_at_ms"].as_i64(),
        ),
        _ => step("settled", "order", StepState::Pending, None),
    };
    Timeline {
        order_id: order["id"].as_str().unwrap_or_default().to_owned(),
        account_id: order["account_id"].as_str().unwrap_or_default().to_owned(),
        reason: order["reason"].as_str().map(str::to_owned),
        total_cents: order["total_cents"].as_i64().unwrap_or(0),
        acknowledged_at_ms,
        steps: vec![
            step(
                "acknowledged",
                "order",
                StepState::Done,
                Some(acknowledged_at_ms),
            ),
            from_read(payment, "payment", "captured", "updated_at_ms"),
            from_read(stats, "stats", "counted", "applied_at_ms"),
            from_read(ledger, "loyalty", "credited", "applied_at_ms"),
            settled,
        ],
        status,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn order(status: &str, settled: Option<i64>) -> Value {
        let mut order = json!({"id": "ord_1", "account_id": "acc_1", "status": status,
            "total_cents": 2900, "points": 29, "items": [], "acknowledged_at_ms": 1_000});
        if let Some(at) = settled {
            order["settled_at_ms"] = json!(at);
        }
        order
    }

    #[test]
    fn every_step_has_its_time_after_the_acknowledgement_when_the_service_gives_it() {
        let timeline = assemble(
            &order("confirmed", Some(1_030)),
            &Read::Found(json!({"status": "captured", "updated_at_ms": 1_012})),
            &Read::Found(json!({"status": "counted", "applied_at_ms": 1_020})),
            &Read::Found(json!({"status": "credited", "applied_at_ms": 1_008})),
        );
        let steps: Vec<(&str, &str, Option<i64>)> = timeline
            .steps
            .iter()
            .map(|s| (s.step.as_str(), s.service, s.after_ack_ms))
            .collect();
        assert_eq!(
            steps,
            [
                ("acknowledged", "order", Some(0)),
                ("captured", "payment", Some(12)),
                ("counted", "stats", Some(20)),
                ("credited", "loyalty", Some(8)),
                ("confirmed", "order", Some(30)),
            ]
        );
        assert!(timeline.steps.iter().all(|s| s.state == StepState::Done));
    }

    #[test]
    fn a_service_without_the_order_is_pending_and_one_without_times_is_done_untimed() {
        let timeline = assemble(
            &order("accepted", None),
            &Read::Found(json!({"status": "declined"})),
            &Read::Missing,
            &Read::Failed("timeout".into()),
        );
        let payment = &timeline.steps[1];
        assert_eq!(
            (payment.step.as_str(), payment.state, payment.at_ms),
            ("declined", StepState::Done, None)
        );
        assert_eq!(timeline.steps[2].state, StepState::Pending);
        assert_eq!(timeline.steps[3].state, StepState::Unknown);
        assert_eq!(timeline.steps[4].state, StepState::Pending);
        assert_eq!(timeline.status, "accepted");
    }

    #[test]
    fn only_plain_ids_reach_a_path() {
        assert!(is_plain_id("ord_01a2354d60ef76e280bef92eec779a22"));
        assert!(!is_plain_id(""));
        assert!(!is_plain_id("../metrics"));
        assert!(!is_plain_id("a?b"));
        assert!(!is_plain_id(&"a".repeat(ID_CHARS_MAX + 1)));
    }
}
