package postgres

import "context"

// WithBeforeInsert sets a hook returning a select-list expression that each
// write evaluates after taking its ordering lock, before inserting.
func WithBeforeInsert(f func(ctx context.Context) string) Option {
	return func(c *config) { c.beforeInsert = f }
}

// WithExplain sets a hook that receives each page query of Read.
func WithExplain(f func(sql string, args []any)) Option {
	return func(c *config) { c.explain = f }
}

// ListenPID returns the backend pid of the store's LISTEN connection, 0 when
// it is down.
func ListenPID(s *Store) uint32 { return s.notifier.listenPID.Load() }

// PreludeSQL returns the statement a read runs first in its transaction
// (horizon and plan settings).
func PreludeSQL(s *Store) string { return s.q.prelude }

// WritersLockKey returns the shared advisory lock key writers of schema
// take before their transaction id.
func WritersLockKey(schema string) int64 { return lockKey("evento.writers." + schema) }

// InsertSQL returns the statement a write runs.
func InsertSQL(s *Store) string { return s.q.insert }

// InsertOneSQL returns the statement a write of a single event runs.
func InsertOneSQL(s *Store) string { return s.q.insertOne }

// AggVersionSQL returns the statement AggregateVersion runs.
func AggVersionSQL(s *Store) string { return s.q.aggVersion }

// ReadAggSQL returns the statement ReadAggregate runs after the prelude.
func ReadAggSQL(s *Store) string { return s.q.readAgg }
