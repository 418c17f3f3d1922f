package evento

import (
	"errors"
	"fmt"
	"unicode/utf8"

	"github.com/evento-go/evento/cursor"
)

// Query selects events from the global log and pages over them.
//
// Filters are OR'ed: an event matches if it matches any filter; no filters
// match every event. The result is then intersected with Routing. Every
// query shape reads O(page) index entries in every backend, except a filter
// with both AggregateID and Name, which reads that aggregate's events.
//
// # Page info
//
// For a forward read (First/After), HasNextPage is exact, and
// HasPreviousPage is true iff After is set and a matching event exists at or
// before the After position. A backward read (Last/Before) mirrors this:
// HasPreviousPage is exact, and HasNextPage is true iff Before is set and a
// matching event exists at or after the Before position.
type Query struct {
	Filters []Filter
	Routing Routing
	Args    cursor.Args
}

// Filter matches the events of an aggregate type, optionally narrowed to one
// aggregate id and/or one event name.
type Filter struct {
	AggregateType string
	AggregateID   string
	Name          string
}

// All returns a query over every event.
func All() Query { return Query{} }

// ByType returns a query over every event of an aggregate type.
func ByType(aggregateType string) Query {
	return Query{Filters: []Filter{{AggregateType: aggregateType}}}
}

// ByAggregate returns a query over the events of one aggregate.
func ByAggregate(aggregateType, id string) Query {
	return Query{Filters: []Filter{{AggregateType: aggregateType, AggregateID: id}}}
}

// ByName returns a query over the events of one name within an aggregate type.
func ByName(aggregateType, name string) Query {
	return Query{Filters: []Filter{{AggregateType: aggregateType, Name: name}}}
}

// Or returns q with further filters OR'ed in.
func (q Query) Or(f ...Filter) Query {
	q.Filters = append(append([]Filter(nil), q.Filters...), f...)
	return q
}

// WithRouting returns q intersected with a routing-key selector.
func (q Query) WithRouting(r Routing) Query { q.Routing = r; return q }

// Page returns q with the given pagination arguments.
func (q Query) Page(a cursor.Args) Query { q.Args = a; return q }

// First returns q reading the first n matching events after the cursor
// after ("" for the start).
func (q Query) First(n int, after string) Query { q.Args = cursor.Forward(n, after); return q }

// Last returns q reading the last n matching events before the cursor before
// ("" for the end).
func (q Query) Last(n int, before string) Query { q.Args = cursor.Backward(n, before); return q }

// Matches reports whether e matches the query's filters and routing
// selector. Backends may use it to filter rows; it ignores Args.
func (q *Query) Matches(e *Event) bool {
	if !q.Routing.Matches(e.RoutingKey) {
		return false
	}
	if len(q.Filters) == 0 {
		return true
	}
	for i := range q.Filters {
		if q.Filters[i].Matches(e) {
			return true
		}
	}
	return false
}

// Matches reports whether e matches the filter.
func (f *Filter) Matches(e *Event) bool {
	return e.AggregateType == f.AggregateType &&
		(f.AggregateID == "" || e.AggregateID == f.AggregateID) &&
		(f.Name == "" || e.Name == f.Name)
}

// Validate checks the query: each filter names an aggregate type, strings
// are valid identifiers, and the pagination arguments are valid for the page
// size limit max (<= 0 means cursor.MaxPageSize); it does not decode the
// cursors, which the executor does when it reads. All problems are joined.
func (q *Query) Validate(max int) error {
	var errs []error
	for i, f := range q.Filters {
		if f.AggregateType == "" {
			errs = append(errs, fmt.Errorf("evento: query filter %d has no aggregate type: %w", i, ErrInvalidQuery))
		}
		for _, s := range []struct{ what, v string }{{"aggregate type", f.AggregateType}, {"aggregate id", f.AggregateID}, {"name", f.Name}} {
			if s.v != "" {
				if err := checkIdent(s.what, s.v); err != nil {
					errs = append(errs, fmt.Errorf("evento: query filter %d: %w: %w", i, err, ErrInvalidQuery))
				}
			}
		}
	}
	if k, ok := q.Routing.Key(); ok {
		if err := checkIdent("routing key", k); err != nil {
			errs = append(errs, fmt.Errorf("evento: query routing: %w: %w", err, ErrInvalidQuery))
		}
	}
	if err := q.Args.Validate(max); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// Routing selects events by routing key: every event (the zero value), the
// events with no routing key, or the events with one key.
type Routing struct {
	kind routingKind
	key  string
}

type routingKind uint8

const (
	routingAny routingKind = iota
	routingNone
	routingKey
)

// AnyRouting selects every event whatever its routing key. It is the zero
// value of Routing.
func AnyRouting() Routing { return Routing{} }

// NoRoutingKey selects the events that have no routing key.
func NoRoutingKey() Routing { return Routing{kind: routingNone} }

// RoutingKey selects the events whose routing key is k. RoutingKey("") is
// the same as NoRoutingKey().
func RoutingKey(k string) Routing {
	if k == "" {
		return NoRoutingKey()
	}
	return Routing{kind: routingKey, key: k}
}

// IsAny reports whether r selects every event.
func (r Routing) IsAny() bool { return r.kind == routingAny }

// IsNone reports whether r selects the events with no routing key.
func (r Routing) IsNone() bool { return r.kind == routingNone }

// Key returns the selected key and true when r selects one key.
func (r Routing) Key() (string, bool) { return r.key, r.kind == routingKey }

// Value returns the routing key value r requires ("" for no key) and true,
// or false when r selects every event.
func (r Routing) Value() (string, bool) { return r.key, r.kind != routingAny }

// Matches reports whether an event with routing key k is selected.
func (r Routing) Matches(k string) bool {
	switch r.kind {
	case routingNone:
		return k == ""
	case routingKey:
		return k == r.key
	}
	return true
}

// String names the selector: "any", "no-key" or key="…".
func (r Routing) String() string {
	switch r.kind {
	case routingNone:
		return "no-key"
	case routingKey:
		return fmt.Sprintf("key=%q", r.key)
	}
	return "any"
}

// MaxIdentLen is the longest aggregate type, aggregate id, event name or
// routing key accepted, in bytes.
const MaxIdentLen = 1024

func checkIdent(what, s string) error {
	if len(s) > MaxIdentLen {
		return fmt.Errorf("%s is %d bytes, over the %d-byte limit", what, len(s), MaxIdentLen)
	}
	if !utf8.ValidString(s) {
		return fmt.Errorf("%s %q is not valid UTF-8", what, s)
	}
	return nil
}
