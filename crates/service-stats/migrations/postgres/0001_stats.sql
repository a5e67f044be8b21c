-- One row per order Stats has heard of. Only 'counted' rows are in the totals below;
-- 'pending' is a prepared two-phase-commit entry, 'aborted' the tombstone of an aborted one
-- (a late prepare then holds nothing), 'reversed' an order cancelled after it was counted (or
-- before: then it is a tombstone that keeps a late OrderPlaced out).
CREATE TABLE order_facts (
    order_id TEXT PRIMARY KEY,
    account_id TEXT NOT NULL,
    total_cents BIGINT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('pending', 'counted', 'reversed', 'aborted')),
    acknowledged_at_ms BIGINT NOT NULL,
    prepared_at_ms BIGINT,
    applied_at_ms BIGINT
);
CREATE INDEX order_facts_pending ON order_facts (prepared_at_ms) WHERE status = 'pending';
CREATE INDEX order_facts_aborted ON order_facts (applied_at_ms) WHERE status = 'aborted';

CREATE TABLE account_totals (
    account_id TEXT PRIMARY KEY,
    orders BIGINT NOT NULL,
    revenue_cents BIGINT NOT NULL
);

-- Orders and revenue by the minute the order was acknowledged.
CREATE TABLE minute_totals (
    minute BIGINT PRIMARY KEY,
    orders BIGINT NOT NULL,
    revenue_cents BIGINT NOT NULL
);
