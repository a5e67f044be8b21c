-- The CHECKs make the invariants structural: no wallet ever goes below zero, and no more is
-- held than the wallet has.
CREATE TABLE wallets (
    account_id TEXT PRIMARY KEY,
    balance_cents INTEGER NOT NULL CHECK (balance_cents >= 0),
    held_cents INTEGER NOT NULL CHECK (held_cents >= 0 AND held_cents <= balance_cents),
    top_ups_cents INTEGER NOT NULL CHECK (top_ups_cents >= 0)
);

CREATE TABLE top_ups (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    account_id TEXT NOT NULL REFERENCES wallets (account_id),
    amount_cents INTEGER NOT NULL CHECK (amount_cents > 0),
    at_ms INTEGER NOT NULL
);

-- One payment per order (the primary key). 'held' is a prepared two-phase-commit entry:
-- funds set aside, not yet taken, shown to no one.
CREATE TABLE payments (
    order_id TEXT PRIMARY KEY,
    account_id TEXT NOT NULL,
    amount_cents INTEGER NOT NULL CHECK (amount_cents > 0),
    status TEXT NOT NULL CHECK (status IN ('held', 'captured', 'declined', 'refunded')),
    reason TEXT,
    prepared_at_ms INTEGER,
    updated_at_ms INTEGER NOT NULL
);
CREATE INDEX payments_by_account ON payments (account_id, order_id);
CREATE INDEX payments_held ON payments (prepared_at_ms) WHERE status = 'held';
