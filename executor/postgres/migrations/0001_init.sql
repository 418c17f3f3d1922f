-- evento PostgreSQL schema, version 1.
-- ${schema} is replaced by the quoted schema name.
-- Identifiers (types, ids, names, routing keys, subscription keys, holders)
-- are bytea: Go strings may hold NUL bytes, which PostgreSQL text cannot.

CREATE TABLE ${schema}.settings (
	name  text PRIMARY KEY,
	value text NOT NULL
);

-- Global order is (tx, seq). With the tx-horizon ordering tx is the writing
-- transaction's id; with the advisory-lock ordering it is 0 and seq alone
-- orders.
CREATE TABLE ${schema}.events (
	tx             xid8   NOT NULL DEFAULT pg_current_xact_id(),
	seq            bigint GENERATED ALWAYS AS IDENTITY,
	id             bytea  NOT NULL,
	aggregate_type bytea  NOT NULL,
	aggregate_id   bytea  NOT NULL,
	version        bigint NOT NULL CHECK (version > 0),
	name           bytea  NOT NULL,
	routing_key    bytea  NOT NULL DEFAULT ''::bytea,
	data           bytea,
	metadata       bytea,
	ts             timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (tx, seq),
	CONSTRAINT events_aggregate_version UNIQUE (aggregate_type, aggregate_id, version)
);

-- One index per query shape, each ending in (tx, seq) so a page is an index
-- range scan of O(page) entries in either direction.
CREATE INDEX events_routing       ON ${schema}.events (routing_key, tx, seq);
CREATE INDEX events_type          ON ${schema}.events (aggregate_type, tx, seq);
CREATE INDEX events_type_routing  ON ${schema}.events (aggregate_type, routing_key, tx, seq);
-- Aggregate reads in global order. The id leads: with (aggregate_type,
-- aggregate_id, …), the same prefix as the unique index, the planner could
-- pick it for version lookups and read a whole aggregate per write; and
-- (id, type, routing_key) gives the planner more equality columns than the
-- type-and-routing index for aggregate reads with a routing key.
CREATE INDEX events_aggregate         ON ${schema}.events (aggregate_id, aggregate_type, tx, seq);
CREATE INDEX events_aggregate_routing ON ${schema}.events (aggregate_id, aggregate_type, routing_key, tx, seq);
CREATE INDEX events_name          ON ${schema}.events (aggregate_type, name, tx, seq);
CREATE INDEX events_name_routing  ON ${schema}.events (aggregate_type, name, routing_key, tx, seq);

CREATE TABLE ${schema}.subscribers (
	key              bytea  NOT NULL,
	partition        bigint NOT NULL,
	cursor           text   NOT NULL DEFAULT '',
	holder           bytea  NOT NULL DEFAULT ''::bytea,
	token            bigint NOT NULL DEFAULT 0,
	lease_expires_at timestamptz,
	lag_events       bigint NOT NULL DEFAULT 0,
	lag_time_us      bigint NOT NULL DEFAULT 0,
	last_error       bytea  NOT NULL DEFAULT ''::bytea,
	updated_at       timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (key, partition)
);

CREATE TABLE ${schema}.parked (
	key            bytea  NOT NULL,
	partition      bigint NOT NULL,
	event_id       bytea  NOT NULL,
	tx             xid8   NOT NULL,
	seq            bigint NOT NULL,
	aggregate_type bytea  NOT NULL,
	aggregate_id   bytea  NOT NULL,
	version        bigint NOT NULL,
	name           bytea  NOT NULL,
	routing_key    bytea  NOT NULL,
	data           bytea,
	metadata       bytea,
	ts             timestamptz NOT NULL,
	error          bytea  NOT NULL,
	attempts       integer NOT NULL,
	parked_at      timestamptz NOT NULL,
	PRIMARY KEY (key, partition, event_id)
);
CREATE INDEX parked_order ON ${schema}.parked (key, tx, seq);

CREATE TABLE ${schema}.snapshots (
	aggregate_type bytea  NOT NULL,
	revision       bytea  NOT NULL,
	aggregate_id   bytea  NOT NULL,
	version        bigint NOT NULL,
	cursor         text   NOT NULL,
	event_time     timestamptz,
	event_time_ns  integer NOT NULL DEFAULT 0, -- sub-microsecond part of event_time
	data           bytea,
	created_at     timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (aggregate_type, aggregate_id, revision, version)
);
