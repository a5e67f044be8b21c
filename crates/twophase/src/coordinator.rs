//! The coordinator's calls to its participants. The decision log and the order itself live in
//! the Order service; this module only talks.
//!
//! Prepares and commits go through a [`Link`] per participant: the prepares (or commits) of
//! concurrent orders that are waiting travel together in one call, as group commit does for
//! fsyncs. Under load that turns eight calls per order into eight calls per batch; alone, an
//! order still goes at once. Aborts are rare and go one by one.

use contracts::api::Refusal;
use contracts::internal::{
    COMMIT_MANY_PATH, Committed, PREPARE_MANY_PATH, PrepareRequest, Vote, abort_path,
};
use futures::future::join_all;
use runtime::{CallError, Peer};
use tokio::sync::{mpsc, oneshot};

/// Transactions per call at most: large enough to carry a busy moment's orders, small
/// enough to keep one call's body well under the body limit (a prepare is ~200 bytes).
pub const BATCH_MAX: usize = 256;

/// Requests that may wait for their batch; past this, callers wait to enqueue.
const QUEUE_MAX: usize = 4_096;

type Waiting<T, R> = (T, oneshot::Sender<Result<R, CallError>>);

/// A participant as the coordinator sees it.
#[derive(Debug, Clone)]
pub struct Link {
    peer: Peer,
    prepares: mpsc::Sender<Waiting<PrepareRequest, Vote>>,
    commits: mpsc::Sender<Waiting<String, Committed>>,
}

impl Link {
    /// A link to `peer`; its two senders run as tasks until every clone of the link is gone.
    pub fn new(peer: Peer) -> Self {
        let (prepares, prepare_queue) = mpsc::channel(QUEUE_MAX);
        let (commits, commit_queue) = mpsc::channel(QUEUE_MAX);
        let to = peer.clone();
        tokio::spawn(send_batches(
            prepare_queue,
            move |requests: Vec<PrepareRequest>| {
                let to = to.clone();
                async move { to.post::<_, Vec<Vote>>(PREPARE_MANY_PATH, &requests).await }
            },
        ));
        let to = peer.clone();
        tokio::spawn(send_batches(commit_queue, move |tx_ids: Vec<String>| {
            let to = to.clone();
            async move {
                let committed: Committed = to.post(COMMIT_MANY_PATH, &tx_ids).await?;
                Ok(vec![committed; tx_ids.len()])
            }
        }));
        Self {
            peer,
            prepares,
            commits,
        }
    }

    pub fn peer(&self) -> &Peer {
        &self.peer
    }

    async fn prepare(&self, request: PrepareRequest) -> Result<Vote, CallError> {
        self.enqueue(&self.prepares, request).await
    }

    async fn commit(&self, tx_id: String) -> Result<Committed, CallError> {
        self.enqueue(&self.commits, tx_id).await
    }

    async fn enqueue<T, R>(
        &self,
        queue: &mpsc::Sender<Waiting<T, R>>,
        item: T,
    ) -> Result<R, CallError> {
        let gone = || CallError::Unreachable {
            service: self.peer.service().to_owned(),
            reason: "the coordinator is shutting down".into(),
        };
        let (answer, answered) = oneshot::channel();
        queue.send((item, answer)).await.map_err(|_| gone())?;
        answered.await.map_err(|_| gone())?
    }
}

/// Calls in flight per participant and phase at most. With one, every batch waits for the
/// previous one to return: batches grow and the ceiling rises (about 1,450 orders/s against
/// 1,000 here, measured), but a slow participant's response time is added again to the next
/// orders' wait (strong latency rose by 3.5 × the Stats delay instead of 2 ×). With enough
/// calls in flight an order waits for nobody's batch but its own, and batches still form
/// from the requests that arrive together.
const CALLS_IN_FLIGHT_MAX: usize = 32;

/// Sends what is waiting, one batch per call, until the link is dropped: the answers of a
/// call go to its items in order, or the call's error to every one of them.
async fn send_batches<T, R, F, Fut>(mut queue: mpsc::Receiver<Waiting<T, R>>, call: F)
where
    T: Send + 'static,
    R: Send + 'static,
    F: Fn(Vec<T>) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = Result<Vec<R>, CallError>> + Send + 'static,
{
    let call = std::sync::Arc::new(call);
    let in_flight = std::sync::Arc::new(tokio::sync::Semaphore::new(CALLS_IN_FLIGHT_MAX));
    let mut batch = Vec::with_capacity(BATCH_MAX);
    while queue.recv_many(&mut batch, BATCH_MAX).await > 0 {
        let Ok(permit) = in_flight.clone().acquire_owned().await else {
            return;
        };
        let (items, answers): (Vec<T>, Vec<_>) = batch.drain(..).unzip();
        let call = call.clone();
        tokio::spawn(async move {
            let count = items.len();
            match call(items).await {
                Ok(results) if results.len() == count => {
                    for (answer, result) in answers.into_iter().zip(results) {
                        let _ = answer.send(Ok(result));
                    }
                }
                outcome => {
                    let error = outcome.err().unwrap_or_else(|| CallError::Decode {
                        service: "participant".into(),
                        reason: format!(
                            "a batch of {count} answered with another number of results"
                        ),
                    });
                    for answer in answers {
                        let _ = answer.send(Err(error.clone()));
                    }
                }
            }
            drop(permit);
        });
    }
}

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
pub async fn prepare_all(participants: &[Link], request: &PrepareRequest) -> Votes {
    let answers = join_all(participants.iter().map(|p| p.prepare(request.clone()))).await;
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
pub async fn commit_all(participants: &[Link], tx_id: &str) -> Result<Vec<Committed>, CallError> {
    join_all(participants.iter().map(|p| p.commit(tx_id.to_owned())))
        .await
        .into_iter()
        .collect()
}

/// Abort, confirmed: every participant must acknowledge it. Used before a retry starts a
/// fresh transaction, so that nothing the aborted one held stands in its way.
pub async fn abort_all_confirmed(participants: &[Link], tx_id: &str) -> Result<(), CallError> {
    let path = abort_path(tx_id);
    join_all(participants.iter().map(|p| p.peer().post_empty(&path)))
        .await
        .into_iter()
        .collect()
}

/// Phase two, abort: best effort. A participant that misses it asks the coordinator later and
/// learns `abort` (presumed abort).
pub async fn abort_all(participants: &[Link], tx_id: &str) {
    let path = abort_path(tx_id);
    for result in join_all(participants.iter().map(|p| p.peer().post_empty(&path))).await {
        if let Err(error) = result {
            tracing::debug!(tx_id, %error, "abort not delivered; the participant will ask");
        }
    }
}
