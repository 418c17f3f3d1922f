package main

import (
	"bytes"
	"context"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/evento-go/evento"
	"github.com/evento-go/evento/executor/pebble"
	"github.com/evento-go/evento/executor/postgres"
	"github.com/evento-go/evento/executor/postgres/postgrestest"
	"github.com/evento-go/evento/executor/sqlite"
)

// The balances read model agrees with the aggregates on every backend, run
// after run over the same store.
func TestBalancesReadModel(t *testing.T) {
	ctx := context.Background()
	backends := map[string]func(t *testing.T) (evento.Executor, error){
		"pebble": func(t *testing.T) (evento.Executor, error) { return pebble.Open(ctx, t.TempDir()) },
		"sqlite": func(t *testing.T) (evento.Executor, error) {
			return sqlite.Open(ctx, filepath.Join(t.TempDir(), "bank.db"))
		},
		"postgres": func(t *testing.T) (evento.Executor, error) {
			postgrestest.Require(t)
			return postgres.Open(ctx, postgrestest.DSN(t))
		},
	}
	for name, open := range backends {
		t.Run(name, func(t *testing.T) {
			exec, err := open(t)
			if err != nil {
				t.Fatal(err)
			}
			defer exec.Close()
			for round := range 2 {
				var out bytes.Buffer
				s, err := run(ctx, exec, &out)
				if err != nil {
					t.Fatal(err)
				}
				got, err := projectBalances(ctx, exec, s, func(format string, args ...any) { fmt.Fprintf(&out, format, args...) })
				if err != nil {
					t.Fatal(err)
				}
				if got[s.Alice.ID] != s.Alice.Balance || got[s.Bob.ID] != s.Bob.Balance {
					t.Errorf("round %d: read model %v; aggregates Alice %d, Bob %d", round, got, s.Alice.Balance, s.Bob.Balance)
				}
			}
		})
	}
}
