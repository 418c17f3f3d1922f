package subscription

import (
	"context"
	"testing"

	"github.com/evento-go/evento"
	"github.com/evento-go/evento/executor/pebble"
)

func init() {
	childOpeners["pebble"] = func(ctx context.Context, dir string) (evento.Executor, error) {
		return pebble.Open(ctx, dir)
	}
}

func newPebble(t testing.TB) evento.Executor {
	t.Helper()
	s, err := pebble.Open(context.Background(), t.TempDir())
	if err != nil {
		t.Fatalf("open pebble: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func TestPebble(t *testing.T) { runSuite(t, newPebble) }
