-- The CHECKs make the invariants structural: no wallet ever goes below zero, and no more is
-- held than the wallet has.
CREATE TABLE wallets (
    account_id TEXT PRIMARY KEY,
    balance_cents BIGINT NOT NULL CHECK (balance_cents >= 0),
    held_cents BIGINT NOT NULL CHECK (held_cents >= 0 AND held_cents <= balance_cents),
    top_ups_cents BIGINT NOT NULL CHECK (top_ups_cents >= 0)
);

CREATE TABLE top_ups (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    account_id TEXT NOT NULL REFERENCES wallets (account_id),
    amount_cents BIGINT NOT NULL CHECK (amount_cents > 0),
    at_ms BIGINT NOT NULL
);

-- One payment per order (the primary key). 'held' is a prepared two-phase-commit entry:
-- funds set aside, not yet taken, shown to no one; 'released' the tombstone of an aborted one,
-- so that a prepare arriving after its abort holds nothing (also shown to no one).
CREATE TABLE payments (
    order_id TEXT PRIMARY KEY,
    account_id TEXT NOT NULL,
    amount_cents BIGINT NOT NULL CHECK (amount_cents > 0 OR status = 'released'),
    status TEXT NOT NULL CHECK (status IN ('held', 'captured', 'declined', 'refunded', 'released')),
    reason TEXT,
    prepared_at_ms BIGINT,
    updated_at_ms BIGINT NOT NULL
);
CREATE INDEX payments_by_account ON payments (account_id, order_id);
CREATE INDEX payments_held ON payments (prepared_at_ms) WHERE status = 'held';
CREATE INDEX payments_released ON payments (updated_at_ms) WHERE status = 'released';

-- A client's Idempotency-Key on a top-up and the first answer it got.
CREATE TABLE top_up_keys (
    key TEXT PRIMARY KEY,
    request_hash TEXT NOT NULL,
    response TEXT NOT NULL,
    created_at_ms BIGINT NOT NULL
);
CREATE INDEX top_up_keys_by_age ON top_up_keys (created_at_ms);
