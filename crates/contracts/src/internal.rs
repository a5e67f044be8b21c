//! Service-to-service calls that users never see: the two-phase-commit protocol, the
//! account-eligibility question and the event feeds. The user-facing address does not route
//! them, and every one needs the shared secret in [`SECRET_HEADER`].

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::ServiceName;
use crate::api::Refusal;
use crate::events::{Cursor, Event};

/// Which services consume which feed. A feed is named after the service whose outbox it
/// carries; each consumer keeps its position in it under that name. A producer prunes what
/// every one of its consumers has passed.
pub const FEEDS: [(ServiceName, &[ServiceName]); 2] = [
    (
        ServiceName::Order,
        &[
            ServiceName::Payment,
            ServiceName::Loyalty,
            ServiceName::Stats,
        ],
    ),
    (ServiceName::Payment, &[ServiceName::Order]),
];

/// The consumers of `producer`'s feed.
pub fn consumers_of(producer: ServiceName) -> &'static [ServiceName] {
    FEEDS
        .iter()
        .find(|(p, _)| *p == producer)
        .map_or(&[], |(_, consumers)| consumers)
}

/// The header that carries the shared secret on internal calls.
pub const SECRET_HEADER: &str = "x-converge-secret";

/// Participant: `POST` a [`PrepareRequest`], answered with a [`Vote`].
pub const PREPARE_PATH: &str = "/internal/2pc/prepare";
/// Participant: `POST` a list of [`PrepareRequest`]s of concurrent transactions, answered
/// with their [`Vote`]s in the same order: one call for many orders.
pub const PREPARE_MANY_PATH: &str = "/internal/2pc/prepare-many";
/// Participant: `POST` a list of transaction ids to commit, answered with [`Committed`];
/// idempotent.
pub const COMMIT_MANY_PATH: &str = "/internal/2pc/commit-many";

/// A participant's answer to a commit: the read token of its database after the commit, if it
/// reads from standbys (a read that presents it sees the commit).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Committed {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read_token: Option<String>,
}

/// The header that carries a read token: on an answer, the position the read (or the write)
/// reflects; on a request, the position a read must reflect (read-your-writes, monotonic
/// reads). Stats reads from standbys honour it.
pub const READ_TOKEN_HEADER: &str = "converge-read-token";

/// The header that says which database node served a read: `primary`, or `standby-N` (its
/// place in the service's list of standbys).
pub const SERVED_BY_HEADER: &str = "converge-served-by";
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
/// Producer: `GET ?after=CURSOR&limit=N&wait_ms=W&consumer=NAME`, answered with a
/// [`FeedPage`]. `consumer` tells the producer how far that consumer has got, so that it can
/// prune what every consumer has passed.
pub const FEED_PATH: &str = "/internal/feed";
/// Every service: `GET`, answered with a [`DeadLetterList`] (bodies included).
pub const DEAD_LETTERS_PATH: &str = "/internal/dead-letters";
/// Every service: `POST /internal/dead-letters/{id}/replay`: applies the event again, and
/// removes it from the list if it now applies (`204`); `409` with the error if it fails again.
pub fn replay_path(id: i64) -> String {
    format!("/internal/dead-letters/{id}/replay")
}
/// Every service: `POST /internal/dead-letters/{id}/discard`: removes it unapplied (`204`).
pub fn discard_path(id: i64) -> String {
    format!("/internal/dead-letters/{id}/discard")
}
/// Every service: `POST {"delay_ms": N}` sets the service's processing delay at run time
/// (`204`); `GET` answers the delay in force as a [`ProcessingDelay`].
pub const PROCESSING_DELAY_PATH: &str = "/internal/admin/processing-delay";
/// Every service: `POST {"delay_ms": N}`: sets the delay added to each of its calls to other
/// services (a slower network), at run time; `GET` answers the delay in force.
pub const NETWORK_DELAY_PATH: &str = "/internal/admin/network-delay";
/// The largest processing or network delay a service accepts, in ms: a delay above a minute
/// is a typo, not an experiment.
pub const PROCESSING_DELAY_MS_MAX: u64 = 60_000;
/// Every consumer service: `POST`, stops taking events (after the batch in hand) until resumed.
pub const PAUSE_PATH: &str = "/internal/admin/consumers/pause";
/// Every consumer service: `POST`, takes events again.
pub const RESUME_PATH: &str = "/internal/admin/consumers/resume";
/// Every service: `GET`, answered with a [`ServiceStatus`].
pub const STATUS_PATH: &str = "/internal/status";
/// Every service: `GET`, its metrics in Prometheus text format.
pub const METRICS_PATH: &str = "/internal/metrics";

