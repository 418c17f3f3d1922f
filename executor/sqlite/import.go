package sqlite

import (
	"context"

	"github.com/evento-go/evento"
)

var _ evento.Importer = (*Store)(nil)

// Import appends events keeping their IDs and timestamps (see
// evento.Importer). It is Write's transaction — versions and routing keys
// checked under SQLite's write lock, positions assigned after the store's
// last — with the IDs and timestamps taken from the events.
func (s *Store) Import(ctx context.Context, events []evento.Event) error {
	return s.write(ctx, events, true)
}
