-- One entry per order, never two. Only 'credited' entries are in the balances below;
-- 'pending' is a prepared two-phase-commit entry, 'aborted' the tombstone of an aborted one (a
-- late prepare then holds nothing), 'reversed' the compensation of a cancelled order (or, if
-- the cancellation came first, a tombstone that keeps a late OrderPlaced out).
CREATE TABLE ledger (
    order_id TEXT PRIMARY KEY,
    account_id TEXT NOT NULL,
    points BIGINT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('pending', 'credited', 'reversed', 'aborted')),
    prepared_at_ms BIGINT,
    applied_at_ms BIGINT
);
CREATE INDEX ledger_by_account ON ledger (account_id, order_id);
CREATE INDEX ledger_pending ON ledger (prepared_at_ms) WHERE status = 'pending';
CREATE INDEX ledger_aborted ON ledger (applied_at_ms) WHERE status = 'aborted';

CREATE TABLE balances (
    account_id TEXT PRIMARY KEY,
    points BIGINT NOT NULL
);
