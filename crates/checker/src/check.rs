//! [`check`]: read the system, audit it, judge what was found.

use std::collections::{HashMap, HashSet};

use futures::{StreamExt, TryStreamExt, stream};

use crate::audit::{self, Finding, Listing, Moment, Sums};
use crate::fetch::Api;
use crate::model::{AccountSnapshot, Order, Totals};
use crate::quiet::{self, Reading};
use crate::{CheckError, CheckOptions, Report};

/// Reads the whole system at `base_url` (e.g. `http://127.0.0.1:8080`) and reports every
/// violation of the invariants, and what is still in flight. An `Err` means the system could
/// not be read (or did not become quiet within [`CheckOptions::wait_quiet`]), never that an
/// invariant is broken.
///
/// The steps: wait for quiet if asked; read `/progress` and `/stats`; read and audit each
/// account; follow the acknowledged orders; read `/progress` and `/stats` again. Whether the
/// two readings are quiet and the same decides how what was found is judged (see
/// [`Moment`]).
pub async fn check(
    http: &reqwest::Client,
    base_url: &str,
    options: &CheckOptions,
) -> Result<Report, CheckError> {
    let api = Api::new(http, base_url)?;
    if let Some(timeout) = options.wait_quiet {
        quiet::wait(&api, timeout).await?;
    }
    let before = Reading::take(&api).await?;

    let top_ups = TopUps::of(options);
    let mut accounts = api.account_ids().await?;
    top_ups.add_unlisted(&mut accounts);
    let audited = audit_accounts(&api, &accounts, &top_ups, options).await?;
    let acknowledged = read_acknowledged(&api, options).await?;

    let after = Reading::take(&api).await?;
    let quiet = quiet::quiet_throughout(&before, &after);
    let moment = Moment {
        settled: options.expect_settled || quiet,
        quiet,
    };
    let findings = gather(&accounts, &audited, &after.totals, &acknowledged);
    let judged = audit::judge(findings, moment);
    Ok(Report {
        accounts: accounts.len(),
        orders: audited.iter().map(|a| a.order_ids.len()).sum(),
        quiet,
        violations: judged.violations,
        in_flight: judged.in_flight,
    })
}

/// Every finding, in the order the report shows them: each account's, then the global
/// `/stats`, then the acknowledged orders.
fn gather(
    accounts: &[String],
    audited: &[AccountAudit],
    totals: &Totals,
    acknowledged: &[(&(String, String), Option<Order>)],
) -> Vec<Finding> {
    let mut findings: Vec<Finding> = Vec::new();
    let mut summed = Sums::default();
    let mut listed: HashMap<&str, Listing<'_>> = HashMap::with_capacity(accounts.len());
    for (account_id, audit) in accounts.iter().zip(audited) {
        summed.add(&audit.stats);
        findings.extend(audit.findings.iter().cloned());
        listed.insert(
            account_id,
            Listing {
                order_ids: &audit.order_ids,
            },
        );
    }
    findings.extend(audit::audit_totals(totals, &summed, accounts.len()));
    for ((order_id, account_id), found) in acknowledged {
        findings.extend(audit::audit_acknowledged(
            order_id,
            account_id,
            found.as_ref(),
            listed.get(account_id.as_str()),
        ));
    }
    findings
}

/// What is kept of one account once it has been audited: its findings and what the rules over
/// every account need, so memory stays small however many orders an account has.
struct AccountAudit {
    findings: Vec<Finding>,
    /// What Stats totals for the account, for the global `/stats`.
    stats: Totals,
    order_ids: HashSet<String>,
}

impl AccountAudit {
    fn of(snapshot: &AccountSnapshot, top_ups_cents: Option<i128>) -> Self {
        Self {
            findings: audit::audit_account(snapshot, top_ups_cents),
            stats: snapshot.stats,
            order_ids: snapshot.orders.iter().map(|o| o.id.clone()).collect(),
        }
    }
}

/// Reads and audits each account, `concurrency` at a time; the audits come back in the order
/// of `accounts`.
async fn audit_accounts(
    api: &Api<'_>,
    accounts: &[String],
    top_ups: &TopUps<'_>,
    options: &CheckOptions,
) -> Result<Vec<AccountAudit>, CheckError> {
    stream::iter(accounts)
        .map(|account_id| async move {
            let snapshot = api.account_snapshot(account_id).await?;
            Ok::<_, CheckError>(AccountAudit::of(&snapshot, top_ups.of_account(account_id)))
        })
        .buffered(options.concurrency.max(1))
        .try_collect()
        .await
}

