package postgres

import "context"

// WithBeforeInsert sets a hook run inside each write transaction after its
// transaction id (or append lock) is taken, before the INSERT.
func WithBeforeInsert(f func(ctx context.Context, pid uint32)) Option {
	return func(c *config) { c.beforeInsert = f }
}

// WithExplain sets a hook that receives each page query of Read.
func WithExplain(f func(sql string, args []any)) Option {
	return func(c *config) { c.explain = f }
}

// ListenPID returns the backend pid of the store's LISTEN connection, 0 when
// it is down.
func ListenPID(s *Store) uint32 { return s.notifier.listenPID.Load() }

// HorizonSQL returns the statement that sets the read horizon, "" for the
// lock ordering.
func HorizonSQL(s *Store) string { return s.q.setHorizon }

// WritersLockKey returns the shared advisory lock key writers of schema
// take before their transaction id.
func WritersLockKey(schema string) int64 { return lockKey("evento.writers." + schema) }
