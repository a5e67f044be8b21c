"""schemathesis hooks for `.ci/contract`.

POST /orders refuses (422) an order whose total, the sum of quantity x unit price over its
items, is over ORDER_TOTAL_CENTS_MAX: a rule across fields that JSON Schema cannot state, so
the OpenAPI document states it in words. Random quantities times random prices break it in
most generated orders, which would then test the refusal again and again and the order's life
hardly ever. So an order that is valid in every field but too large in total is scaled down to
fit, keeping it valid; an order that breaks a documented rule is left exactly as it was, so it
is still a request the API must refuse.
"""

import schemathesis

# crates/contracts/src/limits.rs
ORDER_TOTAL_CENTS_MAX = 100_000_000
QUANTITY_MAX = 1_000
UNIT_PRICE_CENTS_MAX = 10_000_000


def _whole_in(value, low, high):
    """Whether `value` is a JSON number the API takes as a whole number in [low, high]."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    return value == int(value) and low <= value <= high


@schemathesis.hook
def map_body(context, body):
    operation = context.operation
    if operation is None or operation.method.upper() != "POST" or operation.path != "/orders":
        return body
    items = body.get("items") if isinstance(body, dict) else None
    if not isinstance(items, list) or not items:
        return body
    for item in items:
        if not isinstance(item, dict):
            return body
        if not _whole_in(item.get("quantity"), 1, QUANTITY_MAX):
            return body
        if not _whole_in(item.get("unit_price_cents"), 1, UNIT_PRICE_CENTS_MAX):
            return body
    total = sum(int(item["quantity"]) * int(item["unit_price_cents"]) for item in items)
    if total <= ORDER_TOTAL_CENTS_MAX:
        return body
    # Each line at most its share of the limit: one unit, at no more than the share.
    share = max(1, ORDER_TOTAL_CENTS_MAX // len(items))
    scaled = [
        {**item, "quantity": 1, "unit_price_cents": min(int(item["unit_price_cents"]), share)}
        for item in items
    ]
    return {**body, "items": scaled}