/// `GET /orders/{id}` for each distinct order the caller says was acknowledged, `concurrency`
/// at a time, in the order given.
async fn read_acknowledged<'o>(
    api: &Api<'_>,
    options: &'o CheckOptions,
) -> Result<Vec<(&'o (String, String), Option<Order>)>, CheckError> {
    let mut seen = HashSet::with_capacity(options.acknowledged.len());
    let distinct: Vec<&(String, String)> = options
        .acknowledged
        .iter()
        .filter(|pair| seen.insert(*pair))
        .collect();
    stream::iter(distinct)
        .map(|pair| async move { Ok::<_, CheckError>((pair, api.order(&pair.0).await?)) })
        .buffered(options.concurrency.max(1))
        .try_collect()
        .await
}

/// The caller's acknowledged top-ups, summed per account.
struct TopUps<'o> {
    /// `None` when the caller named none: top-ups are then not checked.
    per_account: Option<HashMap<&'o str, i128>>,
    /// The accounts in the order first named, to audit those `GET /accounts` does not list.
    named: Vec<&'o str>,
}

impl<'o> TopUps<'o> {
    fn of(options: &'o CheckOptions) -> Self {
        if options.top_ups.is_empty() {
            return Self {
                per_account: None,
                named: Vec::new(),
            };
        }
        let mut per_account: HashMap<&str, i128> = HashMap::new();
        let mut named = Vec::new();
        for (account_id, amount_cents) in &options.top_ups {
            let sum = per_account.entry(account_id).or_insert_with(|| {
                named.push(account_id.as_str());
                0
            });
            *sum += i128::from(*amount_cents);
        }
        Self {
            per_account: Some(per_account),
            named,
        }
    }

    /// What `account_id`'s top-ups must add up to, if the caller said.
    fn of_account(&self, account_id: &str) -> Option<i128> {
        let per_account = self.per_account.as_ref()?;
        Some(per_account.get(account_id).copied().unwrap_or(0))
    }

    /// Appends the accounts topped up that `accounts` does not list: their wallets are
    /// audited too, or a top-up to them would go unchecked.
    fn add_unlisted(&self, accounts: &mut Vec<String>) {
        let listed: HashSet<&str> = accounts.iter().map(String::as_str).collect();
        let unlisted: Vec<String> = self
            .named
            .iter()
            .filter(|a| !listed.contains(**a))
            .map(|a| (*a).to_owned())
            .collect();
        accounts.extend(unlisted);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(top_ups: &[(&str, i64)]) -> CheckOptions {
        CheckOptions {
            top_ups: top_ups.iter().map(|(a, c)| ((*a).to_owned(), *c)).collect(),
            ..CheckOptions::default()
        }
    }

    #[test]
    fn no_top_ups_named_leaves_top_ups_unchecked() {
        let options = options(&[]);
        let top_ups = TopUps::of(&options);
        assert_eq!(top_ups.of_account("acc_1"), None);
        let mut accounts = vec!["acc_1".to_owned()];
        top_ups.add_unlisted(&mut accounts);
        assert_eq!(accounts, ["acc_1"]);
    }

    #[test]
    fn top_ups_are_summed_per_account_and_an_account_not_named_had_none() {
        let options = options(&[("acc_1", 500), ("acc_2", 100), ("acc_1", 250)]);
        let top_ups = TopUps::of(&options);
        assert_eq!(top_ups.of_account("acc_1"), Some(750));
        assert_eq!(top_ups.of_account("acc_2"), Some(100));
        assert_eq!(top_ups.of_account("acc_3"), Some(0));
    }

    #[test]
    fn accounts_topped_up_but_not_listed_are_audited_too_once_each() {
        let options = options(&[("acc_9", 1), ("acc_1", 1), ("acc_8", 1), ("acc_9", 1)]);
        let mut accounts = vec!["acc_1".to_owned(), "acc_2".to_owned()];
        TopUps::of(&options).add_unlisted(&mut accounts);
        assert_eq!(accounts, ["acc_1", "acc_2", "acc_9", "acc_8"]);
    }
}
