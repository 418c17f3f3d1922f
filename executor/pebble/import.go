package pebble

import (
	"context"

	"github.com/evento-go/evento"
	"github.com/oklog/ulid/v2"
)

var _ evento.Importer = (*Store)(nil)

// Import appends events keeping their IDs and timestamps (see
// evento.Importer). It goes through the committer like Write: versions and
// routing keys are checked in commit order, positions follow the store's
// last, and the batch lands in one synced Pebble batch or not at all.
// Later Writes assign IDs above the largest imported one.
func (s *Store) Import(ctx context.Context, events []evento.Event) error {
	return s.write(ctx, events, true)
}

// keepID records an imported event's ID, so that newID stays above it.
// Only the committer calls it.
func (s *Store) keepID(id ulid.ULID) {
	if id.Compare(s.lastID) > 0 {
		s.lastID = id
	}
}
