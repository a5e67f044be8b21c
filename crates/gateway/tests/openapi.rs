//! The OpenAPI document against what the code does: the route table the router is built from
//! (a route added without being documented, or documented without existing, fails here), the
//! limits of `contracts::limits`, the bodies the contract types serialize to, and the answers
//! every route can give. What only a running system shows is left to schemathesis
//! (`.ci/contract`).

use std::collections::BTreeSet;

use gateway::OPENAPI_JSON;
use gateway::routes::{ROUTES, Target};
use serde_json::Value;

fn document() -> Value {
    serde_json::from_str(OPENAPI_JSON).expect("openapi.json is JSON")
}

fn operation<'a>(doc: &'a Value, method: &str, path: &str) -> Option<&'a Value> {
    doc["paths"].get(path)?.get(method)
}

#[test]
fn it_is_openapi_3_1() {
    let doc = document();
    assert_eq!(doc["openapi"], "3.1.0");
    assert!(doc["info"]["title"].is_string());
}

#[test]
fn every_route_is_documented_and_nothing_else() {
    let doc = document();
    let table: BTreeSet<(String, String)> = ROUTES
        .iter()
        .map(|route| (route.method.as_str().to_lowercase(), route.path.to_owned()))
        .collect();
    let documented: BTreeSet<(String, String)> = doc["paths"]
        .as_object()
        .unwrap()
        .iter()
        .flat_map(|(path, item)| {
            item.as_object()
                .unwrap()
                .keys()
                .filter(|key| !["parameters", "summary", "description"].contains(&key.as_str()))
                .map(move |method| (method.clone(), path.clone()))
        })
        .collect();
    let undocumented: Vec<_> = table.difference(&documented).collect();
    let phantom: Vec<_> = documented.difference(&table).collect();
    assert!(
        undocumented.is_empty(),
        "routes not documented: {undocumented:?}"
    );
    assert!(phantom.is_empty(), "documented but not routed: {phantom:?}");
}

#[test]
fn every_operation_has_responses_and_forwarded_ones_can_be_503() {
    let doc = document();
    for route in ROUTES {
        let method = route.method.as_str().to_lowercase();
        let op = operation(&doc, &method, route.path).unwrap();
        let responses = op["responses"].as_object().unwrap();
        assert!(
            responses.keys().any(|code| code.starts_with('2')),
            "{method} {} has no success answer",
            route.path
        );
        if matches!(route.target, Target::Service(_)) {
            assert!(
                responses.contains_key("503"),
                "{method} {} does not document the gateway's 503",
                route.path
            );
        }
        if method == "post" && route.path != "/accounts/{id}/suspend" {
            assert!(
                op.get("requestBody").is_some(),
                "post {} has no request body",
                route.path
            );
            assert!(
                responses.contains_key("413"),
                "post {} lacks 413",
                route.path
            );
        }
        // Every `{param}` of the path is declared.
        for segment in route.path.split('/') {
            if let Some(name) = segment.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                let declared = op["parameters"].as_array().is_some_and(|params| {
                    params
                        .iter()
                        .any(|p| p["name"] == name && p["in"] == "path")
                });
                assert!(declared, "{method} {} does not declare {name}", route.path);
            }
        }
    }
}

#[test]
fn placing_an_order_documents_its_modes_and_the_idempotency_key() {
    let doc = document();
    let op = operation(&doc, "post", "/orders").unwrap();
    for code in [
        "201", "202", "400", "402", "403", "404", "409", "413", "415", "422", "503",
    ] {
        assert!(
            op["responses"].get(code).is_some(),
            "POST /orders lacks {code}"
        );
    }
    let params = op["parameters"].as_array().unwrap();
    let key = params
        .iter()
        .map(|p| match p.get("$ref").and_then(Value::as_str) {
            Some(reference) => resolve(&doc, reference).clone(),
            None => p.clone(),
        })
        .find(|p| p["name"] == "Idempotency-Key")
        .expect("Idempotency-Key is documented");
    assert_eq!(key["in"], "header");
}

