package storekit

import (
	"fmt"
	"time"
	"unicode/utf8"

	"github.com/evento-go/evento"
	"github.com/oklog/ulid/v2"
)

// Span is one aggregate's share of a write batch: it expects the aggregate's
// current version to be Expected, and appends versions Expected+1..Last.
type Span struct {
	evento.AggregateRef
	Expected uint64
	Last     uint64
	// RoutingKey is the routing key the span's events carry after
	// ValidateBatch. For a new aggregate (Expected 0) it is the first
	// event's key, final. For an existing aggregate it is the key the batch
	// gave ("" when it gave none), which the backend checks against the
	// stored key with Routing in the same atomic write that checks
	// versions.
	RoutingKey string
	// RoutingGiven reports whether the batch gave a routing key for an
	// existing aggregate (Expected > 0); when false its events inherit the
	// stored key.
	RoutingGiven bool
}

// Routing applies the routing-key rule to a span of an existing aggregate
// whose first event (stored) has routing key stored: it returns the key the
// span's events must be written with, or an *evento.RoutingKeyError when the
// batch gave a different key. For a new aggregate (Expected 0) it returns
// the span's own key. Backends call it inside their write, after reading the
// stored key, and write every event of the span with the returned key (see
// SetRouting).
func (sp *Span) Routing(stored string) (string, error) {
	if sp.Expected == 0 || !sp.RoutingGiven || sp.RoutingKey == stored {
		if sp.Expected == 0 {
			return sp.RoutingKey, nil
		}
		return stored, nil
	}
	return "", &evento.RoutingKeyError{AggregateType: sp.Type, AggregateID: sp.ID, Version: sp.Expected + 1, Given: sp.RoutingKey, Fixed: stored}
}

// SetRouting sets the routing key of every event of the span's aggregate in
// events to key.
func SetRouting(events []evento.Event, sp *Span, key string) {
	for i := range events {
		if e := &events[i]; e.AggregateID == sp.ID && e.AggregateType == sp.Type {
			e.RoutingKey = key
		}
	}
}

// ValidateBatch checks a batch before it is written and returns one Span per
// aggregate, in order of first appearance. Backends call it first and then
// check each span's Expected against the stored version.
//
// Rules: the batch is not empty; each event has an aggregate type, an
// aggregate id and a name, all valid UTF-8 of at most evento.MaxIdentLen
// bytes (a routing key too); versions start at 1; an aggregate's events
// appear in the batch with contiguous increasing versions; an aggregate id
// does not appear under two aggregate types in one batch. A violation gives
// an *evento.InvalidEventError.
//
// Routing keys: an aggregate's routing key is fixed by its first event. In a
// span that creates the aggregate, events with no key take the first
// event's key, and a different key gives an *evento.RoutingKeyError. In a
// span of an existing aggregate, the events that give a key must all give
// the same one (else an *evento.RoutingKeyError), and ValidateBatch sets it
// on the events that give none; the backend then checks it against the
// stored key with Span.Routing. ValidateBatch sets RoutingKey on the events
// of events.
func ValidateBatch(events []evento.Event) ([]Span, error) {
	if len(events) == 0 {
		return nil, &evento.InvalidEventError{Index: -1, Reason: "empty batch"}
	}
	spans := make([]Span, 0, 1)
	index := make(map[evento.AggregateRef]int, 1)
	typeOf := make(map[string]string, 1)
	for i := range events {
		e := &events[i]
		if e.AggregateType == "" {
			return nil, &evento.InvalidEventError{Index: i, Reason: "missing aggregate type"}
		}
		if e.AggregateID == "" {
			return nil, &evento.InvalidEventError{Index: i, Reason: "missing aggregate id"}
		}
		if e.Name == "" {
			return nil, &evento.InvalidEventError{Index: i, Reason: "missing event name"}
		}
		for _, s := range []struct{ what, v string }{{"aggregate type", e.AggregateType}, {"aggregate id", e.AggregateID}, {"name", e.Name}, {"routing key", e.RoutingKey}} {
			if err := checkIdent(s.what, s.v); err != nil {
				return nil, &evento.InvalidEventError{Index: i, Reason: err.Error()}
			}
		}
		if e.Version == 0 {
			return nil, &evento.InvalidEventError{Index: i, Reason: "version 0: versions start at 1"}
		}
		if t, ok := typeOf[e.AggregateID]; ok && t != e.AggregateType {
			return nil, &evento.InvalidEventError{Index: i, Reason: fmt.Sprintf("aggregate id %q appears under types %q and %q", e.AggregateID, t, e.AggregateType)}
		}
		typeOf[e.AggregateID] = e.AggregateType
		ref := evento.AggregateRef{Type: e.AggregateType, ID: e.AggregateID}
		if j, ok := index[ref]; ok {
			sp := &spans[j]
			if e.Version != sp.Last+1 {
				return nil, &evento.InvalidEventError{Index: i, Reason: fmt.Sprintf("version %d of %s/%q does not follow %d in the batch", e.Version, ref.Type, ref.ID, sp.Last)}
			}
			sp.Last = e.Version
			if e.RoutingKey != "" && sp.Expected > 0 && !sp.RoutingGiven {
				sp.RoutingKey, sp.RoutingGiven = e.RoutingKey, true
			} else if e.RoutingKey != "" && e.RoutingKey != sp.RoutingKey {
				return nil, &evento.RoutingKeyError{AggregateType: ref.Type, AggregateID: ref.ID, Version: e.Version, Given: e.RoutingKey, Fixed: sp.RoutingKey}
			}
			continue
		}
		index[ref] = len(spans)
		spans = append(spans, Span{AggregateRef: ref, Expected: e.Version - 1, Last: e.Version,
			RoutingKey: e.RoutingKey, RoutingGiven: e.Version > 1 && e.RoutingKey != ""})
	}
	// Events that gave no key take their span's.
	for i := range events {
		e := &events[i]
		if e.RoutingKey == "" {
			if sp := &spans[index[evento.AggregateRef{Type: e.AggregateType, ID: e.AggregateID}]]; sp.RoutingKey != "" {
				e.RoutingKey = sp.RoutingKey
			}
		}
	}
	return spans, nil
}

