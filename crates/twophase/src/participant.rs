//! The participant's side: three routes and a resolver for entries left in doubt.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use contracts::internal::{
    COMMIT_MANY_PATH, Committed, OutcomeBody, PREPARE_MANY_PATH, PREPARE_PATH, PrepareRequest,
    Vote, outcome_path,
};
use contracts::{Mode, now_ms};
use futures::future::try_join_all;
use runtime::{ApiError, ApiJson, ApiPath, Peer};
use tokio_util::sync::CancellationToken;

use crate::Outcome;
use crate::coordinator::BATCH_MAX;

/// What a service does in a two-phase commit. Every method is idempotent: the coordinator
/// and the resolver may repeat any of them.
pub trait Participant: Send + Sync + 'static {
    /// Makes the entry durable and votes. Preparing the same transaction again returns the
    /// same vote. By default, a batch of one through [`Participant::prepare_many`]: a
    /// participant implements at least one of the two.
    fn prepare(
        &self,
        request: PrepareRequest,
    ) -> impl Future<Output = Result<Vote, ApiError>> + Send {
        async move {
            let mut votes = self.prepare_many(vec![request]).await?;
            votes.pop().ok_or_else(|| {
                ApiError::Internal(anyhow::anyhow!("a batch of one prepare gave no vote"))
            })
        }
    }

    /// Applies the prepared entry. Committing a committed transaction does nothing. By
    /// default, a batch of one through [`Participant::commit_many`]: a participant implements
    /// at least one of the two.
    fn commit(&self, tx_id: String) -> impl Future<Output = Result<(), ApiError>> + Send {
        self.commit_many(vec![tx_id])
    }

    /// The read token of this participant's database after a commit, for participants whose
    /// reads may go to standbys (see [`contracts::internal::READ_TOKEN_HEADER`]). None, by
    /// default.
    fn read_token(&self) -> impl Future<Output = Option<String>> + Send {
        async { None }
    }

    /// Drops the prepared entry. Aborting an unknown or aborted transaction does nothing.
    fn abort(&self, tx_id: String) -> impl Future<Output = Result<(), ApiError>> + Send;

    /// Transactions prepared before `prepared_before_ms` and still undecided here.
    fn in_doubt(
        &self,
        prepared_before_ms: i64,
    ) -> impl Future<Output = anyhow::Result<Vec<String>>> + Send;

    /// Prepares many transactions, answering their votes in order. By default each is
    /// prepared on its own, concurrently; a participant may write them as one set.
    fn prepare_many(
        &self,
        requests: Vec<PrepareRequest>,
    ) -> impl Future<Output = Result<Vec<Vote>, ApiError>> + Send {
        try_join_all(requests.into_iter().map(|r| self.prepare(r)))
    }

    /// Commits many transactions. By default each on its own, concurrently.
    fn commit_many(
        &self,
        tx_ids: Vec<String>,
    ) -> impl Future<Output = Result<(), ApiError>> + Send {
        async move {
            try_join_all(tx_ids.into_iter().map(|tx_id| self.commit(tx_id))).await?;
            Ok(())
        }
    }
}

/// The participant routes: prepare, commit, abort, and prepare and commit of many
/// transactions at once.
pub fn router<P: Participant>(participant: Arc<P>) -> Router {
    Router::new()
        .route(PREPARE_PATH, post(prepare::<P>))
        .route(PREPARE_MANY_PATH, post(prepare_many::<P>))
        .route(COMMIT_MANY_PATH, post(commit_many::<P>))
        .route("/internal/2pc/{tx_id}/commit", post(commit::<P>))
        .route("/internal/2pc/{tx_id}/abort", post(abort::<P>))
        .with_state(participant)
}

async fn prepare<P: Participant>(
    State(participant): State<Arc<P>>,
    ApiJson(request): ApiJson<PrepareRequest>,
) -> Result<ApiJson<Vote>, ApiError> {
    participant.prepare(request).await.map(ApiJson)
}

/// Many prepares at once, in one transaction at the participant. One failure fails the call:
/// the coordinator aborts those orders.
async fn prepare_many<P: Participant>(
    State(participant): State<Arc<P>>,
    ApiJson(requests): ApiJson<Vec<PrepareRequest>>,
) -> Result<ApiJson<Vec<Vote>>, ApiError> {
    if requests.len() > BATCH_MAX {
        return Err(ApiError::Invalid(format!(
            "at most {BATCH_MAX} transactions per call"
        )));
    }
    let votes = participant.prepare_many(requests).await?;
    // Prepared and durable, the votes not yet sent: the coordinator times out and aborts, and
    // the in-doubt resolver of the restarted participant learns so.
    runtime::crash_point("participant::after-prepare");
    Ok(ApiJson(votes))
}

async fn commit_many<P: Participant>(
    State(participant): State<Arc<P>>,
    ApiJson(tx_ids): ApiJson<Vec<String>>,
) -> Result<ApiJson<Committed>, ApiError> {
    if tx_ids.len() > BATCH_MAX {
        return Err(ApiError::Invalid(format!(
            "at most {BATCH_MAX} transactions per call"
        )));
    }
    participant.commit_many(tx_ids).await?;
    // Committed here, not yet answered: the coordinator sends the commit again.
    runtime::crash_point("participant::after-commit");
    Ok(ApiJson(Committed {
        read_token: participant.read_token().await,
    }))
}

async fn commit<P: Participant>(
    State(participant): State<Arc<P>>,
    ApiPath(tx_id): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    participant.commit(tx_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn abort<P: Participant>(
    State(participant): State<Arc<P>>,
    ApiPath(tx_id): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    participant.abort(tx_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Finds entries prepared longer than `in_doubt_after` ago and asks the coordinator how their
/// transaction ended, until `shutdown`. This is what finishes a transaction whose coordinator
/// crashed, or whose commit or abort message was lost.
pub async fn resolve_in_doubt<P: Participant>(
    participant: Arc<P>,
    coordinator: Peer,
    in_doubt_after: Duration,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    // Look twice per threshold, so nothing stays in doubt much longer than the setting.
    let period = (in_doubt_after / 2).max(Duration::from_millis(50));
    let mut ticks = tokio::time::interval(period);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return Ok(()),
            _ = ticks.tick() => {}
        }
        let threshold = now_ms() - in_doubt_after.as_millis() as i64;
        let stale = match participant.in_doubt(threshold).await {
            Ok(stale) => stale,
            Err(error) => {
                tracing::warn!(error = format!("{error:#}"), "cannot list in-doubt entries");
                continue;
            }
        };
        for tx_id in stale {
            match coordinator.get::<OutcomeBody>(&outcome_path(&tx_id)).await {
                Ok(OutcomeBody { outcome }) => {
                    tracing::info!(
                        tx_id,
                        outcome = outcome.as_str(),
                        "resolved an in-doubt entry"
                    );
                    let applied = match outcome {
                        Outcome::Commit => participant.commit(tx_id.clone()).await,
                        Outcome::Abort => participant.abort(tx_id.clone()).await,
                    };
                    if let Err(error) = applied {
                        tracing::warn!(tx_id, %error, "cannot apply the outcome; will retry");
                    }
                }
                // The coordinator is down: the entry stays prepared, as 2PC requires.
                Err(error) => {
                    tracing::warn!(tx_id, %error, "coordinator unavailable; still in doubt")
                }
            }
        }
    }
}

/// Only strong mode runs two-phase commit.
pub fn enabled(mode: Mode) -> bool {
    mode == Mode::Strong
}
