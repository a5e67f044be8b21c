//! A seeded workload and the client that drives it through the public API.
//!
//! The same seed gives the same accounts, top-ups, suspensions and orders, so every mode is
//! measured on the same work. The mix includes orders that must be refused (strong) or
//! cancelled (eventual): accounts that are suspended, accounts that run out of funds, and
//! orders for an account that does not exist.

use std::time::{Duration, Instant};

use contracts::api::{
    Account, CreateAccountRequest, Order, OrderItem, PlaceOrderRequest, TopUpRequest, Wallet,
};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use reqwest::StatusCode;
use serde::de::DeserializeOwned;

/// The menu: SKUs and unit prices in cents.
const MENU: [(&str, i64); 8] = [
    ("margherita", 1_150),
    ("pepperoni", 1_390),
    ("pad-thai", 1_275),
    ("ramen", 1_450),
    ("falafel-wrap", 890),
    ("caesar-salad", 960),
    ("lemonade", 350),
    ("tiramisu", 620),
];

#[derive(Debug, Clone)]
pub struct AccountPlan {
    pub name: String,
    pub top_up_cents: i64,
    /// Suspended after its top-up: its orders are refused (strong) or cancelled.
    pub suspended: bool,
}

#[derive(Debug, Clone)]
pub struct OrderPlan {
    /// Index into the workload's accounts, or `None` for an account that does not exist.
    pub account: Option<usize>,
    pub items: Vec<OrderItem>,
    /// Unique per order and run: safe to retry.
    pub idempotency_key: String,
}

#[derive(Debug, Clone)]
pub struct Workload {
    pub accounts: Vec<AccountPlan>,
    pub orders: Vec<OrderPlan>,
}

impl Workload {
    /// `orders` orders over `accounts` accounts. About one account in ten is suspended, one
    /// order in fifty names an unknown account, and top-ups cover roughly four orders in
    /// five, so the last orders of a busy account meet an empty wallet.
    pub fn generate(seed: u64, accounts: usize, orders: usize) -> Self {
        let mut rng = StdRng::seed_from_u64(seed);
        let accounts = accounts.max(1);
        let average_order_cents = 3_300;
        let orders_per_account = orders.div_ceil(accounts) as i64;
        let account_plans = (0..accounts)
            .map(|i| AccountPlan {
                name: format!("customer {i:03}"),
                top_up_cents: (orders_per_account
                    * average_order_cents
                    * rng.random_range(70..=110)
                    / 100)
                    .max(1_000),
                suspended: i % 10 == 9,
            })
            .collect();
        let order_plans = (0..orders)
            .map(|i| {
                let account = if rng.random_range(0..50) == 0 {
                    None
                } else {
                    Some(rng.random_range(0..accounts))
                };
                let lines = rng.random_range(1..=3);
                let items = (0..lines)
                    .map(|_| {
                        let (sku, price) = MENU[rng.random_range(0..MENU.len())];
                        OrderItem {
                            sku: sku.to_owned(),
                            quantity: rng.random_range(1..=2),
                            unit_price_cents: price,
                        }
                    })
                    .collect();
                OrderPlan {
                    account,
                    items,
                    idempotency_key: format!("demo-{seed}-{i}-{}", uuid::Uuid::new_v4().simple()),
                }
            })
            .collect();
        Self {
            accounts: account_plans,
            orders: order_plans,
        }
    }
}

/// What happened to one order request.
#[derive(Debug, Clone)]
pub struct Placed {
    pub status: Option<StatusCode>,
    pub order: Option<Order>,
    pub latency: Duration,
}

/// A typed client of the public API.
#[derive(Debug, Clone)]
pub struct Client {
    http: reqwest::Client,
    base: String,
}

impl Client {
    pub fn new(base: impl Into<String>) -> Self {
        Self {
            http: runtime::peer::http_client(),
            base: base.into().trim_end_matches('/').to_owned(),
        }
    }

    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    async fn expect<T: DeserializeOwned>(
        response: reqwest::Response,
        want: StatusCode,
    ) -> anyhow::Result<T> {
        let status = response.status();
        let url = response.url().clone();
        let text = response.text().await?;
        anyhow::ensure!(
            status == want,
            "{url} answered {status}, expected {want}: {text}"
        );
        Ok(serde_json::from_str(&text)?)
    }

    pub async fn get<T: DeserializeOwned>(&self, path: &str) -> anyhow::Result<T> {
        let response = self.http.get(format!("{}{path}", self.base)).send().await?;
        Self::expect(response, StatusCode::OK).await
    }

    pub async fn create_account(&self, name: &str) -> anyhow::Result<Account> {
        let response = self
            .http
            .post(format!("{}/accounts", self.base))
            .json(&CreateAccountRequest {
                name: name.to_owned(),
            })
            .send()
            .await?;
        Self::expect(response, StatusCode::CREATED).await
    }

    pub async fn top_up(&self, account_id: &str, amount_cents: i64) -> anyhow::Result<Wallet> {
        let response = self
            .http
            .post(format!("{}/wallets/{account_id}/top-ups", self.base))
            .json(&TopUpRequest { amount_cents })
            .send()
            .await?;
        Self::expect(response, StatusCode::CREATED).await
    }

    pub async fn suspend(&self, account_id: &str) -> anyhow::Result<Account> {
        let response = self
            .http
            .post(format!("{}/accounts/{account_id}/suspend", self.base))
            .send()
            .await?;
        Self::expect(response, StatusCode::OK).await
    }

    /// Places an order and times it. A transport failure is an answer too (no status).
    pub async fn place_order(
        &self,
        request: &PlaceOrderRequest,
        idempotency_key: Option<&str>,
    ) -> Placed {
        let started = Instant::now();
        let mut builder = self
            .http
            .post(format!("{}/orders", self.base))
            .json(request);
        if let Some(key) = idempotency_key {
            builder = builder.header("idempotency-key", key);
        }
        let result = builder.send().await;
        let (status, order) = match result {
            Ok(response) => {
                let status = response.status();
                let order = response.json::<Order>().await.ok();
                (Some(status), order)
            }
            Err(_) => (None, None),
        };
        Placed {
            status,
            order,
            latency: started.elapsed(),
        }
    }
}
