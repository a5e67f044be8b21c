//! A seeded workload and the client that drives it through the public API.
//!
//! The same seed gives the same accounts, top-ups, suspensions and orders, so every mode is
//! measured on the same work. The mix includes orders that must be refused (strong) or
//! cancelled (eventual): accounts that are suspended, accounts that run out of funds, and
//! orders for an account that does not exist.
//!
//! Two shapes share the menu and the account mix:
//! - [`Workload::generate`] lists a fixed number of orders up front (what `converge demo`
//!   places);
//! - [`Workload::timed`] is for a run of a given rate and duration, whose number of orders is
//!   only known as a bound: [`Workload::order_at`] plans order `i` for any `i`, the same for
//!   the same seed, and one order in [`PROBE_SHARE`] goes to one of [`PROBE_ACCOUNTS`] probe
//!   accounts that are funded for every order they can get and never suspended, so that every
//!   order to them is confirmed (what the k-staleness probe counts).

use std::time::{Duration, Instant};

use contracts::api::{
    Account, CreateAccountRequest, Order, OrderItem, PlaceOrderRequest, TopUpRequest, Wallet,
};
use contracts::limits::{BALANCE_CENTS_MAX, TOP_UP_CENTS_MAX};
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

/// The dearest order the workload plans: three lines of two of the dearest dish.
pub const MAX_ORDER_CENTS: i64 = 3 * 2 * 1_450;

/// Probe accounts in a [`Workload::timed`] workload.
pub const PROBE_ACCOUNTS: usize = 4;

/// One order in this many goes to a probe account in a [`Workload::timed`] workload.
pub const PROBE_SHARE: u64 = 20;

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
    /// The orders listed up front by [`Workload::generate`]; empty in a [`Workload::timed`]
    /// workload, whose orders come from [`Workload::order_at`].
    pub orders: Vec<OrderPlan>,
    /// Well-funded accounts that are never suspended: every order to them is confirmed.
    /// Empty in a [`Workload::generate`] workload.
    pub probe_accounts: Vec<AccountPlan>,
    seed: u64,
    /// Makes idempotency keys unique per workload, so that two runs never share one.
    run: String,
}

/// Whom an order of [`Workload::order_at`] is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// An index into [`Workload::accounts`].
    Account(usize),
    /// An index into [`Workload::probe_accounts`].
    Probe(usize),
    /// An account that does not exist.
    Unknown,
}

/// One order of a timed workload, planned by [`Workload::order_at`].
#[derive(Debug, Clone)]
pub struct PlannedOrder {
    pub target: Target,
    pub items: Vec<OrderItem>,
    /// Unique per order and workload: safe to retry.
    pub idempotency_key: String,
}

/// The ids the system gave a workload's accounts, from [`Workload::open`].
#[derive(Debug, Clone, Default)]
pub struct OpenedAccounts {
    /// In the order of [`Workload::accounts`].
    pub accounts: Vec<String>,
    /// In the order of [`Workload::probe_accounts`].
    pub probes: Vec<String>,
}

impl OpenedAccounts {
    /// The request for a planned order; an [`Target::Unknown`] order gets a fresh id that no
    /// account has.
    pub fn request(&self, order: &PlannedOrder) -> PlaceOrderRequest {
        let account_id = match order.target {
            Target::Account(i) => self.accounts[i].clone(),
            Target::Probe(i) => self.probes[i].clone(),
            Target::Unknown => contracts::ids::AccountId::generate().to_string(),
        };
        PlaceOrderRequest {
            account_id,
            items: order.items.clone(),
        }
    }
}

/// A random order of one to three lines from the menu.
fn random_items(rng: &mut StdRng) -> Vec<OrderItem> {
    let lines = rng.random_range(1..=3);
    (0..lines)
        .map(|_| {
            let (sku, price) = MENU[rng.random_range(0..MENU.len())];
            OrderItem {
                sku: sku.to_owned(),
                quantity: rng.random_range(1..=2),
                unit_price_cents: price,
            }
        })
        .collect()
}

/// `accounts` accounts sharing `orders` orders: one in ten suspended, top-ups covering
/// roughly four orders in five.
fn account_plans(rng: &mut StdRng, accounts: usize, orders: usize) -> Vec<AccountPlan> {
    let average_order_cents = 3_300;
    let orders_per_account = orders.div_ceil(accounts) as i64;
    (0..accounts)
        .map(|i| AccountPlan {
            name: format!("customer {i:03}"),
            top_up_cents: (orders_per_account * average_order_cents * rng.random_range(70..=110)
                / 100)
                .max(1_000),
            suspended: i % 10 == 9,
        })
        .collect()
}

/// SplitMix64's finaliser: spreads (seed, index) over the seed space.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