/// Arms a crash point of this process (`POST` [`CrashPoint`]): it aborts the next time it
/// passes there. Served only by builds with crash points (`--features failpoints`).
pub const CRASH_POINT_PATH: &str = "/internal/admin/crash-point";

/// The crash point to arm, by name (`order::after-decision`, `stats::after-apply`, …).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CrashPoint {
    pub name: String,
}

/// `converge up`'s supervisor: the processes it runs (`GET`), with the shared secret.
pub const PROCESSES_PATH: &str = "/internal/processes";

/// What the supervisor does to one process: `SIGKILL` it (it stays down), or start it again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProcessAction {
    Kill,
    Restart,
}

impl ProcessAction {
    pub fn as_str(self) -> &'static str {
        match self {
            ProcessAction::Kill => "kill",
            ProcessAction::Restart => "restart",
        }
    }
}

/// `POST` here acts on instance `index` of `part` (a service's name, or `gateway`).
pub fn process_action_path(part: &str, index: usize, action: ProcessAction) -> String {
    format!("{PROCESSES_PATH}/{part}/{index}/{}", action.as_str())
}

/// One process as the supervisor reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessStatus {
    /// A service's name, or `gateway`.
    pub part: String,
    pub index: usize,
    /// Its own address, `127.0.0.1:PORT`.
    pub addr: String,
    /// Its process id while it runs; `None` once killed (it stays down until restarted).
    pub pid: Option<u32>,
}

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
    /// The newest position in the feed when the page was read.
    pub head: Cursor,
}

/// An event a consumer set aside because it can never be applied as it is.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DeadLetter {
    /// The handle to replay or discard it with.
    pub id: i64,
    pub feed: String,
    #[serde(flatten)]
    pub cursor: Cursor,
    pub event_id: String,
    /// The event as it came; left out of the public listing, which must not show event
    /// bodies to anyone who can reach the user-facing address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<serde_json::Value>,
    pub error: String,
    pub attempts: i64,
    pub recorded_at_ms: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DeadLetterList {
    pub dead_letters: Vec<DeadLetter>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessingDelay {
    pub delay_ms: u64,
}

/// What a consumer is doing.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ConsumerState {
    /// Taking events as they come (or at its next tick, in cron mode).
    #[default]
    Running,
    /// Paused by an operator.
    Paused,
    /// Its last batch failed and is being retried: see `stuck_since_ms` and `last_error`.
    Stuck,
    /// Another instance of the service holds this feed; this one waits to take over.
    Standby,
}

/// One consumer of one feed, as its service sees it.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ConsumerStatus {
    /// The cursor of the last event applied (or set aside), as stored with the effects.
    pub position: Cursor,
    pub state: ConsumerState,
    /// Since when the batch in hand has been failing, in milliseconds since the Unix epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stuck_since_ms: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
}

/// How far a service has got: its own outbox (producers) and its position in each feed it
/// consumes. The system is quiet when every consumer has reached its producer's head, every
/// event is published, and nothing is in doubt.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ServiceStatus {
    /// Producers: the newest event consumers can read, in the feed's own cursors (the
    /// outbox's, or the broker stream's once published).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outbox_head: Option<Cursor>,
    /// Producers with a broker: events committed to the outbox and not yet published.
    #[serde(default)]
    pub unpublished: i64,
    /// Consumers, by feed (named after its producer).
    #[serde(default)]
    pub consumers: BTreeMap<String, ConsumerStatus>,
    /// Two-phase-commit entries prepared here and not yet committed or aborted.
    pub in_doubt: i64,
}
