//! The OpenAPI document against the route table the router is built from: a route added
//! without being documented, or documented without existing, fails here.

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
