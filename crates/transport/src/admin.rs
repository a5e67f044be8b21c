//! The internal routes every service has for the transport's state: how far it has got in
//! each feed and in publishing its own, what it holds in doubt, its dead letters (listed,
//! replayed, discarded) and pausing its consumers.

use std::collections::BTreeMap;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use contracts::events::Cursor;
use contracts::internal::{
    ConsumerStatus, DEAD_LETTERS_PATH, DeadLetterList, PAUSE_PATH, RESUME_PATH, STATUS_PATH,
    ServiceStatus,
};
use runtime::{ApiError, ApiJson};
use storage::{Db, DbError};

use crate::consumer::Control;
use crate::{Outbox, inbox, outbox, relay};

/// Where a producer's feed stands.
#[derive(Debug, Clone)]
pub enum Head {
    /// The embedded transport: consumers read the outbox itself.
    Outbox(Outbox),
    /// A broker: consumers read the stream the relay publishes to.
    Relay { stream: String },
}

/// What the admin routes look at.
#[derive(Clone)]
pub struct Admin {
    pub db: Db,
    pub head: Option<Head>,
    /// Counts the service's prepared two-phase-commit entries, if it has any.
    pub in_doubt_sql: Option<&'static str>,
    pub consumers: Vec<Control>,
}

/// `GET /internal/status`, the dead-letter routes, and pause and resume.
pub fn router(admin: Admin) -> Router {
    Router::new()
        .route(STATUS_PATH, get(status))
        .route(DEAD_LETTERS_PATH, get(dead_letters))
        .route("/internal/dead-letters/{id}/replay", post(replay))
        .route("/internal/dead-letters/{id}/discard", post(discard))
        .route(PAUSE_PATH, post(pause))
        .route(RESUME_PATH, post(resume))
        .with_state(admin)
}

async fn status(State(admin): State<Admin>) -> Result<ApiJson<ServiceStatus>, ApiError> {
    let (head, in_doubt_sql) = (admin.head.clone(), admin.in_doubt_sql);
    let (outbox_head, unpublished, in_doubt, positions) = admin
        .db
        .read(move |tx| {
            // Positions before heads: a batch that advances a position commits the events it
            // produces with it, so the head read after can only be as new or newer. Read the
            // other way round, a commit in between would show a producer caught up with a head
            // that misses the events it just wrote, and a busy system would look quiet.
            let positions = inbox::positions(tx)?;
            let (outbox_head, unpublished) = match &head {
                None => (None, 0),
                // The head as committed, read from the table: an in-memory head is bumped just
                // after a commit, and a status read in between would call a busy system quiet.
                Some(Head::Outbox(_)) => (Some(outbox::head(tx)?), 0),
                Some(Head::Relay { stream }) => {
                    let (published, stream_seq) = relay::published(tx, stream)?;
                    (
                        Some(Cursor::new(0, stream_seq)),
                        outbox::count_after(tx, published)?,
                    )
                }
            };
            let in_doubt: i64 = match in_doubt_sql {
                Some(sql) => tx.query_one(sql, &[])?,
                None => 0,
            };
            Ok::<_, DbError>((outbox_head, unpublished, in_doubt, positions))
        })
        .await?;
    // Every position as read above, before the heads (never read again: a later read could
    // pass events the heads above do not show), with each running consumer's state.
    let mut consumers: BTreeMap<String, ConsumerStatus> = positions
        .into_iter()
        .map(|(feed, position)| {
            let status = ConsumerStatus {
                position,
                ..Default::default()
            };
            (feed, status)
        })
        .collect();
    for control in &admin.consumers {
        let entry = consumers.entry(control.feed().to_owned()).or_default();
        control.live_into(entry);
    }
    Ok(ApiJson(ServiceStatus {
        outbox_head,
        unpublished,
        consumers,
        in_doubt,
    }))
}

async fn dead_letters(State(admin): State<Admin>) -> Result<ApiJson<DeadLetterList>, ApiError> {
    let dead_letters = admin.db.read(|tx| inbox::dead_letters(tx, true)).await?;
    Ok(ApiJson(DeadLetterList { dead_letters }))
}

async fn replay(State(admin): State<Admin>, Path(id): Path<i64>) -> Result<StatusCode, ApiError> {
    let found = admin
        .db
        .read(move |tx| inbox::dead_letter_event(tx, id))
        .await?;
    let Some((feed, _)) = found else {
        return Err(ApiError::not_found("dead letter", &id.to_string()));
    };
    let control = admin
        .consumers
        .iter()
        .find(|c| c.feed() == feed)
        .ok_or_else(|| {
            ApiError::Conflict(format!(
                "no consumer of the {feed} feed runs in this instance"
            ))
        })?;
    control
        .replay(id)
        .await
        .map_err(|error| ApiError::Conflict(format!("the event failed again: {error}")))?;
    Ok(StatusCode::NO_CONTENT)
}

async fn discard(State(admin): State<Admin>, Path(id): Path<i64>) -> Result<StatusCode, ApiError> {
    let removed = admin
        .db
        .write(move |tx| inbox::remove_dead_letter(tx, id))
        .await?;
    if removed {
        tracing::info!(id, "dead letter discarded");
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found("dead letter", &id.to_string()))
    }
}

async fn pause(State(admin): State<Admin>) -> StatusCode {
    admin.consumers.iter().for_each(Control::pause);
    tracing::info!("consumers paused");
    StatusCode::NO_CONTENT
}

async fn resume(State(admin): State<Admin>) -> StatusCode {
    admin.consumers.iter().for_each(Control::resume);
    tracing::info!("consumers resumed");
    StatusCode::NO_CONTENT
}
