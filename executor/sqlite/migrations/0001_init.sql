-- evento SQLite schema, version 1.
--
-- Identifiers (aggregate types and ids, names, routing keys, subscription
-- keys, holders, revisions) are stored as BLOBs and always bound as []byte,
-- so NUL bytes, quotes and any UTF-8 round-trip and compare byte-wise.
-- The empty blob X'' means "no routing key". Times are integer
-- microseconds since the Unix epoch (UTC); NULL means the zero time.

CREATE TABLE events (
    position       INTEGER PRIMARY KEY, -- rowid: assigned inside the write transaction, never reused (events are never deleted)
    id             BLOB    NOT NULL,    -- ULID, 16 bytes
    aggregate_type BLOB    NOT NULL,
    aggregate_id   BLOB    NOT NULL,
    version        INTEGER NOT NULL,
    name           BLOB    NOT NULL,
    routing_key    BLOB    NOT NULL,
    data           BLOB,
    metadata       BLOB,
    timestamp      INTEGER NOT NULL,
    UNIQUE (aggregate_type, aggregate_id, version)
);

-- One index per query shape, each ending in position so a page is a range
-- read in global order.
CREATE INDEX events_agg_pos  ON events (aggregate_type, aggregate_id, position);
CREATE INDEX events_type_pos ON events (aggregate_type, position);
CREATE INDEX events_name_pos ON events (aggregate_type, name, position);
CREATE INDEX events_rk_pos   ON events (routing_key, position);
CREATE INDEX events_rk_type_pos ON events (routing_key, aggregate_type, position);

CREATE TABLE subscribers (
    key              BLOB    NOT NULL,
    partition        INTEGER NOT NULL,
    cursor           BLOB    NOT NULL,
    holder           BLOB    NOT NULL,
    token            INTEGER NOT NULL,
    lease_expires_at INTEGER,
    lag_events       INTEGER NOT NULL,
    lag_time         INTEGER NOT NULL, -- nanoseconds
    last_error       BLOB    NOT NULL,
    updated_at       INTEGER,
    PRIMARY KEY (key, partition)
) WITHOUT ROWID;

CREATE TABLE parked_events (
    key            BLOB    NOT NULL,
    partition      INTEGER NOT NULL,
    event_id       BLOB    NOT NULL,
    pos_tx         INTEGER NOT NULL,
    pos_seq        INTEGER NOT NULL,
    aggregate_type BLOB    NOT NULL,
    aggregate_id   BLOB    NOT NULL,
    version        INTEGER NOT NULL,
    name           BLOB    NOT NULL,
    routing_key    BLOB    NOT NULL,
    data           BLOB,
    metadata       BLOB,
    timestamp      INTEGER,
    error          BLOB    NOT NULL,
    attempts       INTEGER NOT NULL,
    parked_at      INTEGER,
    PRIMARY KEY (key, partition, event_id)
) WITHOUT ROWID;

CREATE INDEX parked_events_key_pos ON parked_events (key, pos_tx, pos_seq);

CREATE TABLE snapshots (
    aggregate_type BLOB    NOT NULL,
    aggregate_id   BLOB    NOT NULL,
    revision       BLOB    NOT NULL,
    version        INTEGER NOT NULL,
    cursor         BLOB    NOT NULL,
    event_time     INTEGER,
    data           BLOB,
    created_at     INTEGER,
    PRIMARY KEY (aggregate_type, aggregate_id, revision, version)
) WITHOUT ROWID;
