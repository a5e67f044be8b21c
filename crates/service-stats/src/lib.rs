//! The Stats service counts confirmed orders and revenue, per account, in total and per
//! minute.
//!
//! How an order reaches it depends on the mode: a two-phase commit (strong), the Order
//! service's feed read continuously (queue) or by a periodic batch job (cron). The counting is
//! the same in every mode (`store`): idempotent per order.
//!
//! - `store`: every statement Stats runs, for SQLite and PostgreSQL.
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

use crate::store::Placed;

static MIGRATIONS: &[Migration] = &[Migration {
    name: "stats_0001",
    sqlite: include_str!("../migrations/sqlite/0001_stats.sql"),
    postgres: include_str!("../migrations/postgres/0001_stats.sql"),
}];

pub async fn build(
    config: ServiceConfig,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> anyhow::Result<App> {
    let mut service =
        Service::open(ServiceName::Stats, config, MIGRATIONS, listener, shutdown).await?;
    let stats = Stats {
        db: service.db().clone(),
        metrics: service.metrics().clone(),
    };
    match service.mode() {
        Mode::Strong => service.participant(Arc::new(stats.clone())),
        Mode::Queue | Mode::Cron => service.consume(ServiceName::Order, stats.clone()),
    }
    service.in_doubt(store::IN_DOUBT_SQL);
    let keep = service.config().retention.decisions.as_millis() as i64;
    service.prune(Rule {
        what: "stats tombstones of aborted prepares",
        prune: Box::new(move |tx, now| store::prune_aborted(tx, now - keep)),
    });
    service.serve(http::routes(stats))
}

#[derive(Clone)]
struct Stats {
    db: Db,
    metrics: Metrics,
}

impl Apply for Stats {
    type Context = ();
    /// The acknowledgement times of the orders counted, for the apply-lag metric.
    type Output = Vec<i64>;

    fn apply(&self, tx: &mut Tx<'_>, events: &[Event], (): ()) -> Result<Vec<i64>, ApplyError> {
        // Runs of placed orders are counted as a set; a cancellation is applied in its place
        // in the order, after the run before it.
        let mut counted = Vec::new();
        let mut run: Vec<Placed> = Vec::new();
        for event in events {
            match transport::consumer::decode(event)? {
                EventBody::OrderPlaced {
                    order_id,
                    account_id,
                    total_cents,
                    acknowledged_at_ms,
                    ..
                } => run.push(Placed {
                    order_id,
                    account_id,
                    total_cents,
                    acknowledged_at_ms,
                }),
                EventBody::OrderCancelled {
                    order_id,
                    account_id,
                    total_cents,
                    ..
                } => {
                    counted.extend(store::count_all(tx, &std::mem::take(&mut run))?);
                    let cancelled = Placed {
                        order_id,
                        account_id,
                        total_cents,
                        acknowledged_at_ms: 0,
                    };
                    store::uncount(tx, &cancelled)?;
                }
                // Payment's verdicts travel on another feed.
                _ => {}
            }
        }
        counted.extend(store::count_all(tx, &run)?);
        Ok(counted.into_iter().map(|p| p.acknowledged_at_ms).collect())
    }

    fn committed(&self, acknowledged: Vec<i64>) {
        for at in acknowledged {
            self.metrics.observe_apply(at);
        }
    }
}

impl twophase::Participant for Stats {
    /// With standbys, the primary's position after the commit: a strong-mode order's answer
    /// carries it, so a read that presents it sees the order on any node.
    async fn read_token(&self) -> Option<String> {
        if !self.db.has_standbys() {
            return None;
        }
        match self.db.write_token().await {
            Ok(token) => token.map(|lsn| lsn.to_string()),
            Err(error) => {
                tracing::warn!(%error, "cannot read the write position for a read token");
                None
            }
        }
    }

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
            .write(move |tx| store::count_pending_all(tx, &tx_ids))
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
