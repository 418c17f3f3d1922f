//go:build evento_conformance

package pebble_test

import (
	"context"
	"testing"

	"github.com/evento-go/evento"
	"github.com/evento-go/evento/executor/executortest"
	"github.com/evento-go/evento/executor/pebble"
)

func TestConformance(t *testing.T) {
	executortest.Run(t, executortest.Harness{
		NewStore: func(t *testing.T) executortest.OpenFunc {
			dir := t.TempDir()
			return func(ctx context.Context) (evento.Executor, error) {
				return pebble.Open(ctx, dir)
			}
		},
	})
}
