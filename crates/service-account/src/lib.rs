//! The Account service owns accounts: who they are and whether they may order.
//!
//! Public: create, list, read and suspend accounts. Internal: the eligibility question that
//! Payment asks in the eventual modes, and, in strong mode, a vote in every order's
//! two-phase commit. Account is a read-only participant: it votes and has nothing to apply.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use contracts::api::{
    Account, AccountPage, AccountStatus, CreateAccountRequest, PageQuery, Refusal,
};
use contracts::internal::{
    ELIGIBILITY_PATH, EligibilityRequest, EligibilityResponse, PrepareRequest, Vote,
};
use contracts::limits::{LIST_LIMIT_MAX, NAME_CHARS_MAX};
use contracts::{ServiceName, ValidationError, now_ms};
use runtime::{ApiError, ApiJson, App, Metrics, ServiceConfig, Task};
use sqlx::Row;
use storage::Db;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// Builds the service on a bound listener. Nothing runs until the app is run.
pub async fn build(
    config: ServiceConfig,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> anyhow::Result<App> {
    let (db, committer) = Db::open(&config.data_dir, "account", &MIGRATOR, config.mode).await?;
    transport::install(&db).await?;
    let metrics = Metrics::new("account");
    let accounts = Accounts { db: db.clone() };
    let public = Router::new()
        .route("/accounts", post(create).get(list))
        .route("/accounts/{id}", get(read))
        .route("/accounts/{id}/suspend", post(suspend))
        .with_state(accounts.clone());
    // The processing delay is paid on the work others ask of Account, never on the admin
    // routes, so that a slow service can still say how far it has got.
    let mut work = Router::new()
        .route(ELIGIBILITY_PATH, post(eligibility))
        .with_state(accounts.clone());
    if config.mode == contracts::Mode::Strong {
        work = work.merge(twophase::router(Arc::new(accounts)));
    }
    let internal = runtime::http::with_processing_delay(work, config.processing_delay)
        .merge(transport::admin::router(db, None, None));
    let router = runtime::http::service_router(public, internal, &config.secret, metrics);
    let addr = listener.local_addr()?;
    Ok(App {
        name: ServiceName::Account.to_string(),
        addr,
        tasks: vec![
            Task::new("account group commit", committer.run()),
            runtime::http::serve_task(listener, router, shutdown.clone()),
        ],
        shutdown,
    })
}

#[derive(Clone)]
struct Accounts {
    db: Db,
}

fn parse_name(name: &str) -> Result<String, ValidationError> {
    let name = name.trim();
    if name.is_empty() {
        return Err(ValidationError::new("name must not be empty"));
    }
    if name.chars().count() > NAME_CHARS_MAX {
        return Err(ValidationError::new(format!(
            "name must be at most {NAME_CHARS_MAX} characters"
        )));
    }
    if name.chars().any(char::is_control) {
        return Err(ValidationError::new(
            "name must not contain control characters",
        ));
    }
    Ok(name.to_owned())
}

fn account_from(row: &sqlx::sqlite::SqliteRow) -> Account {
    let status: String = row.get("status");
    Account {
        id: row.get("id"),
        name: row.get("name"),
        status: if status == "suspended" {
            AccountStatus::Suspended
        } else {
            AccountStatus::Active
        },
    }
}

impl Accounts {
    async fn find(&self, id: &str) -> Result<Option<Account>, sqlx::Error> {
        let row = sqlx::query("SELECT id, name, status FROM accounts WHERE id = ?")
            .bind(id)
            .fetch_optional(&self.db.read)
            .await?;
        Ok(row.as_ref().map(account_from))
    }

    async fn verdict(&self, id: &str) -> Result<Option<Refusal>, sqlx::Error> {
        Ok(match self.find(id).await? {
            None => Some(Refusal::UnknownAccount),
            Some(a) if a.status == AccountStatus::Suspended => Some(Refusal::AccountSuspended),
            Some(_) => None,
        })
    }
}

async fn create(
    State(accounts): State<Accounts>,
    ApiJson(request): ApiJson<CreateAccountRequest>,
) -> Result<(StatusCode, ApiJson<Account>), ApiError> {
    let name = parse_name(&request.name)?;
    let account = Account {
        id: contracts::ids::AccountId::generate().to_string(),
        name,
        status: AccountStatus::Active,
    };
    sqlx::query(
        "INSERT INTO accounts (id, name, status, created_at_ms) VALUES (?, ?, 'active', ?)",
    )
    .bind(&account.id)
    .bind(&account.name)
    .bind(now_ms())
    .execute(&accounts.db.write)
    .await?;
    Ok((StatusCode::CREATED, ApiJson(account)))
}

async fn list(
    State(accounts): State<Accounts>,
    Query(page): Query<PageQuery>,
) -> Result<ApiJson<AccountPage>, ApiError> {
    let limit = page.limit()?;
    let rows =
        sqlx::query("SELECT id, name, status FROM accounts WHERE id > ? ORDER BY id LIMIT ?")
            .bind(page.after())
            .bind(limit as i64)
            .fetch_all(&accounts.db.read)
            .await?;
    let list: Vec<Account> = rows.iter().map(account_from).collect();
    let next_after = (list.len() == limit).then(|| list[limit - 1].id.clone());
    debug_assert!(limit <= LIST_LIMIT_MAX);
    Ok(ApiJson(AccountPage {
        accounts: list,
        next_after,
    }))
}

async fn read(
    State(accounts): State<Accounts>,
    Path(id): Path<String>,
) -> Result<ApiJson<Account>, ApiError> {
    accounts
        .find(&id)
        .await?
        .map(ApiJson)
        .ok_or_else(|| ApiError::not_found("account", &id))
}

async fn suspend(
    State(accounts): State<Accounts>,
    Path(id): Path<String>,
) -> Result<ApiJson<Account>, ApiError> {
    let row = sqlx::query(
        "UPDATE accounts SET status = 'suspended' WHERE id = ? RETURNING id, name, status",
    )
    .bind(&id)
    .fetch_optional(&accounts.db.write)
    .await?;
    row.as_ref()
        .map(|r| ApiJson(account_from(r)))
        .ok_or_else(|| ApiError::not_found("account", &id))
}

/// Eligibility asks about many accounts at once, so that Payment can decide a whole batch of
/// orders with one call. Bounded like a page.
async fn eligibility(
    State(accounts): State<Accounts>,
    ApiJson(request): ApiJson<EligibilityRequest>,
) -> Result<ApiJson<EligibilityResponse>, ApiError> {
    if request.account_ids.len() > LIST_LIMIT_MAX {
        return Err(ApiError::Invalid(format!(
            "at most {LIST_LIMIT_MAX} account ids per request"
        )));
    }
    let mut verdicts = BTreeMap::new();
    for id in request.account_ids {
        let verdict = accounts.verdict(&id).await?;
        verdicts.insert(id, verdict);
    }
    Ok(ApiJson(EligibilityResponse { verdicts }))
}

impl twophase::Participant for Accounts {
    async fn prepare(&self, request: PrepareRequest) -> Result<Vote, ApiError> {
        Ok(match self.verdict(&request.account_id).await? {
            None => Vote::Yes,
            Some(reason) => Vote::No { reason },
        })
    }

    async fn commit(&self, _tx_id: String) -> Result<(), ApiError> {
        Ok(())
    }

    async fn abort(&self, _tx_id: String) -> Result<(), ApiError> {
        Ok(())
    }

    async fn in_doubt(&self, _prepared_before_ms: i64) -> anyhow::Result<Vec<String>> {
        Ok(Vec::new())
    }
}
