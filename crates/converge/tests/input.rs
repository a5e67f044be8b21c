//! What users send that is repeated, wrong or not meant for them.
//!
//! - `idempotency` (each mode): the same `Idempotency-Key` with the same request (also written
//!   differently) gets the first answer and places one order; with another request, `409`;
//!   a key that cannot be one (spaces, 65 characters, empty, a slash), `400`, and a key of
//!   exactly 64 characters is fine.
//! - `strong_refusal_is_idempotent`: a `402` retried with its key is `402` again, even after
//!   a top-up; a new key then places the order.
//! - `the_key_to_retry_under_comes_back`: the `Idempotency-Key` Order made up for an order
//!   sent without one reaches the client through the public address, and retrying under it
//!   places nothing new; a top-up answers with the key it was sent with.
//! - `bad_input` (strong and queue: validation happens before the mode matters): one case per
//!   way a request can be wrong, each checked for its status, a JSON body whose `"error"` says
//!   what was wrong, and a system left exactly as it was. The cases are all run and the
//!   failures reported together, so that one bug does not hide the others.

mod common;

use common::*;
use contracts::Mode;
use contracts::api::{AccountTotals, Order, OrderList, OrderStatus, Points, Wallet};
use contracts::internal::SECRET_HEADER;
use contracts::limits::{
    BODY_BYTES_MAX, ID_CHARS_MAX, ITEMS_MAX, NAME_CHARS_MAX, ORDER_TOTAL_CENTS_MAX, QUANTITY_MAX,
    SKU_CHARS_MAX, TOP_UP_CENTS_MAX, UNIT_PRICE_CENTS_MAX,
};
use reqwest::Method;
use serde_json::{Value, json};

/// An answer as it came, so that a body that is not JSON is reported rather than a panic.
#[derive(Debug)]
struct Answer {
    status: u16,
    text: String,
    json: Option<Value>,
}

impl Answer {
    fn error(&self) -> Option<&str> {
        self.json.as_ref()?.get("error")?.as_str()
    }

    fn order(&self) -> Order {
        serde_json::from_str(&self.text)
            .unwrap_or_else(|e| panic!("status {}: not an order ({e}): {}", self.status, self.text))
    }
}

/// A request to `base` (the public address or a service's own).
async fn send(
    system: &TestSystem,
    base: &str,
    method: Method,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<Vec<u8>>,
) -> Answer {
    let mut request = system
        .client
        .http()
        .request(method, format!("{base}{path}"));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    if let Some(body) = body {
        request = request.body(body);
    }
    let response = request.send().await.expect("an answer");
    let status = response.status().as_u16();
    let text = response.text().await.expect("a body");
    let json = serde_json::from_str(&text).ok();
    Answer { status, text, json }
}

const JSON: (&str, &str) = ("content-type", "application/json");

/// `POST` a JSON value to the public address.
async fn post_json(system: &TestSystem, path: &str, body: &Value, key: Option<&str>) -> Answer {
    let mut headers = vec![JSON];
    if let Some(key) = key {
        headers.push(("idempotency-key", key));
    }
    let body = serde_json::to_vec(body).expect("serializes");
    send(
        system,
        system.client.base(),
        Method::POST,
        path,
        &headers,
        Some(body),
    )
    .await
}

fn order_json(account_id: &str, items: &[(&str, i64, i64)]) -> Value {
    serde_json::to_value(order_request(account_id, items)).expect("serializes")
}

fn new_key() -> String {
    format!("key-{}", uuid::Uuid::new_v4().simple())
}

async fn orders_of(system: &TestSystem, account_id: &str) -> Vec<Order> {
    let list: OrderList = system
        .client
        .get(&format!("/accounts/{account_id}/orders"))
        .await
        .expect("orders listed");
    list.orders
}

