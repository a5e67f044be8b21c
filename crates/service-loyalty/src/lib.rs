//! The Loyalty service grants one point per whole currency unit of each confirmed order, and
//! keeps a ledger with one entry per order.
//!
//! How an order reaches it depends on the mode (two-phase commit, the Order feed read
//! continuously, or a periodic batch job); crediting is the same in every mode (`store`):
//! idempotent per order.
//!
//! - `store`: every statement Loyalty runs, for SQLite and PostgreSQL.
//! - `http`: the public routes.

mod http;
mod store;

use std::sync::Arc;

use contracts::events::{Event, EventBody};
use contracts::internal::{PrepareRequest, Vote};
use contracts::{Mode, ServiceName};
use runtime::{ApiError, App, Metrics, ServiceConfig};
use service_kit::Service;
use storage::{Db, Migration, Tx};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use transport::prune::Rule;
use transport::{Apply, ApplyError};

use crate::store::Credit;

static MIGRATIONS: &[Migration] = &[Migration {
    name: "loyalty_0001",
    sqlite: include_str!("../migrations/sqlite/0001_loyalty.sql"),
    postgres: include_str!("../migrations/postgres/0001_loyalty.sql"),
}];

pub async fn build(
    config: ServiceConfig,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> anyhow::Result<App> {
    let mut service =
        Service::open(ServiceName::Loyalty, config, MIGRATIONS, listener, shutdown).await?;
    let loyalty = Loyalty {
        db: service.db().clone(),
        metrics: service.metrics().clone(),
    };
    match service.mode() {
        Mode::Strong => service.participant(Arc::new(loyalty.clone())),
        Mode::Queue | Mode::Cron => service.consume(ServiceName::Order, loyalty.clone()),
    }
    service.in_doubt(store::IN_DOUBT_SQL);
    let keep = service.config().retention.decisions.as_millis() as i64;
    service.prune(Rule {
        what: "loyalty tombstones of aborted prepares",
        prune: Box::new(move |tx, now| store::prune_aborted(tx, now - keep)),
    });
    service.serve(http::routes(loyalty))
}

#[derive(Clone)]
struct Loyalty {
    db: Db,
    metrics: Metrics,
}

impl Apply for Loyalty {
    type Context = ();
    /// The acknowledgement times of the orders credited, for the apply-lag metric.
    type Output = Vec<i64>;

    fn apply(&self, tx: &mut Tx<'_>, events: &[Event], (): ()) -> Result<Vec<i64>, ApplyError> {
        // Runs of placed orders are credited as a set; a cancellation is applied in its place
        // in the order, after the run before it.
        let mut credited = Vec::new();
        let mut run: Vec<Credit> = Vec::new();
        for event in events {
            match transport::consumer::decode(event)? {
                EventBody::OrderPlaced {
                    order_id,
                    account_id,
                    points,
                    acknowledged_at_ms,
                    ..
                } => run.push(Credit {
                    order_id,
                    account_id,
                    points,
                    acknowledged_at_ms,
                }),
                EventBody::OrderCancelled {
                    order_id,
                    account_id,
                    points,
                    ..
                } => {
                    credited.extend(store::credit_all(tx, &std::mem::take(&mut run))?);
                    let cancelled = Credit {
                        order_id,
                        account_id,
                        points,
                        acknowledged_at_ms: 0,
                    };
                    store::reverse(tx, &cancelled)?;
                }
                // Payment's verdicts travel on another feed.
                _ => {}
            }
        }
        credited.extend(store::credit_all(tx, &run)?);
        Ok(credited.into_iter().map(|c| c.acknowledged_at_ms).collect())
    }

    fn committed(&self, acknowledged: Vec<i64>) {
        for at in acknowledged {
            self.metrics.observe_apply(at);
        }
    }
}

impl twophase::Participant for Loyalty {
    async fn abort(&self, tx_id: String) -> Result<(), ApiError> {
        Ok(self.db.write(move |tx| store::abort(tx, &tx_id)).await?)
    }

    async fn prepare_many(&self, requests: Vec<PrepareRequest>) -> Result<Vec<Vote>, ApiError> {
        let votes = vec![Vote::Yes; requests.len()];
        self.db
            .write(move |tx| store::record_pending_all(tx, &requests))
            .await?;
        Ok(votes)
    }

    async fn commit_many(&self, tx_ids: Vec<String>) -> Result<(), ApiError> {
        let count = tx_ids.len();
        self.db
            .write(move |tx| store::credit_pending_all(tx, &tx_ids))
            .await?;
        for _ in 0..count {
            self.metrics.apply_lag.observe(0.0);
        }
        Ok(())
    }

    async fn in_doubt(&self, prepared_before_ms: i64) -> anyhow::Result<Vec<String>> {
        Ok(self
            .db
            .read(move |tx| store::in_doubt(tx, prepared_before_ms))
            .await?)
    }
}
