package subscription

import (
	"context"

	"github.com/evento-go/evento"
)

// HandlerFunc handles one event. Returning an error makes the worker retry
// the event with backoff; a panic is recovered and treated as an error.
// The context carries the executor and the values supplied when the
// subscription was built.
type HandlerFunc func(ctx context.Context, e *evento.Event) error

// HandlerSet maps the event names of one aggregate type to their handlers.
// evento-gen builds these from typed handler interfaces, so the compiler
// reports a missing handler.
type HandlerSet struct {
	AggregateType string
	Handlers      map[string]HandlerFunc
}
