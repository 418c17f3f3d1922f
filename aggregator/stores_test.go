package aggregator_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/evento-go/evento/aggregator"
	"github.com/evento-go/evento/executor"
	_ "github.com/evento-go/evento/executor/pebble"
	_ "github.com/evento-go/evento/executor/postgres"
	"github.com/evento-go/evento/executor/postgres/postgrestest"
	_ "github.com/evento-go/evento/executor/sqlite"
)

// backend opens a fresh, empty store for a test.
type backend struct {
	name string
	dsn  func(t *testing.T) string
}

func (b backend) open(t *testing.T) aggregator.Store {
	t.Helper()
	exec, err := executor.Open(context.Background(), b.dsn(t))
	if err != nil {
		t.Fatalf("open %s: %v", b.name, err)
	}
	t.Cleanup(func() {
		if err := exec.Close(); err != nil {
			t.Errorf("close %s: %v", b.name, err)
		}
	})
	return exec
}

var (
	pebbleBackend = backend{"pebble", func(t *testing.T) string { return "pebble:" + t.TempDir() }}
	sqliteBackend = backend{"sqlite", func(t *testing.T) string { return "sqlite:" + filepath.Join(t.TempDir(), "ev.db") }}
	// postgrestest.DSN skips the test, saying how to enable it, when no
	// server is reachable (a failure with EVENTO_REQUIRE_POSTGRES=1).
	postgresBackend = backend{"postgres", func(t *testing.T) string { return postgrestest.DSN(t) }}
)

// backends lists every backend the load-path tests run against.
func backends() []backend { return []backend{pebbleBackend, sqliteBackend, postgresBackend} }

// newPebble opens a fresh Pebble store in a temporary directory.
func newPebble(t *testing.T) aggregator.Store { return pebbleBackend.open(t) }

// eachBackend runs fn as a subtest per backend.
func eachBackend(t *testing.T, fn func(t *testing.T, s aggregator.Store)) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) { fn(t, b.open(t)) })
	}
}
