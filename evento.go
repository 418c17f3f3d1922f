// Package evento is the vocabulary of the evento event-sourcing framework:
// events and their metadata, queries and pages, the executor interfaces,
// the typed errors and the msgpack codec. Application code reads and writes
// through these types; it opens an executor with executor.Open and a DSN.
//
// It is a leaf: the backends (executor/pebble, executor/sqlite,
// executor/postgres) import it. Writing a backend of your own? The helpers
// every executor calls — batch validation and the routing-key rule, the
// event cursor and metadata codecs, page building, the ULID source, the
// subscriber store's argument checks — are in package executor/storekit,
// and executor/executortest is the conformance suite that proves a backend.
//
// # Events and aggregates
//
// An [Event] belongs to one aggregate, named by (AggregateType, AggregateID).
// Versions start at 1 and are contiguous per aggregate. [EventStore.Write]
// appends a batch atomically: each aggregate's events in the batch must
// continue from its current version, or the whole batch fails with a
// [*VersionConflictError] (errors.Is(err, ErrVersionConflict)) and nothing is
// written. An aggregate's routing key is fixed by its first event; a
// different key is a [*RoutingKeyError].
//
// # Global order
//
// Every committed event has a [Position] in one total order that agrees with
// commit order: a reader that has passed a cursor never later sees an event
// appear behind it, however many writers commit concurrently. Reads page over
// that order with opaque cursors (see package cursor): build a [Query] with
// [All], [ByType], [ByAggregate] or [ByName], narrow it with
// [Query.WithRouting], page it with [Query.First] or [Query.Last], and
// continue from [Event.Cursor] or the [Page]'s PageInfo.
//
// # Subscriptions and snapshots
//
// [SubscriberStore] keeps the cursors, leases and parked events that package
// subscription's workers use, and [SnapshotStore] the snapshots package
// aggregator loads from; applications use those packages rather than the
// stores directly, and read a subscriber's [SubscriberState] for health
// checks. Log lines of every evento package name what they log with the
// Log* attribute keys.
//
// # Errors
//
// An error evento returns for one of the causes the Err* sentinels name
// wraps that sentinel, so callers test with errors.Is; the typed errors
// ([*VersionConflictError], [*InvalidEventError], [*RoutingKeyError]) carry
// the details.
package evento

import (
	"bytes"
	"fmt"
	"time"

	"github.com/evento-go/evento/cursor"
	"github.com/evento-go/evento/internal/evcursor"
	"github.com/oklog/ulid/v2"
)

// Event is one fact recorded against an aggregate.
//
// The caller fills AggregateType, AggregateID, Version, Name, RoutingKey,
// Data and Metadata; the store assigns ID, Timestamp and Position when it
// commits the event.
type Event struct {
	// ID is the event's ULID, assigned by the store at commit.
	ID ulid.ULID
	// AggregateType names the kind of aggregate, e.g. "bank/Account".
	AggregateType string
	// AggregateID identifies the aggregate within its type.
	AggregateID string
	// Version is the event's 1-based version within its aggregate.
	Version uint64
	// Name is the event's name, e.g. "MoneyDeposited".
	Name string
	// RoutingKey optionally partitions events (a tenant, a region). The
	// empty string means "no key".
	RoutingKey string
	// Data is the msgpack-encoded payload. It may be empty.
	Data []byte
	// Metadata carries correlation, causation, actor and free-form keys.
	Metadata Metadata
	// Timestamp is the UTC commit time, truncated to microseconds. Assigned
	// by the store.
	Timestamp time.Time
	// Position is the event's place in the global order. Assigned by the
	// store.
	Position Position
}

// AggregateRef names one aggregate.
type AggregateRef struct {
	Type string
	ID   string
}

