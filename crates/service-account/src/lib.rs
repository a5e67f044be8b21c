//! The Account service owns accounts: who they are and whether they may order.
//!
//! Public: create, list, read and suspend accounts. Internal: the eligibility question that
//! Payment asks in the eventual modes, and, in strong mode, a vote in every order's
//! two-phase commit. Account is a read-only participant: it votes and has nothing to apply.

mod store;

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use contracts::api::{Account, AccountPage, AccountStatus, CreateAccountRequest, PageQuery};
use contracts::internal::{
    ELIGIBILITY_PATH, EligibilityRequest, EligibilityResponse, PrepareRequest, Vote,
};
use contracts::limits::{LIST_LIMIT_MAX, NAME_CHARS_MAX};
use contracts::{Mode, ServiceName, ValidationError};
use runtime::{ApiError, ApiJson, ApiPath, ApiQuery, App, ServiceConfig};
use service_kit::Service;
use storage::{Db, Migration};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

static MIGRATIONS: &[Migration] = &[Migration {
    name: "account_0001",
    sqlite: include_str!("../migrations/sqlite/0001_accounts.sql"),
    postgres: include_str!("../migrations/postgres/0001_accounts.sql"),
}];

/// Builds the service on a bound listener. Nothing runs until the app is run.
pub async fn build(
    config: ServiceConfig,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> anyhow::Result<App> {
    let mut service =
        Service::open(ServiceName::Account, config, MIGRATIONS, listener, shutdown).await?;
    let accounts = Accounts {
        db: service.db().clone(),
    };
    service.work_routes(
        Router::new()
            .route(ELIGIBILITY_PATH, post(eligibility))
            .with_state(accounts.clone()),
    );
    if service.mode() == Mode::Strong {
        service.participant(Arc::new(accounts.clone()));
    }
    let public = Router::new()
        .route("/accounts", post(create).get(list))
        .route("/accounts/{id}", get(read))
        .route("/accounts/{id}/suspend", post(suspend))
        .with_state(accounts);
    service.serve(public)
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
    let created = account.clone();
    accounts
        .db
        .write(move |tx| store::insert(tx, &created))
        .await?;
    Ok((StatusCode::CREATED, ApiJson(account)))
}

async fn list(
    State(accounts): State<Accounts>,
    ApiQuery(page): ApiQuery<PageQuery>,
) -> Result<ApiJson<AccountPage>, ApiError> {
    let limit = page.limit()?;
    debug_assert!(limit <= LIST_LIMIT_MAX);
    let after = page.after().to_owned();
    let list = accounts
        .db
        .read(move |tx| store::page(tx, &after, limit as i64))
        .await?;
    let next_after = (list.len() == limit).then(|| list[limit - 1].id.clone());
    Ok(ApiJson(AccountPage {
        accounts: list,
        next_after,
    }))
}

async fn read(
    State(accounts): State<Accounts>,
    ApiPath(id): ApiPath<String>,
) -> Result<ApiJson<Account>, ApiError> {
    let key = id.clone();
    accounts
        .db
        .read(move |tx| store::find(tx, &key))
        .await?
        .map(ApiJson)
        .ok_or_else(|| ApiError::not_found("account", &id))
}

async fn suspend(
    State(accounts): State<Accounts>,
    ApiPath(id): ApiPath<String>,
) -> Result<ApiJson<Account>, ApiError> {
    let key = id.clone();
    accounts
        .db
        .write(move |tx| store::suspend(tx, &key))
        .await?
        .map(ApiJson)
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
    let verdicts = accounts
        .db
        .read(move |tx| store::verdicts(tx, &request.account_ids))
        .await?;
    Ok(ApiJson(EligibilityResponse { verdicts }))
}

/// A read-only participant: it votes on "may this account order?" and has nothing to apply.
impl twophase::Participant for Accounts {
    async fn prepare_many(&self, requests: Vec<PrepareRequest>) -> Result<Vec<Vote>, ApiError> {
        let ids: Vec<String> = requests.iter().map(|r| r.account_id.clone()).collect();
        let verdicts = self.db.read(move |tx| store::verdicts(tx, &ids)).await?;
        Ok(requests
            .iter()
            .map(|r| match verdicts.get(&r.account_id).copied().flatten() {
                None => Vote::Yes,
                Some(reason) => Vote::No { reason },
            })
            .collect())
    }

    async fn commit_many(&self, _tx_ids: Vec<String>) -> Result<(), ApiError> {
        Ok(())
    }

    async fn abort(&self, _tx_id: String) -> Result<(), ApiError> {
        Ok(())
    }

    async fn in_doubt(&self, _prepared_before_ms: i64) -> anyhow::Result<Vec<String>> {
        Ok(Vec::new())
    }
}
