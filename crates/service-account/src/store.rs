//! Account's table: every statement it runs, for both engines.

use std::collections::BTreeMap;

use contracts::api::{Account, AccountStatus, Refusal};
use contracts::now_ms;
use storage::{DbError, Param, Tx, sql};

type Row = (String, String, String);

fn account((id, name, status): Row) -> Account {
    Account {
        id,
        name,
        status: if status == "suspended" {
            AccountStatus::Suspended
        } else {
            AccountStatus::Active
        },
    }
}

pub(crate) fn insert(tx: &mut Tx<'_>, account: &Account) -> Result<(), DbError> {
    tx.execute(
        "INSERT INTO accounts (id, name, status, created_at_ms) VALUES ($1, $2, 'active', $3)",
        &[&account.id, &account.name, &now_ms()],
    )?;
    Ok(())
}

pub(crate) fn find(tx: &mut Tx<'_>, id: &str) -> Result<Option<Account>, DbError> {
    let row: Option<Row> = tx.query_opt(
        "SELECT id, name, status FROM accounts WHERE id = $1",
        &[&id],
    )?;
    Ok(row.map(account))
}

pub(crate) fn page(tx: &mut Tx<'_>, after: &str, limit: i64) -> Result<Vec<Account>, DbError> {
    let rows: Vec<Row> = tx.query(
        "SELECT id, name, status FROM accounts WHERE id > $1 ORDER BY id LIMIT $2",
        &[&after, &limit],
    )?;
    Ok(rows.into_iter().map(account).collect())
}

pub(crate) fn suspend(tx: &mut Tx<'_>, id: &str) -> Result<Option<Account>, DbError> {
    let row: Option<Row> = tx.query_opt(
        "UPDATE accounts SET status = 'suspended' WHERE id = $1 RETURNING id, name, status",
        &[&id],
    )?;
    Ok(row.map(account))
}

/// For each account asked about: `None` if it may order, else why not. One query for all.
pub(crate) fn verdicts(
    tx: &mut Tx<'_>,
    ids: &[String],
) -> Result<BTreeMap<String, Option<Refusal>>, DbError> {
    let mut verdicts: BTreeMap<String, Option<Refusal>> = ids
        .iter()
        .map(|id| (id.clone(), Some(Refusal::UnknownAccount)))
        .collect();
    if ids.is_empty() {
        return Ok(verdicts);
    }
    let params: Vec<&dyn Param> = verdicts.keys().map(|id| id as &dyn Param).collect();
    let rows: Vec<(String, String)> = tx.query(
        &format!(
            "SELECT id, status FROM accounts WHERE id IN ({})",
            sql::list(params.len(), 1)
        ),
        &params,
    )?;
    for (id, status) in rows {
        let verdict = (status == "suspended").then_some(Refusal::AccountSuspended);
        verdicts.insert(id, verdict);
    }
    Ok(verdicts)
}
