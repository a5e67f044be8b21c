//! Whether the system is quiet: waiting for `/progress` to say so, telling whether it stayed
//! so while the check read, and naming what is still moving when it is not.
//!
//! Quiet is the gateway's verdict (every event produced has been consumed, no two-phase commit
//! is in doubt, every service answered); the checker takes it as given and only reads the
//! services' figures to say *why* not.

use std::time::{Duration, Instant};

use crate::CheckError;
use crate::fetch::{Api, READ_TIMEOUT};
use crate::model::{Progress, Totals};

/// The services `/progress` must hear from: the brief's five.
const SERVICES: [&str; 5] = ["account", "order", "payment", "loyalty", "stats"];

/// How long [`wait_quiet`] sleeps between two reads of `/progress`. Each read asks all five
/// services for their status, so 50 a second stays a small load next to the system catching
/// up on two cores, and 20 ms is far below the time a busy system takes to drain.
const POLL_INTERVAL: Duration = Duration::from_millis(20);

/// The least time one read of `/progress` is given, so a timeout about to pass (or of zero)
/// still makes one full attempt rather than fail on a read cut short.
const POLL_READ_TIMEOUT_MIN: Duration = Duration::from_secs(1);

/// Polls `GET /progress` at `base_url` until it says quiet, for at most `timeout`, and returns
/// what it said then.
///
/// A read that fails in a way a retry can mend (nothing listening, a `5xx`, a timeout: a
/// gateway restarting in a drill) is retried until the timeout; any other is returned at once.
/// When the timeout passes, [`CheckError::NotQuiet`] names what is still not quiet.
pub async fn wait_quiet(
    http: &reqwest::Client,
    base_url: &str,
    timeout: Duration,
) -> Result<Progress, CheckError> {
    wait(&Api::new(http, base_url)?, timeout).await
}

/// [`wait_quiet`] on an [`Api`] already parsed.
pub(crate) async fn wait(api: &Api<'_>, timeout: Duration) -> Result<Progress, CheckError> {
    let started = Instant::now();
    let deadline = started + timeout;
    loop {
        let remaining = deadline.saturating_duration_since(Instant::now());
        let read_timeout = remaining.clamp(POLL_READ_TIMEOUT_MIN, READ_TIMEOUT);
        let still = match api.progress(read_timeout).await {
            Ok(progress) if progress.quiet => return Ok(progress),
            Ok(progress) => not_quiet_reasons(&progress).join("; "),
            Err(error) if can_retry(&error) => format!("/progress did not answer: {error}"),
            Err(error) => return Err(error),
        };
        let now = Instant::now();
        if now >= deadline {
            return Err(CheckError::NotQuiet {
                waited_ms: u64::try_from(now.duration_since(started).as_millis())
                    .unwrap_or(u64::MAX),
                still,
            });
        }
        tokio::time::sleep(POLL_INTERVAL.min(deadline - now)).await;
    }
}

/// Whether a failed read may succeed if tried again.
fn can_retry(error: &CheckError) -> bool {
    match error {
        CheckError::Unreachable { .. } => true,
        CheckError::Status { status, .. } => *status >= 500,
        _ => false,
    }
}

/// Why `progress` is not quiet, one reason per service: those that did not answer, those with
/// two-phase commits in doubt, and every consumer behind a producer's outbox head.
pub fn not_quiet_reasons(progress: &Progress) -> Vec<String> {
    let services = &progress.services;
    let mut reasons: Vec<String> = SERVICES
        .iter()
        .filter(|name| !services.contains_key(**name))
        .map(|name| format!("{name} did not answer"))
        .collect();
    for (name, status) in services.iter().filter(|(_, s)| s.in_doubt > 0) {
        reasons.push(format!(
            "{name} has {} two-phase-commit entries in doubt",
            status.in_doubt
        ));
    }
    for (name, status) in services.iter().filter(|(_, s)| s.unpublished > 0) {
        reasons.push(format!(
            "{name} has {} events not yet published",
            status.unpublished
        ));
    }
    for (producer, head) in services
        .iter()
        .filter_map(|(name, s)| Some((name, s.outbox_head.filter(|h| h.seq > 0)?)))
    {
        for (consumer, status) in services {
            match status.consumers.get(producer) {
                Some(c) if c.position < head => {
                    let mut reason = format!(
                        "{consumer} is {} events behind {producer}'s feed (at {} of {})",
                        (head.seq - c.position.seq).max(1),
                        c.position.seq,
                        head.seq
                    );
                    if c.state == "stuck" {
                        reason.push_str(&format!(
                            ", stuck: {}",
                            c.last_error.as_deref().unwrap_or("no error given")
                        ));
                    }
                    reasons.push(reason);
                }
                _ => {}
            }
        }
    }
    if reasons.is_empty() && !progress.quiet {
        reasons.push(
            "/progress says not quiet, though no service is behind or in doubt that the \
             checker can name"
                .to_owned(),
        );
    }
    reasons
}

/// What the system said about itself at one instant: taken before and after the check's reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Reading {
    pub(crate) progress: Progress,
    /// `GET /stats`: in strong mode every confirmed order moves it, while `/progress` has no
    /// feeds to show one.
    pub(crate) totals: Totals,
}

impl Reading {
    pub(crate) async fn take(api: &Api<'_>) -> Result<Self, CheckError> {
        Ok(Self {
            progress: api.progress(READ_TIMEOUT).await?,
            totals: api.totals().await?,
        })
    }
}