#[test]
fn the_schemas_the_api_promises_exist() {
    let doc = document();
    for name in [
        "Account",
        "Wallet",
        "Order",
        "OrderItem",
        "Payment",
        "Points",
        "Ledger",
        "Totals",
        "AccountTotals",
        "Progress",
        "Error",
    ] {
        assert!(
            doc["components"]["schemas"].get(name).is_some(),
            "schema {name} is missing"
        );
    }
    let order = &doc["components"]["schemas"]["Order"]["properties"];
    for field in [
        "id",
        "account_id",
        "status",
        "total_cents",
        "items",
        "reason",
    ] {
        assert!(order.get(field).is_some(), "Order lacks {field}");
    }
}

fn resolve<'a>(doc: &'a Value, reference: &str) -> &'a Value {
    let pointer = reference
        .strip_prefix('#')
        .unwrap_or_else(|| panic!("{reference} is not local"));
    doc.pointer(pointer)
        .unwrap_or_else(|| panic!("{reference} points nowhere"))
}

#[test]
fn every_reference_resolves() {
    fn walk(doc: &Value, node: &Value) {
        match node {
            Value::Object(map) => {
                if let Some(Value::String(reference)) = map.get("$ref") {
                    resolve(doc, reference);
                }
                map.values().for_each(|child| walk(doc, child));
            }
            Value::Array(items) => items.iter().for_each(|child| walk(doc, child)),
            _ => {}
        }
    }
    let doc = document();
    walk(&doc, &doc);
}

/// Every operation can be a `503` with `Retry-After`: a forwarded one when its service does not
/// answer, and any one when the server sheds load. Every request body can be too large (413),
/// not JSON (415), malformed (400), invalid (422) or too slow (408); every path segment or
/// query string can fail to parse (400).
#[test]
fn every_operation_documents_the_answers_the_server_can_give() {
    let doc = document();
    for route in ROUTES {
        let method = route.method.as_str().to_lowercase();
        let op = operation(&doc, &method, route.path).unwrap();
        let responses = &op["responses"];
        let answer = |code: &str| match responses.get(code) {
            Some(Value::Object(map)) => match map.get("$ref").and_then(Value::as_str) {
                Some(reference) => Some(resolve(&doc, reference).clone()),
                None => Some(Value::Object(map.clone())),
            },
            _ => None,
        };
        let name = format!("{method} {}", route.path);
        if route.path != "/health" {
            // /health's 503 is its own answer: which service is down, not an error.
            let unavailable = answer("503").unwrap_or_else(|| panic!("{name} lacks 503"));
            assert!(
                unavailable["headers"].get("Retry-After").is_some(),
                "{name}: its 503 does not document Retry-After"
            );
        }
        if op.get("requestBody").is_some() {
            for code in ["400", "408", "413", "415", "422"] {
                assert!(answer(code).is_some(), "{name} lacks {code}");
            }
        }
        let has_input = route.path.contains('{')
            || op["parameters"].as_array().is_some_and(|params| {
                params.iter().any(|p| {
                    let p = match p.get("$ref").and_then(Value::as_str) {
                        Some(reference) => resolve(&doc, reference),
                        None => p,
                    };
                    p["in"] == "query"
                })
            });
        if has_input {
            assert!(answer("400").is_some(), "{name} lacks 400");
        }
        // Errors are JSON, always.
        for (code, _) in responses.as_object().unwrap() {
            if code.starts_with('4') || code.starts_with('5') {
                let answer = answer(code).unwrap();
                assert!(
                    answer["content"].get("application/json").is_some(),
                    "{name}: {code} is not documented as JSON"
                );
            }
        }
    }
}

#[test]
fn both_writes_that_take_an_idempotency_key_document_it_both_ways() {
    let doc = document();
    for path in ["/orders", "/wallets/{account_id}/top-ups"] {
        let op = operation(&doc, "post", path).unwrap();
        let declared = op["parameters"].as_array().unwrap().iter().any(|p| {
            p.get("$ref").and_then(Value::as_str) == Some("#/components/parameters/IdempotencyKey")
        });
        assert!(declared, "POST {path} does not take Idempotency-Key");
        assert!(
            op["responses"]["201"]["headers"]
                .get("Idempotency-Key")
                .is_some(),
            "POST {path} does not answer with Idempotency-Key"
        );
        assert!(
            op["responses"].get("409").is_some(),
            "POST {path} lacks 409"
        );
    }
}

