package subscription

import (
	"context"
	"testing"

	"github.com/evento-go/evento"
	"github.com/evento-go/evento/executor/postgres"
	"github.com/evento-go/evento/executor/postgres/postgrestest"
)

func init() {
	childOpeners["postgres"] = func(ctx context.Context, dsn string) (evento.Executor, error) {
		return postgres.Open(ctx, dsn)
	}
}

func openPostgres(t testing.TB, dsn string) evento.Executor {
	t.Helper()
	s, err := postgres.Open(context.Background(), dsn)
	if err != nil {
		t.Fatalf("open postgres: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func newPostgres(t testing.TB) evento.Executor { return openPostgres(t, postgrestest.DSN(t)) }

func TestPostgres(t *testing.T) { runSuite(t, newPostgres) }

func TestPostgresProcessTakeover(t *testing.T) {
	dsn := postgrestest.DSN(t)
	runProcessTakeover(t, "postgres", dsn, openPostgres(t, dsn))
}
