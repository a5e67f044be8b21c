//! The coordinator's calls to its participants. The decision log and the order itself live in
//! the Order service; this module only talks.

use contracts::api::Refusal;
use contracts::internal::{PREPARE_PATH, PrepareRequest, Vote, abort_path, commit_path};
use futures::future::join_all;
use runtime::{CallError, Peer};

/// How phase one went.
#[derive(Debug)]
pub enum Votes {
    /// Every participant promised.
    AllYes,
    /// At least one participant refused; the most telling reason (unknown account, then
    /// suspended, then funds).
    Refused(Refusal),
    /// A participant did not answer or failed: the order cannot commit.
    Failed(CallError),
}

/// Phase one: asks every participant at once and waits for all answers (each call has its
/// own timeout, so this waits at most one timeout).
pub async fn prepare_all(participants: &[Peer], request: &PrepareRequest) -> Votes {
    let answers = join_all(
        participants
            .iter()
            .map(|p| p.post::<_, Vote>(PREPARE_PATH, request)),
    )
    .await;
    let mut refusal: Option<Refusal> = None;
    let mut failure = None;
    for answer in answers {
        match answer {
            Ok(Vote::Yes) => {}
            Ok(Vote::No { reason }) => {
                refusal = Some(match refusal {
                    Some(current) if rank(current) <= rank(reason) => current,
                    _ => reason,
                });
            }
            Err(error) => {
                failure.get_or_insert(error);
            }
        }
    }
    match (refusal, failure) {
        (Some(reason), _) => Votes::Refused(reason),
        (None, Some(error)) => Votes::Failed(error),
        (None, None) => Votes::AllYes,
    }
}

fn rank(reason: Refusal) -> u8 {
    match reason {
        Refusal::UnknownAccount => 0,
        Refusal::AccountSuspended => 1,
        Refusal::InsufficientFunds => 2,
    }
}

/// Phase two, commit: every participant must apply. Returns the first failure; the caller
/// leaves the decision incomplete in its log, and recovery finishes it.
pub async fn commit_all(participants: &[Peer], tx_id: &str) -> Result<(), CallError> {
    let path = commit_path(tx_id);
    join_all(participants.iter().map(|p| p.post_empty(&path)))
        .await
        .into_iter()
        .collect()
}

/// Phase two, abort: best effort. A participant that misses it asks the coordinator later and
/// learns `abort` (presumed abort).
pub async fn abort_all(participants: &[Peer], tx_id: &str) {
    let path = abort_path(tx_id);
    for result in join_all(participants.iter().map(|p| p.post_empty(&path))).await {
        if let Err(error) = result {
            tracing::debug!(tx_id, %error, "abort not delivered; the participant will ask");
        }
    }
}
