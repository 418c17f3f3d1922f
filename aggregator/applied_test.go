package aggregator_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/evento-go/evento"
	"github.com/evento-go/evento/aggregator"
)

// conflictOnApply fails to apply the events of a command after they were
// committed (decide sets deciding), with an error that wraps
// evento.ErrVersionConflict; loads succeed.
type conflictOnApply struct {
	counter
	deciding bool
}

func (c *conflictOnApply) ApplyEvent(e *evento.Event) error {
	if c.deciding {
		return fmt.Errorf("apply: %w", evento.ErrVersionConflict)
	}
	return nil
}

// TestHandleDoesNotRetryAfterCommit: an apply error met after the commit
// comes back to the caller even when it wraps a version conflict, and the
// events are committed once, not once per retry.
func TestHandleDoesNotRetryAfterCommit(t *testing.T) {
	ctx := context.Background()
	store := newPebble(t)
	decide := func(c *conflictOnApply) ([]aggregator.EventData, error) {
		c.deciding = true
		return []aggregator.EventData{Added{N: 1}}, nil
	}
	id := "applied-once"
	_, err := aggregator.Handle(ctx, store, id, func() *conflictOnApply { return &conflictOnApply{} }, decide)
	if !errors.Is(err, evento.ErrVersionConflict) {
		t.Fatalf("Handle: %v, want the apply error (wrapping ErrVersionConflict)", err)
	}
	v, err := store.AggregateVersion(ctx, counterType, id)
	if err != nil || v != 1 {
		t.Fatalf("aggregate version = %d (%v), want 1: the failed apply must not be retried into more commits", v, err)
	}
}