// checkIdent is the identifier rule evento.Query.Validate applies too: at
// most evento.MaxIdentLen bytes of valid UTF-8.
func checkIdent(what, s string) error {
	if len(s) > evento.MaxIdentLen {
		return fmt.Errorf("%s is %d bytes, over the %d-byte limit", what, len(s), evento.MaxIdentLen)
	}
	if !utf8.ValidString(s) {
		return fmt.Errorf("%s %q is not valid UTF-8", what, s)
	}
	return nil
}

// Earliest and latest timestamps an imported event may carry: years 1 to
// 9999, the range RFC 3339 (the export format) and every backend store.
var (
	minImportTime = time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC)
	maxImportTime = time.Date(9999, 12, 31, 23, 59, 59, 999999000, time.UTC)
)

// ValidateImport checks what evento.Importer's Import needs beyond
// ValidateBatch: every event has a non-zero ID, unique within the batch, and
// a Timestamp in years 1 to 9999. It sets each Timestamp to UTC truncated to
// microseconds. A violation gives an *evento.InvalidEventError naming the
// event's index.
func ValidateImport(events []evento.Event) error {
	seen := make(map[ulid.ULID]int, len(events))
	for i := range events {
		e := &events[i]
		if e.ID == (ulid.ULID{}) {
			return &evento.InvalidEventError{Index: i, Reason: "import: zero event ID"}
		}
		if j, ok := seen[e.ID]; ok {
			return &evento.InvalidEventError{Index: i, Reason: fmt.Sprintf("import: event ID %s repeats event %d's", e.ID, j)}
		}
		seen[e.ID] = i
		if e.Timestamp.IsZero() {
			return &evento.InvalidEventError{Index: i, Reason: "import: zero timestamp"}
		}
		ts := e.Timestamp.UTC().Truncate(time.Microsecond)
		if ts.Before(minImportTime) || ts.After(maxImportTime) {
			return &evento.InvalidEventError{Index: i, Reason: fmt.Sprintf("import: timestamp %s outside years 1-9999", ts.Format(time.RFC3339Nano))}
		}
		e.Timestamp = ts
	}
	return nil
}