impl Workload {
    /// `orders` orders over `accounts` accounts. About one account in ten is suspended, one
    /// order in fifty names an unknown account, and top-ups cover roughly four orders in
    /// five, so the last orders of a busy account meet an empty wallet.
    pub fn generate(seed: u64, accounts: usize, orders: usize) -> Self {
        let mut rng = StdRng::seed_from_u64(seed);
        let accounts = accounts.max(1);
        let account_plans = account_plans(&mut rng, accounts, orders);
        let order_plans = (0..orders)
            .map(|i| {
                let account = if rng.random_range(0..50) == 0 {
                    None
                } else {
                    Some(rng.random_range(0..accounts))
                };
                let items = random_items(&mut rng);
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
            probe_accounts: Vec::new(),
            seed,
            run: uuid::Uuid::new_v4().simple().to_string()[..16].to_owned(),
        }
    }

    /// A workload for a timed run of at most about `expected_orders` orders over `accounts`
    /// accounts, plus [`PROBE_ACCOUNTS`] probe accounts. Its orders come from
    /// [`Workload::order_at`]; [`Workload::orders`] stays empty.
    ///
    /// The ordinary accounts are as in [`Workload::generate`] (one in ten suspended, top-ups
    /// covering roughly four orders in five of their share). Each probe account is funded for
    /// twice the orders it gets out of `expected_orders`, so pass a bound: `rate × duration`
    /// for an open-loop run, a generous guess for a closed one.
    pub fn timed(seed: u64, accounts: usize, expected_orders: u64) -> Self {
        let mut rng = StdRng::seed_from_u64(seed);
        let accounts = accounts.max(1);
        let ordinary = expected_orders - expected_orders.div_ceil(PROBE_SHARE);
        let account_plans = account_plans(&mut rng, accounts, ordinary as usize);
        let per_probe = expected_orders.div_ceil(PROBE_SHARE * PROBE_ACCOUNTS as u64) + 1;
        let probe_cents = (per_probe as i64)
            .saturating_mul(2 * MAX_ORDER_CENTS)
            .min(BALANCE_CENTS_MAX);
        let probe_accounts = (0..PROBE_ACCOUNTS)
            .map(|i| AccountPlan {
                name: format!("probe {i}"),
                top_up_cents: probe_cents,
                suspended: false,
            })
            .collect();
        Self {
            accounts: account_plans,
            orders: Vec::new(),
            probe_accounts,
            seed,
            run: uuid::Uuid::new_v4().simple().to_string()[..16].to_owned(),
        }
    }

    /// Order `i` of the run, the same for the same seed and `i` (but for its idempotency key,
    /// unique per workload). With probe accounts, orders `0, PROBE_SHARE, 2 × PROBE_SHARE, ...`
    /// go to them in turn; of the others, one in fifty names an unknown account and the rest
    /// go to a random ordinary account.
    pub fn order_at(&self, i: u64) -> PlannedOrder {
        let mut rng = StdRng::seed_from_u64(mix(self.seed ^ mix(i)));
        let (turn, place_in_turn) = (i / PROBE_SHARE, i % PROBE_SHARE);
        let target = if !self.probe_accounts.is_empty() && place_in_turn == 0 {
            Target::Probe(turn as usize % self.probe_accounts.len())
        } else if rng.random_range(0..50) == 0 || self.accounts.is_empty() {
            Target::Unknown
        } else {
            Target::Account(rng.random_range(0..self.accounts.len()))
        };
        PlannedOrder {
            target,
            items: random_items(&mut rng),
            idempotency_key: format!("w-{}-{i}", self.run),
        }
    }

    /// Opens every account of the workload (ordinary and probe): creates it, tops it up (in
    /// as many top-ups as the per-top-up limit needs) and suspends it if planned.
    pub async fn open(&self, client: &Client) -> anyhow::Result<OpenedAccounts> {
        async fn open_one(client: &Client, plan: &AccountPlan) -> anyhow::Result<String> {
            let account = client.create_account(&plan.name).await?;
            let mut left = plan.top_up_cents;
            while left > 0 {
                let amount = left.min(TOP_UP_CENTS_MAX);
                client.top_up(&account.id, amount).await?;
                left -= amount;
            }
            if plan.suspended {
                client.suspend(&account.id).await?;
            }
            Ok(account.id)
        }
        let mut opened = OpenedAccounts::default();
        for plan in &self.accounts {
            opened.accounts.push(open_one(client, plan).await?);
        }
        for plan in &self.probe_accounts {
            opened.probes.push(open_one(client, plan).await?);
        }
        Ok(opened)
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

#[cfg(test)]
mod tests {
    use super::*;

    /// `Workload::generate` as it was before probe accounts: the demo's orders must not
    /// change with the same seed.
    fn generate_before(
        seed: u64,
        accounts: usize,
        orders: usize,
    ) -> (Vec<AccountPlan>, Vec<OrderPlan>) {
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
            .map(|_| {
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
                    idempotency_key: String::new(),
                }
            })
            .collect();
        (account_plans, order_plans)
    }

    fn same_items(a: &[OrderItem], b: &[OrderItem]) -> bool {
        a.len() == b.len()
            && a.iter().zip(b).all(|(x, y)| {
                x.sku == y.sku
                    && x.quantity == y.quantity
                    && x.unit_price_cents == y.unit_price_cents
            })
    }

    #[test]
    fn generate_places_the_same_orders_as_before() {
        let workload = Workload::generate(7, 12, 300);
        let (accounts, orders) = generate_before(7, 12, 300);
        assert_eq!(workload.accounts.len(), accounts.len());
        for (a, b) in workload.accounts.iter().zip(&accounts) {
            assert_eq!(
                (&a.name, a.top_up_cents, a.suspended),
                (&b.name, b.top_up_cents, b.suspended)
            );
        }
        assert_eq!(workload.orders.len(), orders.len());
        for (a, b) in workload.orders.iter().zip(&orders) {
            assert_eq!(a.account, b.account);
            assert!(same_items(&a.items, &b.items));
        }
        assert!(workload.probe_accounts.is_empty());
        let keys: std::collections::HashSet<_> =
            workload.orders.iter().map(|o| &o.idempotency_key).collect();
        assert_eq!(keys.len(), 300);
    }

    #[test]
    fn a_timed_workload_plans_any_order_the_same_for_the_same_seed() {
        let one = Workload::timed(3, 50, 10_000);
        let two = Workload::timed(3, 50, 10_000);
        for i in [0, 1, 2, 19, 20, 12_345, u64::MAX] {
            let (a, b) = (one.order_at(i), two.order_at(i));
            assert_eq!(a.target, b.target);
            assert!(same_items(&a.items, &b.items));
            assert!(!a.items.is_empty() && a.items.len() <= 3);
            // Keys differ between workloads (runs), and fit the API's limit.
            assert_ne!(a.idempotency_key, b.idempotency_key);
            assert!(a.idempotency_key.len() <= contracts::limits::ID_CHARS_MAX);
        }
        let keys: std::collections::HashSet<_> = (0..1_000)
            .map(|i| one.order_at(i).idempotency_key)
            .collect();
        assert_eq!(keys.len(), 1_000);
    }

    #[test]
    fn one_order_in_twenty_goes_to_the_probe_accounts_in_turn() {
        let workload = Workload::timed(1, 100, 8_000);
        assert_eq!(workload.probe_accounts.len(), PROBE_ACCOUNTS);
        let targets: Vec<Target> = (0..8_000).map(|i| workload.order_at(i).target).collect();
        let mut per_probe = [0u64; PROBE_ACCOUNTS];
        let (mut unknown, mut ordinary) = (0, 0);
        for target in &targets {
            match *target {
                Target::Probe(p) => per_probe[p] += 1,
                Target::Unknown => unknown += 1,
                Target::Account(a) => {
                    assert!(a < 100);
                    ordinary += 1;
                }
            }
        }
        assert_eq!(per_probe, [100; PROBE_ACCOUNTS]);
        assert_eq!(targets[0], Target::Probe(0));
        assert_eq!(targets[20], Target::Probe(1));
        // One in fifty of the rest names an unknown account (a seeded draw: roughly).
        assert!((100..=200).contains(&unknown), "{unknown}");
        assert_eq!(ordinary + unknown, 7_600);
    }

    #[test]
    fn probe_accounts_can_pay_for_every_order_they_get() {
        let expected = 8_000;
        let workload = Workload::timed(1, 100, expected);
        let mut spent = [0i64; PROBE_ACCOUNTS];
        for i in 0..expected {
            let order = workload.order_at(i);
            let total: i64 = order
                .items
                .iter()
                .map(|l| l.quantity * l.unit_price_cents)
                .sum();
            assert!(total <= MAX_ORDER_CENTS);
            if let Target::Probe(p) = order.target {
                spent[p] += total;
            }
        }
        for (plan, spent) in workload.probe_accounts.iter().zip(spent) {
            assert!(!plan.suspended);
            // Twice over: a closed-loop run may place more than expected.
            assert!(
                plan.top_up_cents >= 2 * spent,
                "{} < 2 × {spent}",
                plan.top_up_cents
            );
        }
        // The ordinary accounts keep their mix: one in ten suspended.
        assert!(workload.accounts.iter().any(|a| a.suspended));
    }
}
