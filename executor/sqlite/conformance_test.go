package sqlite_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/evento-go/evento"
	"github.com/evento-go/evento/executor/executortest"
	"github.com/evento-go/evento/executor/sqlite"
)

// TestConformance runs the executor conformance suite with one SQLite file
// per test.
func TestConformance(t *testing.T) {
	executortest.Run(t, executortest.Harness{
		NewStore: func(t *testing.T) executortest.OpenFunc {
			path := filepath.Join(t.TempDir(), "evento.db")
			return func(ctx context.Context) (evento.Executor, error) {
				return sqlite.Open(ctx, path)
			}
		},
		// The stress test's executors and child processes open the same
		// file by DSN (the package registers the sqlite scheme).
		DSN: func(t *testing.T) string {
			return "sqlite:" + filepath.Join(t.TempDir(), "evento.db") + "?busy_timeout=60000&synchronous=normal"
		},
	})
}
