// Package executortest is the conformance suite every evento backend runs.
//
// A backend's test calls Run with a Harness that opens fresh stores:
//
//	func TestConformance(t *testing.T) {
//		executortest.Run(t, executortest.Harness{
//			NewStore: func(t *testing.T) executortest.OpenFunc {
//				dir := t.TempDir()
//				return func(ctx context.Context) (evento.Executor, error) {
//					return pebble.Open(ctx, dir)
//				}
//			},
//		})
//	}
//
// The suite is split by area (RunEvents, RunSubscribers, RunSnapshots,
// RunNotify) so a backend can run one area while it is being built, but a
// backend is only conformant when Run passes whole. Backend differences are
// read from evento.Capabilities, never discovered by skipping.
package executortest

import (
	"context"
	"testing"

	"github.com/evento-go/evento"
)

// OpenFunc opens an executor over one storage location. Calling it again
// after the executor was closed reopens the same data.
type OpenFunc func(ctx context.Context) (evento.Executor, error)

// Harness tells the suite how to make stores for a backend.
type Harness struct {
	// NewStore returns an OpenFunc over a fresh, empty storage location
	// (a directory, a file, a PostgreSQL schema) owned by t. It registers
	// the location's cleanup with t.Cleanup. The suite closes every
	// executor it opens.
	NewStore func(t *testing.T) OpenFunc
}