/// The bounds the document states are the ones `contracts::limits` enforces: a limit changed
/// there fails here until the document says it too.
#[test]
fn the_documented_bounds_are_the_enforced_ones() {
    use contracts::limits::*;
    let doc = document();
    let schema = |name: &str| doc["components"]["schemas"][name].clone();
    let item = schema("OrderItem")["properties"].clone();
    assert_eq!(item["quantity"]["maximum"], QUANTITY_MAX);
    assert_eq!(item["unit_price_cents"]["maximum"], UNIT_PRICE_CENTS_MAX);
    assert_eq!(
        schema("PlaceOrderRequest")["properties"]["items"]["maxItems"],
        ITEMS_MAX
    );
    assert_eq!(
        schema("TopUpRequest")["properties"]["amount_cents"]["maximum"],
        TOP_UP_CENTS_MAX
    );
    assert_eq!(
        doc["components"]["parameters"]["limit"]["schema"]["maximum"],
        LIST_LIMIT_MAX
    );
    let total = ORDER_TOTAL_CENTS_MAX.to_string();
    let words = schema("PlaceOrderRequest")["description"].to_string();
    assert!(words.contains(&total), "the total's limit: {words}");
    let body = BODY_BYTES_MAX.to_string();
    assert!(doc["info"]["description"].to_string().contains(&body));
    assert!(
        doc["components"]["responses"]["TooLarge"]["description"]
            .to_string()
            .contains(&body)
    );
    // Ids and keys: ASCII letters, digits, `-` and `_`, 1 to ID_CHARS_MAX of them.
    let id_pattern = format!("^[A-Za-z0-9_-]{{1,{ID_CHARS_MAX}}}$");
    for name in ["Id", "IdempotencyKey"] {
        assert_eq!(schema(name)["pattern"], id_pattern.as_str(), "{name}");
    }
    // Names and SKUs: a first and a last character around at most max − 2 others.
    let inner = |max: usize| format!("{{0,{}}}", max - 2);
    let name = schema("CreateAccountRequest")["properties"]["name"]["pattern"].to_string();
    assert!(name.contains(&inner(NAME_CHARS_MAX)), "{name}");
    let sku = item["sku"]["pattern"].to_string();
    assert!(sku.contains(&inner(SKU_CHARS_MAX)), "{sku}");
}

/// Each field a body has is documented, and each field documented as required is there:
/// checked on real values, so that a field added to a type fails here until it is documented.
fn assert_documents(doc: &Value, schema: &str, value: &impl serde::Serialize) {
    let value = serde_json::to_value(value).unwrap();
    let schema_def = &doc["components"]["schemas"][schema];
    let properties = schema_def["properties"]
        .as_object()
        .unwrap_or_else(|| panic!("{schema} has no properties"));
    for field in value.as_object().unwrap().keys() {
        assert!(
            properties.contains_key(field),
            "{schema}: field {field} is not documented"
        );
    }
    for required in schema_def["required"].as_array().into_iter().flatten() {
        let required = required.as_str().unwrap();
        assert!(
            value.get(required).is_some(),
            "{schema}: {required} is required but not in {value}"
        );
    }
}

