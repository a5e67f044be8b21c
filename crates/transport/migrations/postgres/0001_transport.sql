-- The transactional outbox: an event exists if and only if the state change that caused it
-- committed. Several writers (instances) commit out of sequence order, so rows are read in
-- (txid, seq) order and only below the oldest transaction still running: see outbox.rs.
CREATE TABLE outbox (
    seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    txid BIGINT NOT NULL DEFAULT (pg_current_xact_id()::text::bigint),
    event_id TEXT NOT NULL UNIQUE,
    recorded_at_ms BIGINT NOT NULL,
    body TEXT NOT NULL
);
CREATE INDEX outbox_by_cursor ON outbox (txid, seq);
CREATE INDEX outbox_by_age ON outbox (recorded_at_ms);

-- A consumer's position in each feed it reads, advanced in the transaction of its effects.
CREATE TABLE inbox_positions (
    feed TEXT PRIMARY KEY,
    tx BIGINT NOT NULL,
    seq BIGINT NOT NULL
);

-- Events a consumer set aside; replayed or discarded by an operator.
CREATE TABLE dead_letters (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    feed TEXT NOT NULL,
    tx BIGINT NOT NULL,
    seq BIGINT NOT NULL,
    event_id TEXT NOT NULL,
    body TEXT NOT NULL,
    error TEXT NOT NULL,
    attempts BIGINT NOT NULL,
    recorded_at_ms BIGINT NOT NULL,
    UNIQUE (feed, tx, seq)
);

-- Who may run a singleton job (a feed's consumer, a relay, recovery) among the instances of a
-- service, and until when.
CREATE TABLE leases (
    name TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    expires_at_ms BIGINT NOT NULL
);

-- Producers: how far each consumer of the embedded feed has read, so the outbox can be pruned.
CREATE TABLE feed_readers (
    consumer TEXT PRIMARY KEY,
    tx BIGINT NOT NULL,
    seq BIGINT NOT NULL,
    seen_at_ms BIGINT NOT NULL
);

-- Producers with a broker: the last outbox cursor published, and the stream sequence it got.
CREATE TABLE relay_positions (
    stream TEXT PRIMARY KEY,
    tx BIGINT NOT NULL,
    seq BIGINT NOT NULL,
    stream_seq BIGINT NOT NULL
);