// Decode decodes the event's Data into v with the msgpack codec. A payload
// that does not decode gives an error wrapping ErrDecode that names the event.
func (e *Event) Decode(v any) error {
	if err := Unmarshal(e.Data, v); err != nil {
		return fmt.Errorf("evento: event %s %s/%s v%d %q: %w", e.ID, e.AggregateType, e.AggregateID, e.Version, e.Name, err)
	}
	return nil
}

// Cursor returns the opaque cursor that points at this committed event. A
// read with After set to it continues with the events that follow.
func (e *Event) Cursor() string { return evcursor.Encode(e.ID, e.Position.Tx, e.Position.Seq) }

// Position is an event's place in the global order. Backends that order by a
// single sequence leave Tx zero; PostgreSQL may order by (transaction,
// sequence). Positions compare with Compare.
type Position struct {
	Tx  uint64
	Seq uint64
}

// IsZero reports whether p is the zero position (before every event).
func (p Position) IsZero() bool { return p.Tx == 0 && p.Seq == 0 }

// Compare returns -1, 0 or +1 as p sorts before, equal to or after q.
func (p Position) Compare(q Position) int {
	switch {
	case p.Tx < q.Tx:
		return -1
	case p.Tx > q.Tx:
		return 1
	case p.Seq < q.Seq:
		return -1
	case p.Seq > q.Seq:
		return 1
	}
	return 0
}

// Less reports whether p sorts before q.
func (p Position) Less(q Position) bool { return p.Compare(q) < 0 }

// String formats p as "seq", or "tx.seq" when Tx is set.
func (p Position) String() string {
	if p.Tx == 0 {
		return fmt.Sprintf("%d", p.Seq)
	}
	return fmt.Sprintf("%d.%d", p.Tx, p.Seq)
}

// Metadata describes why and by whom an event was recorded. It is stored
// msgpack-encoded beside the event.
type Metadata struct {
	CorrelationID string            `msgpack:"c,omitempty"`
	CausationID   string            `msgpack:"z,omitempty"`
	Actor         string            `msgpack:"a,omitempty"`
	Extra         map[string]string `msgpack:"x,omitempty"`
}

// IsZero reports whether the metadata is empty.
func (m Metadata) IsZero() bool {
	return m.CorrelationID == "" && m.CausationID == "" && m.Actor == "" && len(m.Extra) == 0
}

// Equal reports whether two metadata values are the same, treating a nil
// and an empty Extra map alike.
func (m Metadata) Equal(o Metadata) bool {
	if m.CorrelationID != o.CorrelationID || m.CausationID != o.CausationID || m.Actor != o.Actor || len(m.Extra) != len(o.Extra) {
		return false
	}
	for k, v := range m.Extra {
		if ov, ok := o.Extra[k]; !ok || ov != v {
			return false
		}
	}
	return true
}

// Equal reports whether two events have the same fields. Nil and empty Data
// are equal, and timestamps compare with time.Time.Equal.
func (e *Event) Equal(o *Event) bool {
	return e.ID == o.ID && e.AggregateType == o.AggregateType && e.AggregateID == o.AggregateID &&
		e.Version == o.Version && e.Name == o.Name && e.RoutingKey == o.RoutingKey &&
		bytes.Equal(e.Data, o.Data) && e.Metadata.Equal(o.Metadata) &&
		e.Timestamp.Equal(o.Timestamp) && e.Position == o.Position
}

// Page is one page of a read: the events in ascending global order and the
// Relay PageInfo. Events[i].Cursor() is the cursor of each edge.
type Page struct {
	Events   []Event
	PageInfo cursor.PageInfo
}

// Connection returns the page in the Relay connection shape, computing each
// edge's cursor.
func (p Page) Connection() cursor.Page[Event] {
	out := cursor.Page[Event]{PageInfo: p.PageInfo, Edges: make([]cursor.Edge[Event], len(p.Events))}
	for i := range p.Events {
		out.Edges[i] = cursor.Edge[Event]{Cursor: p.Events[i].Cursor(), Node: p.Events[i]}
	}
	return out
}
