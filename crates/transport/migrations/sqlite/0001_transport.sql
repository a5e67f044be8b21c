-- The transactional outbox: an event exists if and only if the state change that caused it
-- committed. The single writer commits in sequence order, so a cursor is just `seq`.
CREATE TABLE outbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id TEXT NOT NULL UNIQUE,
    recorded_at_ms INTEGER NOT NULL,
    body TEXT NOT NULL
);
CREATE INDEX outbox_by_age ON outbox (recorded_at_ms);

-- A consumer's position in each feed it reads, advanced in the transaction of its effects.
CREATE TABLE inbox_positions (
    feed TEXT PRIMARY KEY,
    tx INTEGER NOT NULL,
    seq INTEGER NOT NULL
);

-- Events a consumer set aside; replayed or discarded by an operator.
CREATE TABLE dead_letters (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    feed TEXT NOT NULL,
    tx INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    event_id TEXT NOT NULL,
    body TEXT NOT NULL,
    error TEXT NOT NULL,
    attempts INTEGER NOT NULL,
    recorded_at_ms INTEGER NOT NULL,
    UNIQUE (feed, tx, seq)
);

-- Who may run a singleton job (a feed's consumer, a relay, recovery) among the instances of a
-- service, and until when.
CREATE TABLE leases (
    name TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    expires_at_ms INTEGER NOT NULL
);

-- Producers: how far each consumer of the embedded feed has read, so the outbox can be pruned.
CREATE TABLE feed_readers (
    consumer TEXT PRIMARY KEY,
    tx INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    seen_at_ms INTEGER NOT NULL
);

-- Producers with a broker: the last outbox cursor published, and the stream sequence it got.
CREATE TABLE relay_positions (
    stream TEXT PRIMARY KEY,
    tx INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    stream_seq INTEGER NOT NULL
);
