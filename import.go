package evento

import "context"

// Importer is implemented by executors that can write events which already
// have an identity: events read from another store (an export, a migration
// between backends) that must keep their IDs and timestamps. It is an
// optional interface, checked with a type assertion; the Pebble, SQLite and
// PostgreSQL executors implement it.
type Importer interface {
	// Import appends events atomically as Write does — the batch is checked
	// as Write checks it, each aggregate's events must continue from its
	// current version (else a *VersionConflictError), routing keys follow
	// the aggregate's first event, and positions are assigned in slice
	// order after every committed event — but it keeps each event's ID and
	// Timestamp instead of assigning them. Every event must also have a
	// non-zero ID, unique within the batch, and a Timestamp in years 1 to
	// 9999 (an *InvalidEventError otherwise). Timestamps are stored in UTC,
	// truncated to microseconds as Write's are.
	//
	// The store does not index IDs, so it does not check an imported ID
	// against the IDs already stored: importing the same events twice is
	// refused by the version check, not by the IDs. IDs that Write assigns
	// later stay above every imported ID on the backends that keep IDs
	// increasing (Pebble, SQLite).
	//
	// On success Import sets Position on each element of events (and
	// RoutingKey where an event inherits its aggregate's); on failure
	// nothing is written.
	Import(ctx context.Context, events []Event) error
}
