-- events_aggregate_routing (aggregate_id, aggregate_type, routing_key, tx,
-- seq) is redundant: an aggregate's events all carry its first event's
-- routing key (the routing-key rule, enforced by every write and import),
-- so a read of one aggregate with a key is events_aggregate's range with
-- a one-time check of the first event's key (see Read). One index entry
-- less per event written.
DROP INDEX IF EXISTS ${schema}.events_aggregate_routing;
