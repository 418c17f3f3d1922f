package aggregator_test

import (
	"context"
	"testing"

	"github.com/evento-go/evento/aggregator"
	"github.com/evento-go/evento/executor/pebble"
)

// backend opens a fresh, empty store for a test.
type backend struct {
	name string
	open func(t *testing.T) aggregator.Store
}

// closer is implemented by every store the backends open.
type closer interface{ Close() error }

func cleanupClose(t *testing.T, s closer) {
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
}

func pebbleBackend() backend {
	return backend{name: "pebble", open: func(t *testing.T) aggregator.Store {
		t.Helper()
		s, err := pebble.Open(context.Background(), t.TempDir())
		if err != nil {
			t.Fatalf("open pebble: %v", err)
		}
		cleanupClose(t, s)
		return s
	}}
}

// backends lists every backend the load-path tests run against.
func backends() []backend {
	return []backend{pebbleBackend()}
}

// newPebble opens a fresh Pebble store in a temporary directory.
func newPebble(t *testing.T) aggregator.Store { return pebbleBackend().open(t) }

// eachBackend runs fn as a subtest per backend.
func eachBackend(t *testing.T, fn func(t *testing.T, s aggregator.Store)) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) { fn(t, b.open(t)) })
	}
}
