package pebble

import (
	"context"
	"errors"
	"fmt"
	"os"

	pdb "github.com/cockroachdb/pebble/v2"
)

// Checkpoint writes a consistent copy of the open store into the directory
// dir, which must not exist, while writers go on: a Pebble checkpoint
// (hard links to the immutable tables where the file system allows, and a
// copy of the synced write-ahead log). The copy holds every event whose
// Write returned before Checkpoint was called; opened with Open, it is a
// store of its own. Package backup packs it into an archive.
//
// The store must live on the operating system's file system: an in-memory
// store (OpenMemory) gives an error.
func (s *Store) Checkpoint(ctx context.Context, dir string) error {
	if err := s.enter(); err != nil {
		return err
	}
	defer s.leave()
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("pebble executor: checkpoint: %w", err)
	}
	if _, err := os.Lstat(dir); err == nil {
		return fmt.Errorf("pebble executor: checkpoint into %q: %w", dir, os.ErrExist)
	}
	if err := s.db.Checkpoint(dir, pdb.WithFlushedWAL()); err != nil {
		return fmt.Errorf("pebble executor: checkpoint into %q: %w", dir, err)
	}
	if _, err := os.Stat(dir); errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("pebble executor: checkpoint into %q: the store is not on the operating system's file system (in-memory?)", dir)
	}
	return nil
}
