-- Worker presence: each running worker of a partitioned subscription
-- announces itself under its key with an expiry (the lease clock), renewed
-- at every claim round, so workers see each other and share the partitions
-- (fair share = ceil(partitions / live workers)) without configuration.
CREATE TABLE IF NOT EXISTS subscriber_workers (
    key        BLOB    NOT NULL,
    worker     BLOB    NOT NULL,
    expires_at INTEGER NOT NULL, -- Unix microseconds
    PRIMARY KEY (key, worker)
) WITHOUT ROWID;