each_mode!(idempotency, |mode| async move {
    let system = spawn(mode).await;
    let account = system.account_with(10_000).await;
    let items = [("ramen", 2, 1_450)];
    let total = 2 * 1_450;
    let request = order_json(&account.id, &items);
    let key = new_key();

    let first = post_json(&system, "/orders", &request, Some(&key)).await;
    assert_eq!(first.status, ack_status(mode), "{}", first.text);
    let placed = first.order();
    assert_eq!(placed.total_cents, total);

    let again = post_json(&system, "/orders", &request, Some(&key)).await;
    assert_eq!(again.status, first.status, "a retry gets the first status");
    assert_eq!(again.order().id, placed.id, "a retry gets the first order");
    assert_eq!(again.json, first.json, "a retry gets the first answer");

    // The same request written another way: fields reordered, spaces added.
    let rewritten = format!(
        r#"{{ "items" : [ {{ "unit_price_cents": 1450, "quantity": 2, "sku": "ramen" }} ],
             "account_id" : "{}" }}"#,
        account.id
    );
    let headers = [JSON, ("idempotency-key", key.as_str())];
    let rewritten = send(
        &system,
        system.client.base(),
        Method::POST,
        "/orders",
        &headers,
        Some(rewritten.into_bytes()),
    )
    .await;
    assert_eq!(rewritten.status, first.status, "{}", rewritten.text);
    assert_eq!(rewritten.order().id, placed.id);

    // The same key with another request is a client bug.
    let other = order_json(&account.id, &[("ramen", 3, 1_450)]);
    let conflict = post_json(&system, "/orders", &other, Some(&key)).await;
    assert_eq!(conflict.status, 409, "{}", conflict.text);
    let error = conflict.error().expect("a JSON error");
    assert!(error.contains("Idempotency-Key"), "{error:?}");

    // Keys that cannot be keys: refused before anything is placed.
    let too_long = "k".repeat(ID_CHARS_MAX + 1);
    for bad in ["has spaces", too_long.as_str(), "", "a/b"] {
        let answer = post_json(&system, "/orders", &request, Some(bad)).await;
        assert_eq!(answer.status, 400, "key {bad:?}: {}", answer.text);
        let error = answer.error().expect("a JSON error");
        assert!(error.contains("Idempotency-Key"), "key {bad:?}: {error:?}");
    }

    // The longest key there may be is a key.
    let other_account = system.account_with(10_000).await;
    let longest = "k".repeat(ID_CHARS_MAX);
    let boundary = post_json(
        &system,
        "/orders",
        &order_json(&other_account.id, &items),
        Some(&longest),
    )
    .await;
    assert_eq!(boundary.status, ack_status(mode), "{}", boundary.text);
    let boundary = boundary.order();

    system.wait_quiet().await;
    let orders = orders_of(&system, &account.id).await;
    assert_eq!(orders.len(), 1, "one order placed: {orders:?}");
    assert_eq!(orders[0].id, placed.id);
    assert_eq!(orders[0].status, OrderStatus::Confirmed);
    let wallet = system.wallet(&account.id).await;
    assert_eq!(wallet.balance_cents, 10_000 - total, "charged once");
    let points: Points = system
        .client
        .get(&format!("/loyalty/{}", account.id))
        .await
        .unwrap();
    assert_eq!(points.points, total / 100, "points credited once");
    let stats: AccountTotals = system
        .client
        .get(&format!("/stats/accounts/{}", account.id))
        .await
        .unwrap();
    assert_eq!((stats.orders, stats.revenue_cents), (1, total));
    assert_eq!(orders_of(&system, &other_account.id).await.len(), 1);
    system
        .assert_invariants(&[(placed.id, account.id), (boundary.id, other_account.id)])
        .await;
    system.stop().await;
});

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn strong_refusal_is_idempotent() {
    let system = spawn(Mode::Strong).await;
    let balance = 1_000;
    let account = system.account_with(balance).await;
    let items = [("ramen", 1, 1_450)];
    let request = order_json(&account.id, &items);
    let key = new_key();

    let refused = post_json(&system, "/orders", &request, Some(&key)).await;
    assert_eq!(refused.status, 402, "{}", refused.text);
    assert!(
        refused
            .error()
            .expect("a JSON error")
            .contains("insufficient funds"),
        "{}",
        refused.text
    );
    let retried = post_json(&system, "/orders", &request, Some(&key)).await;
    assert_eq!(retried.status, 402, "{}", retried.text);
    assert_eq!(retried.json, refused.json);
    assert!(orders_of(&system, &account.id).await.is_empty());
    let wallet = system.wallet(&account.id).await;
    assert_eq!((wallet.balance_cents, wallet.held_cents), (balance, 0));

    // Money arrives: the key still answers what it answered; a new key places the order.
    system.client.top_up(&account.id, 1_000).await.unwrap();
    let same_key = post_json(&system, "/orders", &request, Some(&key)).await;
    assert_eq!(same_key.status, 402, "the first answer stands");
    assert!(orders_of(&system, &account.id).await.is_empty());
    let fresh = post_json(&system, "/orders", &request, Some(&new_key())).await;
    assert_eq!(fresh.status, 201, "{}", fresh.text);
    let order = fresh.order();
    assert_eq!(order.status, OrderStatus::Confirmed);
    assert_eq!(order.total_cents, 1_450);
    let orders = orders_of(&system, &account.id).await;
    assert_eq!(orders.len(), 1);
    assert_eq!(orders[0].id, order.id);
    let wallet = system.wallet(&account.id).await;
    assert_eq!(wallet.balance_cents, balance + 1_000 - 1_450);
    system.assert_invariants(&[(order.id, account.id)]).await;
    system.stop().await;
}

