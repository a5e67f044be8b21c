//! Reading and writing a batch's wallets and payments at once: what deciding a run of orders
//! (eventual modes) and holding a batch of prepares (strong mode) have in common.

use std::collections::{BTreeMap, HashSet};

use sqlx::{QueryBuilder, Sqlite, SqliteConnection};

/// A wallet's figures as read inside the batch's transaction: `(balance, held, top_ups)`.
pub(crate) type Figures = (i64, i64, i64);

/// The orders among `order_ids` that already have a payment (or a hold).
pub(crate) async fn with_payment<'a>(
    tx: &mut SqliteConnection,
    order_ids: impl IntoIterator<Item = &'a str>,
) -> Result<HashSet<String>, sqlx::Error> {
    let mut query =
        QueryBuilder::<Sqlite>::new("SELECT order_id FROM payments WHERE order_id IN (");
    let mut ids = query.separated(", ");
    for id in order_ids {
        ids.push_bind(id.to_owned());
    }
    query.push(")");
    Ok(query
        .build_query_scalar()
        .fetch_all(&mut *tx)
        .await?
        .into_iter()
        .collect())
}

/// The wallets of `account_ids` that exist, by account.
pub(crate) async fn read<'a>(
    tx: &mut SqliteConnection,
    account_ids: impl IntoIterator<Item = &'a str>,
) -> Result<BTreeMap<String, Figures>, sqlx::Error> {
    let mut query = QueryBuilder::<Sqlite>::new(
        "SELECT account_id, balance_cents, held_cents, top_ups_cents FROM wallets WHERE account_id IN (",
    );
    let mut ids = query.separated(", ");
    for id in account_ids {
        ids.push_bind(id.to_owned());
    }
    query.push(")");
    let rows: Vec<(String, i64, i64, i64)> = query.build_query_as().fetch_all(&mut *tx).await?;
    Ok(rows
        .into_iter()
        .map(|(a, b, h, t)| (a, (b, h, t)))
        .collect())
}

/// Which figure of a wallet a batch changed.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Changed {
    Balance,
    Held,
}

/// Writes back the `changed` figure of each wallet in one statement.
pub(crate) async fn write<'a>(
    tx: &mut SqliteConnection,
    wallets: impl IntoIterator<Item = (&'a str, Figures)>,
    changed: Changed,
) -> Result<(), sqlx::Error> {
    let wallets: Vec<(&str, Figures)> = wallets.into_iter().collect();
    if wallets.is_empty() {
        return Ok(());
    }
    let mut update = QueryBuilder::<Sqlite>::new(
        "INSERT INTO wallets (account_id, balance_cents, held_cents, top_ups_cents) ",
    );
    update.push_values(
        &wallets,
        |mut row, (account_id, (balance, held, top_ups))| {
            row.push_bind(*account_id)
                .push_bind(*balance)
                .push_bind(*held)
                .push_bind(*top_ups);
        },
    );
    update.push(match changed {
        Changed::Balance => {
            " ON CONFLICT (account_id) DO UPDATE SET balance_cents = excluded.balance_cents"
        }
        Changed::Held => " ON CONFLICT (account_id) DO UPDATE SET held_cents = excluded.held_cents",
    });
    update.build().execute(&mut *tx).await?;
    Ok(())
}
