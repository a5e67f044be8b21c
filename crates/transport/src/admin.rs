//! The internal routes every service has for the transport's state: its position in each
//! feed, its outbox head, what it holds in doubt, and its dead letters.

use axum::Router;
use axum::extract::State;
use axum::routing::get;
use contracts::internal::{DEAD_LETTERS_PATH, DeadLetterList, STATUS_PATH, ServiceStatus};
use runtime::{ApiError, ApiJson};
use storage::Db;
use storage::sqlx;

use crate::{Outbox, inbox};

#[derive(Clone)]
struct Admin {
    db: Db,
    outbox: Option<Outbox>,
    in_doubt_sql: Option<&'static str>,
}

/// `GET /internal/status` and `GET /internal/dead-letters`. `in_doubt_sql` counts the
/// service's prepared two-phase-commit entries, if it has any.
pub fn router(db: Db, outbox: Option<Outbox>, in_doubt_sql: Option<&'static str>) -> Router {
    Router::new()
        .route(STATUS_PATH, get(status))
        .route(DEAD_LETTERS_PATH, get(dead_letters))
        .with_state(Admin {
            db,
            outbox,
            in_doubt_sql,
        })
}

async fn status(State(admin): State<Admin>) -> Result<ApiJson<ServiceStatus>, ApiError> {
    let positions = inbox::positions(&admin.db).await?.into_iter().collect();
    let in_doubt = match admin.in_doubt_sql {
        Some(sql) => sqlx::query_scalar(sql).fetch_one(&admin.db.read).await?,
        None => 0,
    };
    // The head as committed, read from the table: the in-memory head is bumped just after a
    // commit, and a status read in between would call a busy system quiet.
    let outbox_head = match admin.outbox {
        Some(_) => Some(
            sqlx::query_scalar("SELECT COALESCE(MAX(seq), 0) FROM outbox")
                .fetch_one(&admin.db.read)
                .await?,
        ),
        None => None,
    };
    Ok(ApiJson(ServiceStatus {
        outbox_head,
        positions,
        in_doubt,
    }))
}

async fn dead_letters(State(admin): State<Admin>) -> Result<ApiJson<DeadLetterList>, ApiError> {
    Ok(ApiJson(DeadLetterList {
        dead_letters: inbox::dead_letters(&admin.db).await?,
    }))
}
