-- A type+name filter intersected with a routing key reads this index's
-- prefix in position order, so its cost stays O(page) however many events of
-- that name carry other routing keys.
CREATE INDEX IF NOT EXISTS events_rk_name_pos ON events (routing_key, aggregate_type, name, position);
