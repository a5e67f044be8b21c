CREATE TABLE orders (
    id TEXT PRIMARY KEY,
    account_id TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('accepted', 'confirmed', 'cancelled')),
    total_cents INTEGER NOT NULL CHECK (total_cents > 0),
    points INTEGER NOT NULL CHECK (points >= 0),
    items TEXT NOT NULL,
    reason TEXT,
    acknowledged_at_ms INTEGER NOT NULL,
    settled_at_ms INTEGER
);
CREATE INDEX orders_by_account ON orders (account_id, id);

-- A client's Idempotency-Key (or one the service made up for a request without) and the
-- first final answer it got. `response` is NULL while a strong-mode order with this key is
-- not finished: a retry then drives that order's two-phase commit (`order_id`) to its end.
CREATE TABLE idempotency_keys (
    key TEXT PRIMARY KEY,
    request_hash TEXT NOT NULL,
    order_id TEXT NOT NULL,
    status_code INTEGER,
    response TEXT,
    created_at_ms INTEGER NOT NULL
);
CREATE INDEX idempotency_keys_by_order ON idempotency_keys (order_id);
CREATE INDEX idempotency_keys_by_age ON idempotency_keys (created_at_ms);

-- The coordinator's decision log (strong mode). A row is written once and never changes its
-- outcome: the primary key makes "commit" and a participant's "abort" race for the same row.
-- `completed` is set once every participant has applied the outcome.
CREATE TABLE decisions (
    tx_id TEXT PRIMARY KEY,
    outcome TEXT NOT NULL CHECK (outcome IN ('commit', 'abort')),
    decided_at_ms INTEGER NOT NULL,
    completed INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX decisions_incomplete ON decisions (decided_at_ms) WHERE completed = 0;
CREATE INDEX decisions_by_age ON decisions (decided_at_ms);
