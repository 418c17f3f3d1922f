package sqlite

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
)

// CheckpointFile is the name of the database file Checkpoint writes.
const CheckpointFile = "evento.db"

// Checkpoint writes a consistent copy of the open store into a new
// directory dir (which must not exist), as the file CheckpointFile, while
// writers go on: SQLite's VACUUM INTO, run in one read transaction (in WAL
// mode it does not block writers). The copy holds every event whose Write
// returned before Checkpoint was called; opened with Open, it is a store of
// its own. Package backup packs it into an archive.
func (s *Store) Checkpoint(ctx context.Context, dir string) error {
	if err := s.check(ctx); err != nil {
		return err
	}
	if err := os.Mkdir(dir, 0o755); err != nil {
		return fmt.Errorf("sqlite executor: checkpoint: %w", err)
	}
	if _, err := s.db.ExecContext(ctx, "VACUUM INTO ?", filepath.Join(dir, CheckpointFile)); err != nil {
		return s.wrap("checkpoint: VACUUM INTO", err)
	}
	return nil
}