/// The key to retry under reaches the client through the public address: the one Order made
/// up for an order sent without one (a retry under it is the same order, not a second), and
/// the one a top-up was sent with.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_key_to_retry_under_comes_back() {
    let system = spawn(Mode::Strong).await;
    let account = system.account_with(10_000).await;
    let base = system.client.base();
    let request = order_json(&account.id, &[("ramen", 1, 1_450)]);
    let response = system
        .client
        .http()
        .post(format!("{base}/orders"))
        .json(&request)
        .send()
        .await
        .expect("an answer");
    assert_eq!(response.status(), 201);
    let key = response
        .headers()
        .get("idempotency-key")
        .expect("the key made up for an order sent without one")
        .to_str()
        .expect("ASCII")
        .to_owned();
    let first: Order = response.json().await.expect("an order");
    let retried = post_json(&system, "/orders", &request, Some(&key)).await;
    assert_eq!(retried.status, 201, "{}", retried.text);
    assert_eq!(retried.order().id, first.id, "the same order, not a second");
    assert_eq!(orders_of(&system, &account.id).await.len(), 1);

    let top_up = system
        .client
        .http()
        .post(format!("{base}/wallets/{}/top-ups", account.id))
        .header("idempotency-key", "top-up-1")
        .json(&json!({ "amount_cents": 500 }))
        .send()
        .await
        .expect("an answer");
    assert_eq!(top_up.status(), 201);
    assert_eq!(top_up.headers()["idempotency-key"], "top-up-1");
    system.stop().await;
}

/// Failures of the bad-input cases, collected so that every case runs.
#[derive(Default)]
struct Report {
    failures: Vec<String>,
}

impl Report {
    /// `answer` must have `status` and a JSON `{"error"}` that mentions each of `mentions`
    /// (case-insensitive).
    fn expect_error(&mut self, case: &str, answer: &Answer, status: u16, mentions: &[String]) {
        let got = || format!("got {} {}", answer.status, answer.text);
        if answer.status != status {
            self.failures
                .push(format!("{case}: expected {status}, {}", got()));
        }
        match answer.error() {
            Some(error) if !error.trim().is_empty() => {
                let lower = error.to_lowercase();
                if !mentions.iter().all(|m| lower.contains(&m.to_lowercase())) {
                    self.failures.push(format!(
                        "{case}: the error should mention each of {mentions:?}, {}",
                        got()
                    ));
                }
            }
            _ => self.failures.push(format!(
                "{case}: expected a JSON body with a non-empty \"error\", {}",
                got()
            )),
        }
    }

    /// What users can read must be exactly as it was before the case.
    fn expect_unchanged(&mut self, case: &str, before: &Snapshot, after: &Snapshot) {
        for ((path, was), (_, is)) in before.0.iter().zip(&after.0) {
            if was != is {
                self.failures
                    .push(format!("{case}: changed GET {path}: was {was}, now {is}"));
            }
        }
    }

