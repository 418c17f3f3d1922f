-- Worker presence: each running worker of a partitioned subscription
-- announces itself under its key with an expiry (the server's clock),
-- renewed at every claim round, so workers see each other and share the
-- partitions (fair share = ceil(partitions / live workers)) without
-- configuration.
CREATE TABLE ${schema}.subscriber_workers (
	key        bytea       NOT NULL,
	worker     bytea       NOT NULL,
	expires_at timestamptz NOT NULL,
	PRIMARY KEY (key, worker)
);
