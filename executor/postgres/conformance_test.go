package postgres_test

import (
	"context"
	"testing"

	"github.com/evento-go/evento"
	"github.com/evento-go/evento/executor/executortest"
	"github.com/evento-go/evento/executor/postgres"
	"github.com/evento-go/evento/executor/postgres/postgrestest"
)

func harness(opts ...postgres.Option) executortest.Harness {
	return executortest.Harness{
		NewStore: func(t *testing.T) executortest.OpenFunc {
			dsn := postgrestest.DSN(t)
			return func(ctx context.Context) (evento.Executor, error) {
				return postgres.Open(ctx, dsn, opts...)
			}
		},
	}
}

func TestConformance(t *testing.T) {
	executortest.Run(t, harness())
}

func TestConformanceAdvisoryLock(t *testing.T) {
	executortest.Run(t, harness(postgres.WithOrdering(postgres.OrderingAdvisoryLock)))
}