    fn finish(self, mode: Mode) {
        assert!(
            self.failures.is_empty(),
            "{} bad-input case(s) failed in {mode:?} mode:\n{}",
            self.failures.len(),
            self.failures.join("\n")
        );
    }
}

/// Everything a user can read about the test account and the whole system.
#[derive(Debug, PartialEq)]
struct Snapshot(Vec<(String, String)>);

async fn snapshot(system: &TestSystem, account_id: &str) -> Snapshot {
    let paths = [
        "/stats".to_owned(),
        "/accounts".to_owned(),
        format!("/accounts/{account_id}"),
        format!("/accounts/{account_id}/orders"),
        format!("/wallets/{account_id}"),
        format!("/wallets/{account_id}/payments"),
        format!("/loyalty/{account_id}"),
        format!("/loyalty/{account_id}/ledger"),
        format!("/stats/accounts/{account_id}"),
    ];
    let mut views = Vec::new();
    for path in paths {
        let answer = send(system, system.client.base(), Method::GET, &path, &[], None).await;
        views.push((path, format!("{} {}", answer.status, answer.text)));
    }
    Snapshot(views)
}

/// One bad request: what it is called, how it is sent, what must come back.
struct Case {
    name: String,
    base: String,
    method: Method,
    path: String,
    headers: Vec<(&'static str, String)>,
    body: Option<Vec<u8>>,
    status: u16,
    /// What the error must mention, each of them.
    mentions: Vec<String>,
}

impl Case {
    fn new(name: impl Into<String>, method: Method, path: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            base: String::new(),
            method,
            path: path.into(),
            headers: Vec::new(),
            body: None,
            status: 0,
            mentions: Vec::new(),
        }
    }

    /// A JSON body, declared as such.
    fn json(self, body: &Value) -> Self {
        self.raw_json(serde_json::to_vec(body).expect("serializes"))
    }

    /// Bytes declared as JSON.
    fn raw_json(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.headers.push((JSON.0, JSON.1.to_owned()));
        self.body = Some(body.into());
        self
    }

    fn header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }

    fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = Some(body.into());
        self
    }

    /// Sent to a service's own address instead of the public one.
    fn at(mut self, base: &str) -> Self {
        self.base = base.to_owned();
        self
    }

    fn expect(mut self, status: u16, mentions: &[&str]) -> Self {
        self.status = status;
        self.mentions = mentions.iter().map(|m| (*m).to_owned()).collect();
        self
    }
}

/// An order for `account_id` with these items, as JSON values so that any shape can be sent.
fn order_with(account_id: &str, items: Value) -> Value {
    json!({ "account_id": account_id, "items": items })
}

fn item(sku: &str, quantity: i64, unit_price_cents: i64) -> Value {
    json!({ "sku": sku, "quantity": quantity, "unit_price_cents": unit_price_cents })
}

