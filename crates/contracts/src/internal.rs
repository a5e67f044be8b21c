//! Service-to-service calls that users never see: the two-phase-commit protocol, the
//! account-eligibility question and the event feeds. The user-facing address does not route
//! them, and every one needs the shared secret in [`SECRET_HEADER`].

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::api::Refusal;
use crate::events::Event;

/// The header that carries the shared secret on internal calls.
pub const SECRET_HEADER: &str = "x-converge-secret";

/// Participant: `POST` a [`PrepareRequest`], answered with a [`Vote`].
pub const PREPARE_PATH: &str = "/internal/2pc/prepare";
/// Participant: `POST` a list of [`PrepareRequest`]s of concurrent transactions, answered
/// with their [`Vote`]s in the same order: one call for many orders.
pub const PREPARE_MANY_PATH: &str = "/internal/2pc/prepare-many";
/// Participant: `POST` a list of transaction ids to commit, answered `204`; idempotent.
pub const COMMIT_MANY_PATH: &str = "/internal/2pc/commit-many";
/// Participant: `POST /internal/2pc/{tx_id}/commit`, answered `204`; idempotent.
pub fn commit_path(tx_id: &str) -> String {
    format!("/internal/2pc/{tx_id}/commit")
}
/// Participant: `POST /internal/2pc/{tx_id}/abort`, answered `204`; idempotent.
pub fn abort_path(tx_id: &str) -> String {
    format!("/internal/2pc/{tx_id}/abort")
}
/// Coordinator (Order): `GET /internal/2pc/{tx_id}/outcome`, answered with an [`OutcomeBody`].
pub fn outcome_path(tx_id: &str) -> String {
    format!("/internal/2pc/{tx_id}/outcome")
}
/// Account: `POST` an [`EligibilityRequest`], answered with an [`EligibilityResponse`].
pub const ELIGIBILITY_PATH: &str = "/internal/accounts/eligibility";
/// Producer: `GET ?after=SEQ&limit=N&wait_ms=W`, answered with a [`FeedPage`].
pub const FEED_PATH: &str = "/internal/feed";
/// Every service: `GET`, answered with a [`DeadLetterList`].
pub const DEAD_LETTERS_PATH: &str = "/internal/dead-letters";
/// Every service: `GET`, answered with a [`ServiceStatus`].
pub const STATUS_PATH: &str = "/internal/status";
/// Every service: `GET`, its metrics in Prometheus text format.
pub const METRICS_PATH: &str = "/internal/metrics";

/// Phase one: the coordinator asks a participant to promise it can apply the order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PrepareRequest {
    /// The transaction's id, which is the order's id.
    pub tx_id: String,
    pub account_id: String,
    pub total_cents: i64,
    pub points: i64,
    /// When the coordinator started the transaction, in milliseconds since the Unix epoch.
    pub started_at_ms: i64,
}

/// A participant's answer to a prepare. A `Yes` is a promise: the participant has made the
/// entry durable and will apply it if told to commit, whatever happens to it meanwhile.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "vote", rename_all = "lowercase")]
pub enum Vote {
    Yes,
    No { reason: Refusal },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Commit,
    Abort,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Commit => "commit",
            Outcome::Abort => "abort",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "commit" => Some(Outcome::Commit),
            "abort" => Some(Outcome::Abort),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutcomeBody {
    pub outcome: Outcome,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EligibilityRequest {
    pub account_ids: Vec<String>,
}

/// For each account asked about: `null` if it may order, else why not.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EligibilityResponse {
    pub verdicts: BTreeMap<String, Option<Refusal>>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FeedPage {
    pub events: Vec<Event>,
    /// The newest position in the outbox when the page was read.
    pub head: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DeadLetter {
    pub feed: String,
    pub seq: i64,
    pub event_id: String,
    pub body: serde_json::Value,
    pub error: String,
    pub attempts: i64,
    pub recorded_at_ms: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DeadLetterList {
    pub dead_letters: Vec<DeadLetter>,
}

/// How far a service has got: its own outbox head (producers) and its position in each feed
/// it consumes. The system is quiet when every position has reached its producer's head.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ServiceStatus {
    pub outbox_head: Option<i64>,
    pub positions: BTreeMap<String, i64>,
    /// Two-phase-commit entries prepared here and not yet committed or aborted.
    pub in_doubt: i64,
}
