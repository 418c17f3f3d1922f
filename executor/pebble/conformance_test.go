package pebble_test

import (
	"context"
	"path/filepath"
	"testing"

	pdb "github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/evento-go/evento"
	"github.com/evento-go/evento/executor/executortest"
	"github.com/evento-go/evento/executor/pebble"
)

// TestConformance runs the shared executor suite against real directories.
func TestConformance(t *testing.T) {
	executortest.Run(t, executortest.Harness{
		NewStore: func(t *testing.T) executortest.OpenFunc {
			dir := t.TempDir()
			return func(ctx context.Context) (evento.Executor, error) {
				return pebble.Open(ctx, dir)
			}
		},
		// Opened by executor.Open (the read_only case, the stress test).
		DSN: func(t *testing.T) string { return "pebble:" + filepath.Join(t.TempDir(), "data") },
	})
}

// TestConformanceMemFS runs the suite over an in-memory file system that
// outlives each Store, so reopen tests see the same data.
func TestConformanceMemFS(t *testing.T) {
	if testing.Short() {
		t.Skip("the directory form covers the same code")
	}
	executortest.Run(t, executortest.Harness{
		NewStore: func(t *testing.T) executortest.OpenFunc {
			fs := vfs.NewMem()
			return func(ctx context.Context) (evento.Executor, error) {
				return pebble.Open(ctx, "db", pebble.WithPebbleOptions(&pdb.Options{FS: fs}))
			}
		},
	})
}
