//! The validated order: what `POST /orders` accepts once every field has been checked.

use serde::{Deserialize, Serialize};

use crate::ValidationError;
use crate::api::{OrderItem, PlaceOrderRequest};
use crate::ids::AccountId;
use crate::limits::{
    ITEMS_MAX, ORDER_TOTAL_CENTS_MAX, QUANTITY_MAX, SKU_CHARS_MAX, UNIT_PRICE_CENTS_MAX,
};
use crate::money::Cents;

/// One line of a validated order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LineItem {
    pub sku: String,
    pub quantity: u32,
    pub unit_price_cents: i64,
}

/// An order that passed every rule of the API: an account id of the right shape, 1 to
/// [`ITEMS_MAX`] items, each with a SKU, a quantity and a price inside their limits, and a
/// total that neither overflows nor exceeds [`ORDER_TOTAL_CENTS_MAX`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewOrder {
    account_id: AccountId,
    items: Vec<LineItem>,
    total: Cents,
}

impl NewOrder {
    pub fn parse(request: PlaceOrderRequest) -> Result<Self, ValidationError> {
        let account_id = AccountId::parse(&request.account_id)?;
        if request.items.is_empty() {
            return Err(ValidationError::new("items must not be empty"));
        }
        if request.items.len() > ITEMS_MAX {
            return Err(ValidationError::new(format!(
                "an order may have at most {ITEMS_MAX} items, got {}",
                request.items.len()
            )));
        }
        let mut total: i64 = 0;
        let mut items = Vec::with_capacity(request.items.len());
        for (i, item) in request.items.into_iter().enumerate() {
            let line = parse_item(i, item)?;
            // Each factor is bounded, so the product fits; the running sum is checked anyway
            // so that a change of limits can never turn into a silent overflow.
            total = total
                .checked_add(i64::from(line.quantity) * line.unit_price_cents)
                .filter(|t| *t <= ORDER_TOTAL_CENTS_MAX)
                .ok_or_else(|| {
                    ValidationError::new(format!(
                        "order total must be at most {ORDER_TOTAL_CENTS_MAX} cents"
                    ))
                })?;
            items.push(line);
        }
        let total = Cents::parse("total", total, ORDER_TOTAL_CENTS_MAX)?;
        Ok(Self {
            account_id,
            items,
            total,
        })
    }

    pub fn account_id(&self) -> &AccountId {
        &self.account_id
    }

    pub fn items(&self) -> &[LineItem] {
        &self.items
    }

    pub fn total(&self) -> Cents {
        self.total
    }
}

fn parse_item(i: usize, item: OrderItem) -> Result<LineItem, ValidationError> {
    let sku = item.sku.trim();
    if sku.is_empty() {
        return Err(ValidationError::new(format!(
            "items[{i}].sku must not be empty"
        )));
    }
    if sku.chars().count() > SKU_CHARS_MAX {
        return Err(ValidationError::new(format!(
            "items[{i}].sku must be at most {SKU_CHARS_MAX} characters"
        )));
    }
    if sku.chars().any(char::is_control) {
        return Err(ValidationError::new(format!(
            "items[{i}].sku must not contain control characters"
        )));
    }
    if item.quantity <= 0 || item.quantity > i64::from(QUANTITY_MAX) {
        return Err(ValidationError::new(format!(
            "items[{i}].quantity must be between 1 and {QUANTITY_MAX}, got {}",
            item.quantity
        )));
    }
    let price = Cents::parse(
        &format!("items[{i}].unit_price_cents"),
        item.unit_price_cents,
        UNIT_PRICE_CENTS_MAX,
    )?;
    Ok(LineItem {
        sku: sku.to_owned(),
        quantity: item.quantity as u32,
        unit_price_cents: price.get(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(items: Vec<(&str, i64, i64)>) -> PlaceOrderRequest {
        PlaceOrderRequest {
            account_id: "acc_1".into(),
            items: items
                .into_iter()
                .map(|(sku, quantity, unit_price_cents)| OrderItem {
                    sku: sku.into(),
                    quantity,
                    unit_price_cents,
                })
                .collect(),
        }
    }

    #[test]
    fn a_valid_order_has_its_total_and_points() {
        let order = NewOrder::parse(request(vec![("pizza", 2, 1250), ("soda", 1, 300)])).unwrap();
        assert_eq!(order.total().get(), 2800);
        assert_eq!(order.total().points(), 28);
    }

    #[test]
    fn each_rule_names_what_was_wrong() {
        let cases = [
            (request(vec![]), "items must not be empty"),
            (request(vec![("", 1, 100)]), "sku must not be empty"),
            (request(vec![("a", 0, 100)]), "quantity must be between"),
            (request(vec![("a", -1, 100)]), "quantity must be between"),
            (request(vec![("a", 1_001, 100)]), "quantity must be between"),
            (
                request(vec![("a", 1, 0)]),
                "unit_price_cents must be a positive",
            ),
            (
                request(vec![("a", 1, -10)]),
                "unit_price_cents must be a positive",
            ),
            (
                request(vec![("a", 1, i64::MAX)]),
                "unit_price_cents must be at most",
            ),
            (
                request(vec![("a", 1_000, UNIT_PRICE_CENTS_MAX)]),
                "order total must be at most",
            ),
            (
                request(vec![("a", 1, 1); ITEMS_MAX + 1]),
                "at most 50 items",
            ),
            (
                request(vec![(&"x".repeat(65), 1, 1)]),
                "sku must be at most",
            ),
        ];
        for (req, expected) in cases {
            let err = NewOrder::parse(req).unwrap_err();
            assert!(
                err.0.contains(expected),
                "{err} should mention {expected:?}"
            );
        }
    }
}
