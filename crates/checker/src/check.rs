//! [`check`]: read the system, audit it, judge what was found.

use std::collections::{HashMap, HashSet};

use futures::{StreamExt, TryStreamExt, stream};

use crate::audit::{self, Finding, Listing, Moment, Sums};
use crate::fetch::Api;
use crate::model::{AccountSnapshot, Order, Totals};
use crate::{CheckError, CheckOptions, Report};

/// Reads the whole system at `base_url` (e.g. `http://127.0.0.1:8080`) and reports every
/// violation of the invariants. An `Err` means the system could not be read, never that an
/// invariant is broken.
pub async fn check(
    http: &reqwest::Client,
    base_url: &str,
    options: &CheckOptions,
) -> Result<Report, CheckError> {
    let api = Api::new(http, base_url)?;
    let accounts = api.account_ids().await?;
    let audited = audit_accounts(&api, &accounts, options).await?;
    let totals = api.totals().await?;
    let acknowledged = read_acknowledged(&api, options).await?;

    let mut findings: Vec<Finding> = Vec::new();
    let mut summed = Sums::default();
    let mut listed: HashMap<&str, Listing<'_>> = HashMap::with_capacity(accounts.len());
    for (account_id, audit) in accounts.iter().zip(&audited) {
        summed.add(&audit.stats);
        findings.extend(audit.findings.iter().cloned());
        listed.insert(
            account_id,
            Listing {
                order_ids: &audit.order_ids,
            },
        );
    }
    findings.extend(audit::audit_totals(&totals, &summed, accounts.len()));
    for ((order_id, account_id), found) in &acknowledged {
        findings.extend(audit::audit_acknowledged(
            order_id,
            account_id,
            found.as_ref(),
            listed.get(account_id.as_str()),
        ));
    }

    let moment = Moment {
        settled: options.expect_settled,
        quiet: false,
    };
    let judged = audit::judge(findings, moment);
    Ok(Report {
        accounts: accounts.len(),
        orders: audited.iter().map(|a| a.order_ids.len()).sum(),
        violations: judged.violations,
        in_flight: judged.in_flight,
    })
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
    fn of(snapshot: &AccountSnapshot) -> Self {
        Self {
            findings: audit::audit_account(snapshot),
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
    options: &CheckOptions,
) -> Result<Vec<AccountAudit>, CheckError> {
    stream::iter(accounts)
        .map(|account_id| async move {
            let snapshot = api.account_snapshot(account_id).await?;
            Ok::<_, CheckError>(AccountAudit::of(&snapshot))
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
