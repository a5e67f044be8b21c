//! Replication policies: when the primary answers a commit, with respect to its standbys.
//!
//! | policy | `synchronous_standby_names` | `synchronous_commit` | a commit returns once |
//! |---|---|---|---|
//! | `async` | `''` | `on` | flushed on the primary |
//! | `sync` | `FIRST n (all n standbys)` | `remote_apply` | every standby has applied it |
//! | `first` | `FIRST 1 (all, by priority)` | `remote_apply` | the first standby up has applied it |
//! | `quorum` | `ANY 1 (all)` | `remote_apply` | any one standby has applied it |
//!
//! `remote_apply` (not `on`, which waits for the standby's flush only) is what makes a read on a
//! synchronous standby see the commit as soon as the writer is answered. A policy is switched
//! on a running primary with `ALTER SYSTEM` and `pg_reload_conf()`; [`apply`] waits until
//! `pg_stat_replication` shows every standby in its expected state.

use std::fmt;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tokio_postgres::Client;

/// How long [`apply`] waits for the standbys to take their new roles: a reload is signalled to
/// every process at once and takes effect within milliseconds; the rest is slack.
pub const SETTLE_MAX: Duration = Duration::from_secs(15);

/// How often [`apply`] looks whether the policy is in force: a reload takes a few ms.
const SETTLE_POLL: Duration = Duration::from_millis(20);

/// A replication policy for a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Policy {
    /// Commits wait for nobody: the standbys follow when they can.
    Async,
    /// Commits wait until every standby has applied them.
    Sync,
    /// Commits wait for one standby, the first of the list that is connected.
    First,
    /// Commits wait until any one standby has applied them.
    Quorum,
}

impl Policy {
    /// Every policy, in the order reports show them.
    pub const ALL: [Policy; 4] = [Policy::Async, Policy::Sync, Policy::First, Policy::Quorum];

    /// Its name on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            Policy::Async => "async",
            Policy::Sync => "sync",
            Policy::First => "first",
            Policy::Quorum => "quorum",
        }
    }

    /// `synchronous_standby_names` for these standbys.
    pub fn standby_names(self, standbys: &[String]) -> String {
        let list = standbys.join(", ");
        match self {
            _ if standbys.is_empty() => String::new(),
            Policy::Async => String::new(),
            Policy::Sync => format!("FIRST {} ({list})", standbys.len()),
            Policy::First => format!("FIRST 1 ({list})"),
            Policy::Quorum => format!("ANY 1 ({list})"),
        }
    }

    /// `synchronous_commit`.
    pub fn synchronous_commit(self) -> &'static str {
        match self {
            Policy::Async => "on",
            Policy::Sync | Policy::First | Policy::Quorum => "remote_apply",
        }
    }

    /// The `sync_state` `pg_stat_replication` shows for the standby at `index` once the policy
    /// is in force (all standbys streaming).
    pub fn expected_state(self, index: usize) -> &'static str {
        match self {
            Policy::Async => "async",
            Policy::Sync => "sync",
            Policy::First if index == 0 => "sync",
            Policy::First => "potential",
            Policy::Quorum => "quorum",
        }
    }

    /// The `sync_state`s a streaming standby may show under the policy.
    pub fn allowed_states(self) -> &'static [&'static str] {
        match self {
            Policy::Async => &["async"],
            Policy::Sync => &["sync"],
            Policy::First => &["sync", "potential"],
            Policy::Quorum => &["quorum"],
        }
    }

    /// One line on what a commit waits for.
    pub fn waits_for(self) -> &'static str {
        match self {
            Policy::Async => "nobody: flushed on the primary",
            Policy::Sync => "every standby to apply it",
            Policy::First => "the first connected standby to apply it",
            Policy::Quorum => "any one standby to apply it",
        }
    }
}

impl fmt::Display for Policy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What can go wrong switching a policy.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    #[error("switching the policy: {0}")]
    Db(#[from] tokio_postgres::Error),
    #[error("policy {policy} not in force after {waited:?}: standbys are {states:?}")]
    NotSettled {
        policy: Policy,
        waited: Duration,
        states: Vec<(String, String)>,
    },
}

/// Puts `policy` in force on the primary for these standbys (by name, in priority order) and
/// waits until the primary shows it and every standby streaming shows a `sync_state` the policy
/// allows. A standby that is down does not hold the switch up (the drill switches policies
/// with one stopped); which standby is `sync` under `first` depends on which are up.
pub async fn apply(
    primary: &Client,
    policy: Policy,
    standbys: &[String],
) -> Result<(), PolicyError> {
    // Names are ours (`replica1`, …: letters and digits), so quoting them is safe.
    let names = policy.standby_names(standbys);
    // One statement each: ALTER SYSTEM refuses to run in the implicit transaction of a batch.
    primary
        .batch_execute(&format!(
            "ALTER SYSTEM SET synchronous_standby_names = '{names}'"
        ))
        .await?;
    primary
        .batch_execute(&format!(
            "ALTER SYSTEM SET synchronous_commit = '{}'",
            policy.synchronous_commit()
        ))
        .await?;
    primary.execute("SELECT pg_reload_conf()", &[]).await?;
    let started = Instant::now();
    loop {
        // The reload reaches this very backend asynchronously too: ask until it shows.
        let shown: String = primary
            .query_one("SHOW synchronous_standby_names", &[])
            .await?
            .get(0);
        let states = sync_states(primary).await?;
        let settled = shown == names
            && states
                .iter()
                .all(|(_, s)| policy.allowed_states().contains(&s.as_str()));
        if settled {
            return Ok(());
        }
        if started.elapsed() >= SETTLE_MAX {
            return Err(PolicyError::NotSettled {
                policy,
                waited: SETTLE_MAX,
                states,
            });
        }
        tokio::time::sleep(SETTLE_POLL).await;
    }
}

/// `(application_name, sync_state)` of each standby streaming from the primary.
pub async fn sync_states(primary: &Client) -> Result<Vec<(String, String)>, tokio_postgres::Error> {
    let rows = primary
        .query(
            "SELECT application_name, sync_state FROM pg_stat_replication ORDER BY application_name",
            &[],
        )
        .await?;
    Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn standby_names_per_policy() {
        let two = ["replica1".to_string(), "replica2".to_string()];
        assert_eq!(Policy::Async.standby_names(&two), "");
        assert_eq!(
            Policy::Sync.standby_names(&two),
            "FIRST 2 (replica1, replica2)"
        );
        assert_eq!(
            Policy::First.standby_names(&two),
            "FIRST 1 (replica1, replica2)"
        );
        assert_eq!(
            Policy::Quorum.standby_names(&two),
            "ANY 1 (replica1, replica2)"
        );
        assert_eq!(
            Policy::Sync.standby_names(&[]),
            "",
            "no standby, nothing to wait for"
        );
        assert_eq!(Policy::Async.synchronous_commit(), "on");
        assert_eq!(Policy::Quorum.synchronous_commit(), "remote_apply");
        assert_eq!(Policy::First.expected_state(0), "sync");
        assert_eq!(Policy::First.expected_state(1), "potential");
    }
}