fn enum_values(doc: &Value, schema: &Value) -> Vec<String> {
    let schema = match schema.get("$ref").and_then(Value::as_str) {
        Some(reference) => resolve(doc, reference),
        None => schema,
    };
    schema["enum"]
        .as_array()
        .unwrap_or_else(|| panic!("not an enum: {schema}"))
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn progress_and_dead_letters_are_documented_as_served() {
    use contracts::events::Cursor;
    use contracts::internal::{ConsumerState, ConsumerStatus, DeadLetter, ServiceStatus};
    let doc = document();
    let stuck = ConsumerStatus {
        position: Cursor::new(3, 7),
        state: ConsumerState::Stuck,
        stuck_since_ms: Some(1),
        last_error: Some("disk full".into()),
    };
    let status = ServiceStatus {
        outbox_head: Some(Cursor::new(3, 9)),
        unpublished: 2,
        consumers: [("order".to_owned(), stuck.clone())].into(),
        in_doubt: 1,
    };
    assert_documents(&doc, "ServiceStatus", &status);
    assert_documents(&doc, "ServiceStatus", &ServiceStatus::default());
    assert_documents(&doc, "ConsumerStatus", &stuck);
    assert_documents(&doc, "ConsumerStatus", &ConsumerStatus::default());
    assert_documents(&doc, "Cursor", &Cursor::new(3, 7));
    let states = enum_values(
        &doc,
        &doc["components"]["schemas"]["ConsumerStatus"]["properties"]["state"],
    );
    for state in [
        ConsumerState::Running,
        ConsumerState::Paused,
        ConsumerState::Stuck,
        ConsumerState::Standby,
    ] {
        let state = serde_json::to_value(state).unwrap();
        assert!(states.iter().any(|s| state == s.as_str()), "{state}");
    }

    // As the gateway lists them: without the event's body.
    let letter = DeadLetter {
        id: 1,
        feed: "order".into(),
        cursor: Cursor::new(0, 4),
        event_id: "evt_1".into(),
        body: None,
        error: "cannot be decoded".into(),
        attempts: 1,
        recorded_at_ms: 2,
    };
    assert_documents(&doc, "DeadLetter", &letter);
    assert!(
        doc["components"]["schemas"]["DeadLetter"]["properties"]
            .get("body")
            .is_none(),
        "the public listing shows no event bodies"
    );
}

#[test]
fn the_answers_bodies_are_documented_as_served() {
    use contracts::api::*;
    use contracts::order::LineItem;
    let doc = document();
    let order = Order {
        id: "ord_1".into(),
        account_id: "acc_1".into(),
        status: OrderStatus::Cancelled,
        total_cents: 100,
        points: 1,
        items: vec![LineItem {
            sku: "ramen".into(),
            quantity: 1,
            unit_price_cents: 100,
        }],
        reason: Some(Refusal::InsufficientFunds),
        acknowledged_at_ms: 1,
        settled_at_ms: Some(2),
    };
    assert_documents(&doc, "Order", &order);
    assert_documents(&doc, "OrderItem", &order.items[0]);
    let payment = Payment {
        order_id: "ord_1".into(),
        account_id: "acc_1".into(),
        amount_cents: 100,
        status: PaymentStatus::Declined,
        reason: Some(Refusal::InsufficientFunds),
        updated_at_ms: Some(1),
    };
    assert_documents(&doc, "Payment", &payment);
    let entry = LedgerEntry {
        order_id: "ord_1".into(),
        points: 1,
        status: LedgerStatus::Reversed,
        applied_at_ms: Some(1),
    };
    assert_documents(&doc, "LedgerEntry", &entry);
    let wallet = Wallet {
        account_id: "acc_1".into(),
        balance_cents: 1,
        held_cents: 0,
        top_ups_cents: 1,
    };
    assert_documents(&doc, "Wallet", &wallet);
    let account = Account {
        id: "acc_1".into(),
        name: "Ada".into(),
        status: AccountStatus::Suspended,
    };
    assert_documents(&doc, "Account", &account);

    let schemas = &doc["components"]["schemas"];
    let documented = |schema: &str| enum_values(&doc, &schemas[schema]);
    for (schema, values) in [
        (
            "OrderStatus",
            vec![
                OrderStatus::Accepted.as_str(),
                OrderStatus::Confirmed.as_str(),
                OrderStatus::Cancelled.as_str(),
            ],
        ),
        (
            "PaymentStatus",
            vec![
                PaymentStatus::Captured.as_str(),
                PaymentStatus::Declined.as_str(),
                PaymentStatus::Refunded.as_str(),
            ],
        ),
        (
            "Refusal",
            vec![
                Refusal::UnknownAccount.as_str(),
                Refusal::AccountSuspended.as_str(),
                Refusal::InsufficientFunds.as_str(),
            ],
        ),
        (
            "AccountStatus",
            vec![
                AccountStatus::Active.as_str(),
                AccountStatus::Suspended.as_str(),
            ],
        ),
    ] {
        assert_eq!(documented(schema), values, "{schema}");
    }
}