fn order_cases(account_id: &str) -> Vec<Case> {
    let post = |name: &str| Case::new(format!("POST /orders {name}"), Method::POST, "/orders");
    let one =
        |quantity: i64, price: i64| order_with(account_id, json!([item("ramen", quantity, price)]));
    let too_many: Vec<Value> = (0..=ITEMS_MAX).map(|_| item("ramen", 1, 100)).collect();
    let huge_sku = "x".repeat(BODY_BYTES_MAX + 1);
    // The limits, as the errors must state them.
    let quantity_max = QUANTITY_MAX.to_string();
    let price_max = UNIT_PRICE_CENTS_MAX.to_string();
    let total_max = ORDER_TOTAL_CENTS_MAX.to_string();
    let items_max = ITEMS_MAX.to_string();
    let sku_max = SKU_CHARS_MAX.to_string();
    let body_max = BODY_BYTES_MAX.to_string();
    vec![
        post("malformed JSON")
            .raw_json(format!(r#"{{"account_id": "{account_id}", "items": ["#))
            .expect(400, &["json", "eof"]),
        post("quantity as a string")
            .json(&order_with(
                account_id,
                json!([{ "sku": "ramen", "quantity": "2", "unit_price_cents": 1_450 }]),
            ))
            .expect(422, &["items[0].quantity", "invalid type"]),
        post("quantity as a fraction")
            .json(&order_with(
                account_id,
                json!([{ "sku": "ramen", "quantity": 1.5, "unit_price_cents": 1_450 }]),
            ))
            .expect(422, &["items[0].quantity", "whole number"]),
        post("missing items")
            .json(&json!({ "account_id": account_id }))
            .expect(422, &["missing field", "items"]),
        post("missing unit_price_cents")
            .json(&order_with(account_id, json!([{ "sku": "ramen", "quantity": 1 }])))
            .expect(422, &["missing field", "unit_price_cents"]),
        post("unknown field")
            .json(&json!({
                "account_id": account_id,
                "items": [item("ramen", 1, 100)],
                "coupon": "FREE"
            }))
            .expect(422, &["unknown field", "coupon"]),
        post("unknown item field")
            .json(&order_with(
                account_id,
                json!([{ "sku": "ramen", "quantity": 1, "unit_price_cents": 100, "discount": 100 }]),
            ))
            .expect(422, &["unknown field", "discount"]),
        post("zero quantity")
            .json(&one(0, 1_450))
            .expect(422, &["items[0].quantity", &quantity_max]),
        post("negative quantity")
            .json(&one(-2, 1_450))
            .expect(422, &["items[0].quantity", &quantity_max]),
        post("absurd quantity 1_000_000")
            .json(&one(1_000_000, 1_450))
            .expect(422, &["items[0].quantity", &quantity_max]),
        post("quantity one over the limit")
            .json(&one(i64::from(QUANTITY_MAX) + 1, 1))
            .expect(422, &["items[0].quantity", &quantity_max]),
        post("zero price")
            .json(&one(1, 0))
            .expect(422, &["items[0].unit_price_cents", "positive"]),
        post("negative price")
            .json(&one(1, -1_450))
            .expect(422, &["items[0].unit_price_cents", "positive"]),
        post("absurd price i64::MAX")
            .json(&one(1, i64::MAX))
            .expect(422, &["items[0].unit_price_cents", &price_max]),
        post("price one over the limit")
            .json(&one(1, UNIT_PRICE_CENTS_MAX + 1))
            .expect(422, &["items[0].unit_price_cents", &price_max]),
        post("total over the limit (1000 x 10_000_000)")
            .json(&one(1_000, 10_000_000))
            .expect(422, &["total", &total_max]),
        post("no items")
            .json(&order_with(account_id, json!([])))
            .expect(422, &["items", "empty"]),
        post("more than ITEMS_MAX items")
            .json(&order_with(account_id, Value::Array(too_many)))
            .expect(422, &["items", &items_max]),
        post("empty sku")
            .json(&order_with(account_id, json!([item("  ", 1, 100)])))
            .expect(422, &["items[0].sku", "empty"]),
        post("sku of 65 characters")
            .json(&order_with(
                account_id,
                json!([item(&"s".repeat(SKU_CHARS_MAX + 1), 1, 100)]),
            ))
            .expect(422, &["items[0].sku", &sku_max]),
        post("account_id that cannot be an id")
            .json(&order_with("acc 1; drop", json!([item("ramen", 1, 100)])))
            .expect(422, &["account_id"]),
        post("body over 64 KiB")
            .json(&order_with(account_id, json!([item(&huge_sku, 1, 100)])))
            .expect(413, &[&body_max]),
        post("missing content-type")
            .body(serde_json::to_vec(&one(1, 1_450)).unwrap())
            .expect(415, &["content-type"]),
        post("content-type text/plain")
            .header("content-type", "text/plain")
            .body(serde_json::to_vec(&one(1, 1_450)).unwrap())
            .expect(415, &["content-type"]),
    ]
}

fn account_and_wallet_cases(account_id: &str) -> Vec<Case> {
    let create =
        |name: &str| Case::new(format!("POST /accounts {name}"), Method::POST, "/accounts");
    let top_up = |name: &str| {
        Case::new(
            format!("POST /wallets/{{id}}/top-ups {name}"),
            Method::POST,
            format!("/wallets/{account_id}/top-ups"),
        )
    };
    let name_max = NAME_CHARS_MAX.to_string();
    let top_up_max = TOP_UP_CENTS_MAX.to_string();
    vec![
        create("name of 101 characters")
            .json(&json!({ "name": "n".repeat(NAME_CHARS_MAX + 1) }))
            .expect(422, &["name", &name_max]),
        create("empty name")
            .json(&json!({ "name": "" }))
            .expect(422, &["name", "empty"]),
        create("blank name")
            .json(&json!({ "name": "   " }))
            .expect(422, &["name", "empty"]),
        create("missing name")
            .json(&json!({}))
            .expect(422, &["missing field", "name"]),
        create("name as a number")
            .json(&json!({ "name": 7 }))
            .expect(422, &["name", "invalid type"]),
        top_up("of 0")
            .json(&json!({ "amount_cents": 0 }))
            .expect(422, &["amount_cents", "positive"]),
        top_up("negative")
            .json(&json!({ "amount_cents": -500 }))
            .expect(422, &["amount_cents", "positive"]),
        top_up("over TOP_UP_CENTS_MAX")
            .json(&json!({ "amount_cents": TOP_UP_CENTS_MAX + 1 }))
            .expect(422, &["amount_cents", &top_up_max]),
        top_up("amount as a string")
            .json(&json!({ "amount_cents": "100" }))
            .expect(422, &["amount_cents", "invalid type"]),
        top_up("malformed JSON")
            .raw_json("{\"amount_cents\": ")
            .expect(400, &["json"]),
    ]
}

fn unknown_cases() -> Vec<Case> {
    let get = |path: &str| Case::new(format!("GET {path}"), Method::GET, path);
    vec![
        get("/orders/nope").expect(404, &["nope", "not found"]),
        get("/accounts/nope").expect(404, &["nope", "not found"]),
        Case::new(
            "POST /accounts/nope/suspend",
            Method::POST,
            "/accounts/nope/suspend",
        )
        .expect(404, &["nope", "not found"]),
        get("/payments/nope").expect(404, &["nope", "not found"]),
        get("/wallets/nope").expect(404, &["nope", "not found"]),
        Case::new(
            "POST /wallets/nope/top-ups",
            Method::POST,
            "/wallets/nope/top-ups",
        )
        .json(&json!({ "amount_cents": 100 }))
        .expect(404, &["nope", "not found"]),
        get("/no/such/route").expect(404, &["route"]),
        Case::new("DELETE /orders/nope", Method::DELETE, "/orders/nope")
            .expect(405, &["method", "DELETE"]),
    ]
}

/// `/internal/*` through the public address does not exist, even with the right secret.
fn internal_through_gateway_cases(account_id: &str, secret: &str) -> Vec<Case> {
    let prepare = json!({
        "tx_id": "ord_sneaky", "account_id": account_id, "total_cents": 500,
        "points": 5, "started_at_ms": 0
    });
    vec![
        Case::new("public GET /internal/feed", Method::GET, "/internal/feed")
            .expect(404, &["route"]),
        Case::new(
            "public POST /internal/2pc/prepare",
            Method::POST,
            "/internal/2pc/prepare",
        )
        .json(&prepare)
        .expect(404, &["route"]),
        Case::new(
            "public POST /internal/2pc/prepare with the secret",
            Method::POST,
            "/internal/2pc/prepare",
        )
        .json(&prepare)
        .header(SECRET_HEADER, secret)
        .expect(404, &["route"]),
        Case::new(
            "public GET /internal/status",
            Method::GET,
            "/internal/status",
        )
        .expect(404, &["route"]),
    ]
}

/// A service's own address answers its internal routes only to callers with the secret.
fn internal_without_secret_cases(system: &TestSystem, account_id: &str) -> Vec<Case> {
    let peers = &system.system.as_ref().expect("running").peers;
    let prepare = json!({
        "tx_id": "ord_sneaky", "account_id": account_id, "total_cents": 500,
        "points": 5, "started_at_ms": 0
    });
    let eligibility = json!({ "account_ids": [account_id] });
    let mut cases = vec![
        Case::new(
            "order GET /internal/feed without secret",
            Method::GET,
            "/internal/feed",
        )
        .at(&peers.order)
        .expect(401, &["secret"]),
        Case::new(
            "payment GET /internal/feed without secret",
            Method::GET,
            "/internal/feed",
        )
        .at(&peers.payment)
        .expect(401, &["secret"]),
        Case::new(
            "order GET /internal/feed with a wrong secret",
            Method::GET,
            "/internal/feed",
        )
        .at(&peers.order)
        .header(SECRET_HEADER, "guess")
        .expect(401, &["secret"]),
        Case::new(
            "account POST /internal/accounts/eligibility without secret",
            Method::POST,
            "/internal/accounts/eligibility",
        )
        .at(&peers.account)
        .json(&eligibility)
        .expect(401, &["secret"]),
        Case::new(
            "stats GET /internal/status without secret",
            Method::GET,
            "/internal/status",
        )
        .at(&peers.stats)
        .expect(401, &["secret"]),
        Case::new(
            "loyalty GET /internal/metrics without secret",
            Method::GET,
            "/internal/metrics",
        )
        .at(&peers.loyalty)
        .expect(401, &["secret"]),
    ];
    if system.mode() == Mode::Strong {
        for (name, base) in [
            ("payment", &peers.payment),
            ("loyalty", &peers.loyalty),
            ("stats", &peers.stats),
        ] {
            cases.push(
                Case::new(
                    format!("{name} POST /internal/2pc/prepare without secret"),
                    Method::POST,
                    "/internal/2pc/prepare",
                )
                .at(base)
                .json(&prepare)
                .expect(401, &["secret"]),
            );
        }
        cases.push(
            Case::new(
                "payment POST /internal/2pc/{id}/commit without secret",
                Method::POST,
                "/internal/2pc/ord_sneaky/commit",
            )
            .at(&peers.payment)
            .expect(401, &["secret"]),
        );
    }
    cases
}

async fn run_bad_input(mode: Mode) {
    let system = spawn(mode).await;
    let account = system.account_with(50_000).await;
    // A real order first, so that "unchanged" means something.
    let placed = system
        .place(&account.id, &[("ramen", 1, 1_450)], None)
        .await;
    assert_eq!(placed.status.map(|s| s.as_u16()), Some(ack_status(mode)));
    let placed = placed.order.expect("an order");
    system.wait_quiet().await;

    // The secret really opens the internal routes: the 401s below are about the secret.
    let peers = &system.system.as_ref().expect("running").peers;
    let secret = system.config.secret.clone();
    for base in [&peers.order, &peers.account] {
        let answer = send(
            &system,
            base,
            Method::GET,
            "/internal/status",
            &[(SECRET_HEADER, secret.as_str())],
            None,
        )
        .await;
        assert_eq!(answer.status, 200, "{base}: {}", answer.text);
    }

    let mut cases = order_cases(&account.id);
    cases.extend(account_and_wallet_cases(&account.id));
    cases.extend(unknown_cases());
    cases.extend(internal_through_gateway_cases(&account.id, &secret));
    cases.extend(internal_without_secret_cases(&system, &account.id));

    let before = snapshot(&system, &account.id).await;
    let mut report = Report::default();
    for case in &cases {
        let base = if case.base.is_empty() {
            system.client.base()
        } else {
            case.base.as_str()
        };
        let headers: Vec<(&str, &str)> = case
            .headers
            .iter()
            .map(|(name, value)| (*name, value.as_str()))
            .collect();
        let answer = send(
            &system,
            base,
            case.method.clone(),
            &case.path,
            &headers,
            case.body.clone(),
        )
        .await;
        report.expect_error(&case.name, &answer, case.status, &case.mentions);
        let after = snapshot(&system, &account.id).await;
        report.expect_unchanged(&case.name, &before, &after);
    }

    // Whatever an accepted bad request might have set going has had time to land.
    system.wait_quiet().await;
    let quiet = snapshot(&system, &account.id).await;
    report.expect_unchanged("after every case, once quiet", &before, &quiet);
    let wallet: Wallet = system.wallet(&account.id).await;
    assert_eq!(wallet.balance_cents, 50_000 - placed.total_cents);
    assert_eq!(wallet.held_cents, 0);
    system.assert_invariants(&[(placed.id, account.id)]).await;
    report.finish(mode);
    system.stop().await;
}

mod bad_input {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn strong() {
        run_bad_input(Mode::Strong).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn queue() {
        run_bad_input(Mode::Queue).await;
    }
}
