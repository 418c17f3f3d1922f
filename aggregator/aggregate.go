package aggregator

import (
	"errors"

	"github.com/evento-go/evento"
)

// Aggregate is the state of one aggregate, rebuilt by applying its events in
// version order. evento-gen generates both methods from a struct marked
// //evento:aggregate and its Apply<Event> methods; they may also be written
// by hand.
type Aggregate interface {
	// AggregateType names the aggregate type, e.g. "bank/Account".
	AggregateType() string
	// ApplyEvent applies one stored event to the state. An event name the
	// aggregate does not know gives an error wrapping ErrUnknownEvent; a
	// payload that does not decode gives one wrapping evento.ErrDecode.
	ApplyEvent(e *evento.Event) error
}

// EventData is implemented by event payload structs: the value recorded,
// msgpack-encoded, in Event.Data.
type EventData interface {
	// EventName is the event's name, e.g. "MoneyDeposited".
	EventName() string
}

// AggregateEvent is implemented by event payloads that belong to one
// aggregate type (generated code implements it); the commit builder checks it
// so an event cannot be recorded under another aggregate type.
type AggregateEvent interface {
	EventData
	// EventAggregateType is the aggregate type the event belongs to.
	EventAggregateType() string
}

// Revisioned is implemented by aggregates that declare a snapshot revision.
// A change to the aggregate's logic must change the revision, so snapshots
// taken by older logic are ignored. evento-gen derives it from the source.
type Revisioned interface {
	SnapshotRevision() string
}

// ErrUnknownEvent means an aggregate or handler met an event name it does
// not know.
var ErrUnknownEvent = errors.New("aggregator: unknown event")
