package aggregator

import (
	"context"
	"errors"
	"reflect"

	"github.com/evento-go/evento"
)

// Observer is implemented by stores that observe aggregate loads and
// commands: tracing and metrics (otelevento.Wrap returns such a store). It
// is an optional interface, checked with a type assertion on the Store that
// Load, LoadWithInfo, LoadAt, LoadAtTime and Handle are given; a store
// without it costs nothing.
type Observer interface {
	// ObserveLoad is called when a load of (aggregateType, id) starts. The
	// returned context is used for the load's store calls, and end is
	// called once when it finishes, with what the load did and its error.
	ObserveLoad(ctx context.Context, aggregateType, id string) (context.Context, func(LoadInfo, error))
	// ObserveHandle is called when Handle starts a command on the
	// aggregate id. The returned context is used for the whole command
	// (its loads and commits), and end is called once when Handle
	// returns, with what it did and its error.
	ObserveHandle(ctx context.Context, id string) (context.Context, func(HandleInfo, error))
}

// HandleInfo is what a Handle call did, for an Observer.
type HandleInfo struct {
	// AggregateType is the aggregate's type ("" if no attempt ran).
	AggregateType string
	// ID is the aggregate's id.
	ID string
	// Attempts is the number of load-decide-commit rounds run.
	Attempts int
	// Conflicts is the number of those rounds that met a version
	// conflict.
	Conflicts int
	// Events is the number of events committed.
	Events int
	// Version is the aggregate's version after the command.
	Version uint64
	// Load is how the last attempt loaded the state.
	Load LoadInfo
}

// load is loadState, observed when the store is an Observer.
func (o *options) load(ctx context.Context, store Store, id string, agg Aggregate, target uint64, save bool) (LoadInfo, error) {
	ob, ok := store.(Observer)
	if !ok {
		return o.loadState(ctx, store, id, agg, target, save)
	}
	ctx, end := ob.ObserveLoad(ctx, agg.AggregateType(), id)
	info, err := o.loadState(ctx, store, id, agg, target, save)
	end(info, err)
	return info, err
}

// observeHandle starts observing a Handle call when the store is an
// Observer; the returned end reports its result.
func observeHandle[A Aggregate](ctx context.Context, store Store, id string) (context.Context, func(*Result[A], error)) {
	ob, ok := store.(Observer)
	if !ok {
		return ctx, nil
	}
	ctx, end := ob.ObserveHandle(ctx, id)
	return ctx, func(res *Result[A], err error) {
		hi := HandleInfo{ID: res.ID, Attempts: res.Attempts, Events: len(res.Events), Version: res.Version, Load: res.Load}
		if res.Attempts > 0 {
			hi.AggregateType = typeOf(res.State)
			hi.Conflicts = res.Attempts - 1
			if errors.Is(err, evento.ErrVersionConflict) {
				hi.Conflicts++
			}
		}
		end(hi, err)
	}
}

// typeOf returns agg's aggregate type, or "" for a nil value (a load that
// failed before the state was set).
func typeOf(agg Aggregate) string {
	if agg == nil {
		return ""
	}
	if v := reflect.ValueOf(agg); v.Kind() == reflect.Pointer && v.IsNil() {
		return ""
	}
	return agg.AggregateType()
}
