package evento

import (
	"context"
	"fmt"
	"time"

	"github.com/oklog/ulid/v2"
)

// Importer is implemented by executors that can write events which already
// have an identity: events read from another store (an export, a migration
// between backends) that must keep their IDs and timestamps. It is an
// optional interface, checked with a type assertion; the Pebble, SQLite and
// PostgreSQL executors implement it.
type Importer interface {
	// Import appends events atomically as Write does — the batch is checked
	// with ValidateBatch, each aggregate's events must continue from its
	// current version (else a *VersionConflictError), routing keys follow
	// the aggregate's first event, and positions are assigned in slice
	// order after every committed event — but it keeps each event's ID and
	// Timestamp instead of assigning them. The batch must also pass
	// ValidateImport (an *InvalidEventError otherwise). Timestamps are
	// stored in UTC, truncated to microseconds as Write's are.
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

// Earliest and latest timestamps an imported event may carry: years 1 to
// 9999, the range RFC 3339 (the export format) and every backend store.
var (
	minImportTime = time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC)
	maxImportTime = time.Date(9999, 12, 31, 23, 59, 59, 999999000, time.UTC)
)

// ValidateImport checks what Import needs beyond ValidateBatch: every event
// has a non-zero ID, unique within the batch, and a Timestamp in years 1 to
// 9999. It sets each Timestamp to UTC truncated to microseconds. A violation
// gives an *InvalidEventError naming the event's index.
func ValidateImport(events []Event) error {
	seen := make(map[ulid.ULID]int, len(events))
	for i := range events {
		e := &events[i]
		if e.ID == (ulid.ULID{}) {
			return &InvalidEventError{Index: i, Reason: "import: zero event ID"}
		}
		if j, ok := seen[e.ID]; ok {
			return &InvalidEventError{Index: i, Reason: fmt.Sprintf("import: event ID %s repeats event %d's", e.ID, j)}
		}
		seen[e.ID] = i
		if e.Timestamp.IsZero() {
			return &InvalidEventError{Index: i, Reason: "import: zero timestamp"}
		}
		ts := e.Timestamp.UTC().Truncate(time.Microsecond)
		if ts.Before(minImportTime) || ts.After(maxImportTime) {
			return &InvalidEventError{Index: i, Reason: fmt.Sprintf("import: timestamp %s outside years 1-9999", ts.Format(time.RFC3339Nano))}
		}
		e.Timestamp = ts
	}
	return nil
}