/// Whether the system was quiet for the whole check: quiet before and after its reads, and
/// nothing moved in between (every service's figures and `/stats` the same). An order placed
/// and applied between two quiet readings would move a position (eventual modes) or `/stats`
/// (strong mode), so the check's reads all saw one settled state.
pub(crate) fn quiet_throughout(before: &Reading, after: &Reading) -> bool {
    before.progress.quiet && after.progress.quiet && before == after
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Consumer, Position, ServiceStatus};

    fn at(seq: i64) -> Position {
        Position { tx: 0, seq }
    }

    fn status(head: Option<i64>, positions: &[(&str, i64)], in_doubt: i64) -> ServiceStatus {
        ServiceStatus {
            outbox_head: head.map(at),
            unpublished: 0,
            consumers: positions
                .iter()
                .map(|(p, seq)| {
                    let consumer = Consumer {
                        position: at(*seq),
                        state: "running".into(),
                        last_error: None,
                    };
                    ((*p).to_owned(), consumer)
                })
                .collect(),
            in_doubt,
        }
    }

    /// Queue mode at rest: Order's feed (head 10) read by three, Payment's (head 4) by Order.
    fn at_rest() -> Progress {
        Progress {
            quiet: true,
            services: [
                ("account", status(None, &[], 0)),
                ("order", status(Some(10), &[("payment", 4)], 0)),
                ("payment", status(Some(4), &[("order", 10)], 0)),
                ("loyalty", status(None, &[("order", 10)], 0)),
                ("stats", status(None, &[("order", 10)], 0)),
            ]
            .into_iter()
            .map(|(n, s)| (n.to_owned(), s))
            .collect(),
        }
    }

    #[test]
    fn a_quiet_system_has_no_reason_not_to_be() {
        assert_eq!(not_quiet_reasons(&at_rest()), Vec::<String>::new());
    }

    #[test]
    fn each_service_behind_in_doubt_or_silent_is_named() {
        let mut progress = at_rest();
        progress.quiet = false;
        progress.services.remove("account");
        let services = &mut progress.services;
        let stats = services.get_mut("stats").unwrap();
        let behind = stats.consumers.get_mut("order").unwrap();
        behind.position = at(7);
        behind.state = "stuck".into();
        behind.last_error = Some("disk full".into());
        services
            .get_mut("order")
            .unwrap()
            .consumers
            .get_mut("payment")
            .unwrap()
            .position = at(3);
        services.get_mut("payment").unwrap().in_doubt = 2;
        assert_eq!(
            not_quiet_reasons(&progress),
            [
                "account did not answer",
                "payment has 2 two-phase-commit entries in doubt",
                "stats is 3 events behind order's feed (at 7 of 10), stuck: disk full",
                "order is 1 events behind payment's feed (at 3 of 4)",
            ]
        );
    }

    #[test]
    fn not_quiet_without_a_reason_the_checker_can_name_still_says_so() {
        let mut progress = at_rest();
        progress.quiet = false;
        let reasons = not_quiet_reasons(&progress);
        assert_eq!(reasons.len(), 1);
        assert!(reasons[0].contains("says not quiet"), "{reasons:?}");
    }

    fn reading(progress: Progress, orders: i64) -> Reading {
        Reading {
            progress,
            totals: Totals {
                orders,
                revenue_cents: orders * 100,
            },
        }
    }

    #[test]
    fn quiet_before_and_after_with_nothing_moved_is_quiet_throughout() {
        assert!(quiet_throughout(
            &reading(at_rest(), 5),
            &reading(at_rest(), 5)
        ));
    }

    #[test]
    fn not_quiet_at_either_end_is_not_quiet_throughout() {
        let mut busy = at_rest();
        busy.quiet = false;
        assert!(!quiet_throughout(
            &reading(busy.clone(), 5),
            &reading(at_rest(), 5)
        ));
        assert!(!quiet_throughout(&reading(at_rest(), 5), &reading(busy, 5)));
    }

    #[test]
    fn a_feed_that_moved_between_two_quiet_readings_is_not_quiet_throughout() {
        // An order placed and fully applied while the check read: quiet at both ends.
        let mut later = at_rest();
        for status in later.services.values_mut() {
            if let Some(consumer) = status.consumers.get_mut("order") {
                consumer.position = at(11);
            }
        }
        later.services.get_mut("order").unwrap().outbox_head = Some(at(11));
        assert!(!quiet_throughout(
            &reading(at_rest(), 5),
            &reading(later, 5)
        ));
    }

    #[test]
    fn stats_that_moved_between_two_quiet_readings_is_not_quiet_throughout() {
        // Strong mode: no feeds, only /stats shows the order committed in between.
        assert!(!quiet_throughout(
            &reading(at_rest(), 5),
            &reading(at_rest(), 6)
        ));
    }

    #[test]
    fn only_reads_a_retry_can_mend_are_retried() {
        let status = |status| CheckError::Status {
            url: "u".to_owned(),
            status,
            body: String::new(),
        };
        assert!(can_retry(&CheckError::Unreachable {
            url: "u".to_owned(),
            detail: "refused".to_owned(),
        }));
        assert!(can_retry(&status(503)));
        assert!(!can_retry(&status(404)));
        assert!(!can_retry(&CheckError::BadJson {
            url: "u".to_owned(),
            detail: "d".to_owned(),
        }));
    }
}
