package subscription

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/evento-go/evento"
	"github.com/evento-go/evento/executor/sqlite"
)

func init() {
	childOpeners["sqlite"] = func(ctx context.Context, dsn string) (evento.Executor, error) {
		return sqlite.Open(ctx, dsn)
	}
}

func sqlitePath(t testing.TB) string { return filepath.Join(t.TempDir(), "evento.db") }

func openSQLite(t testing.TB, path string) evento.Executor {
	t.Helper()
	s, err := sqlite.Open(context.Background(), path)
	if err != nil {
		t.Fatalf("open sqlite: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func newSQLite(t testing.TB) evento.Executor { return openSQLite(t, sqlitePath(t)) }

func TestSQLite(t *testing.T) { runSuite(t, newSQLite) }

func TestSQLiteProcessTakeover(t *testing.T) {
	path := sqlitePath(t)
	runProcessTakeover(t, "sqlite", path, openSQLite(t, path))
}
