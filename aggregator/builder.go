package aggregator

import (
	"context"
	"fmt"

	"github.com/evento-go/evento"
	"github.com/oklog/ulid/v2"
)

// Builder gathers the events of one commit to one aggregate: the aggregate's
// type and id, the version the commit expects to be current, the events in
// order, and their metadata and routing key. Make one with Create or
// Append, add events with Event, and write them with Commit (or several
// builders at once with CommitAll).
//
// A Builder records the first error it meets (a payload that does not
// encode, or an event of another aggregate type) and returns it from
// Commit. After a successful commit the builder expects the new version and
// holds no events, so it can be used for a following commit. A Builder is
// not safe for concurrent use.
type Builder struct {
	aggregateType string
	id            string
	expected      uint64
	routingKey    string
	metadata      evento.Metadata
	events        []evento.Event
	committed     []evento.Event
	err           error
}

// Create starts the first commit of a new aggregate of aggregateType, with a
// fresh ULID as its id (see Builder.ID). The commit expects version 0 and
// fails with a version conflict if the id exists.
func Create(aggregateType string) *Builder {
	return &Builder{aggregateType: aggregateType, id: ulid.Make().String()}
}

// Append starts a commit to the aggregate (aggregateType, id) that expects
// its current version to be version, the version its state was loaded at.
// Append with version 0 creates an aggregate under an id the caller chose.
func Append(aggregateType, id string, version uint64) *Builder {
	return &Builder{aggregateType: aggregateType, id: id, expected: version}
}

// ID returns the aggregate id the builder commits to.
func (b *Builder) ID() string { return b.id }

// AggregateType returns the aggregate type the builder commits to.
func (b *Builder) AggregateType() string { return b.aggregateType }

// Version returns the version the next commit expects to be current.
func (b *Builder) Version() uint64 { return b.expected }

// Len returns the number of events waiting to be committed.
func (b *Builder) Len() int { return len(b.events) }

// Err returns the first error the builder met, if any.
func (b *Builder) Err() error { return b.err }

// Metadata sets the metadata of every event of the commit, those already
// added included.
func (b *Builder) Metadata(md evento.Metadata) *Builder {
	b.metadata = md
	for i := range b.events {
		b.events[i].Metadata = md
	}
	return b
}

// RoutingKey sets the routing key of every event of the commit, those
// already added included.
func (b *Builder) RoutingKey(k string) *Builder {
	b.routingKey = k
	for i := range b.events {
		b.events[i].RoutingKey = k
	}
	return b
}

// Event adds one event: data is encoded with evento.Marshal and recorded
// under data.EventName(). If data implements AggregateEvent, its aggregate
// type must be the builder's, else the builder keeps an error wrapping
// evento.ErrInvalidEvent that Commit returns.
func (b *Builder) Event(data EventData) *Builder {
	if b.err != nil {
		return b
	}
	i := len(b.events)
	if data == nil {
		b.err = fmt.Errorf("aggregator: %w", &evento.InvalidEventError{Index: i, Reason: "nil event payload"})
		return b
	}
	name := data.EventName()
	if name == "" {
		b.err = fmt.Errorf("aggregator: %w", &evento.InvalidEventError{Index: i, Reason: fmt.Sprintf("payload %T has an empty event name", data)})
		return b
	}
	if ae, ok := data.(AggregateEvent); ok {
		if t := ae.EventAggregateType(); t != b.aggregateType {
			b.err = fmt.Errorf("aggregator: %w", &evento.InvalidEventError{Index: i,
				Reason: fmt.Sprintf("event %s (%T) belongs to aggregate type %q, not %q", name, data, t, b.aggregateType)})
			return b
		}
	}
	raw, err := evento.Marshal(data)
	if err != nil {
		b.err = fmt.Errorf("aggregator: event %d %s: %w", i, name, err)
		return b
	}
	b.events = append(b.events, evento.Event{
		AggregateType: b.aggregateType,
		AggregateID:   b.id,
		Version:       b.expected + uint64(i) + 1,
		Name:          name,
		RoutingKey:    b.routingKey,
		Data:          raw,
		Metadata:      b.metadata,
	})
	return b
}

// Events adds several events in order; see Event.
func (b *Builder) Events(data ...EventData) *Builder {
	for _, d := range data {
		b.Event(d)
	}
	return b
}

// Pending returns the events waiting to be committed, as they will be
// written. The slice is the builder's; do not modify it.
func (b *Builder) Pending() []evento.Event { return b.events }

// Committed returns the events of the last successful commit, with the ID,
// Timestamp and Position the store assigned. The slice is the builder's; do
// not modify it.
func (b *Builder) Committed() []evento.Event { return b.committed }

// check returns the builder's error, or an error for an empty commit.
func (b *Builder) check() error {
	if b.err != nil {
		return b.err
	}
	if len(b.events) == 0 {
		return fmt.Errorf("aggregator: commit to %s/%q has no events: %w", b.aggregateType, b.id,
			&evento.InvalidEventError{Index: -1, Reason: "empty batch"})
	}
	return nil
}

// done records a successful commit of events.
func (b *Builder) done(events []evento.Event) {
	b.committed = events
	b.expected += uint64(len(events))
	b.events = nil
}

// Commit writes the builder's events atomically and returns the aggregate's
// new version. If the aggregate's version is no longer the one expected,
// nothing is written and the error wraps evento.ErrVersionConflict (an
// *evento.VersionConflictError): reload and decide again (Handle does this).
// A commit without events gives an error wrapping evento.ErrInvalidEvent.
func (b *Builder) Commit(ctx context.Context, store evento.EventStore) (uint64, error) {
	if err := b.check(); err != nil {
		return b.expected, err
	}
	events := append([]evento.Event(nil), b.events...)
	if err := store.Write(ctx, events); err != nil {
		return b.expected, fmt.Errorf("aggregator: commit to %s/%q at version %d: %w", b.aggregateType, b.id, b.expected, err)
	}
	b.done(events)
	return b.expected, nil
}

// CommitAll writes the events of several builders as one atomic batch:
// every builder's events land or none do. A version conflict on any of the
// aggregates fails the whole batch with an error wrapping
// evento.ErrVersionConflict. On success each builder advances as after
// Commit. Builders must name distinct aggregates, and none may be empty.
func CommitAll(ctx context.Context, store evento.EventStore, builders ...*Builder) error {
	if len(builders) == 0 {
		return fmt.Errorf("aggregator: CommitAll without builders: %w", &evento.InvalidEventError{Index: -1, Reason: "empty batch"})
	}
	n := 0
	for _, b := range builders {
		if b == nil {
			return fmt.Errorf("aggregator: CommitAll: nil builder: %w", &evento.InvalidEventError{Index: -1, Reason: "nil builder"})
		}
		if err := b.check(); err != nil {
			return err
		}
		n += len(b.events)
	}
	events := make([]evento.Event, 0, n)
	for _, b := range builders {
		events = append(events, b.events...)
	}
	if err := store.Write(ctx, events); err != nil {
		return fmt.Errorf("aggregator: commit of %d aggregates: %w", len(builders), err)
	}
	off := 0
	for _, b := range builders {
		k := len(b.events)
		b.done(events[off : off+k : off+k])
		off += k
	}
	return nil
}
