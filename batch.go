package evento

import "fmt"

// AggregateRef names one aggregate.
type AggregateRef struct {
	Type string
	ID   string
}

// Span is one aggregate's share of a write batch: it expects the aggregate's
// current version to be Expected, and appends versions Expected+1..Last.
type Span struct {
	AggregateRef
	Expected uint64
	Last     uint64
}

// ValidateBatch checks a batch before it is written and returns one Span per
// aggregate, in order of first appearance. Backends call it first and then
// check each span's Expected against the stored version.
//
// Rules: the batch is not empty; each event has an aggregate type, an
// aggregate id and a name, all valid UTF-8 of at most MaxIdentLen bytes (a
// routing key too); versions start at 1; an aggregate's events appear in the
// batch with contiguous increasing versions; an aggregate id does not appear
// under two aggregate types in one batch. A violation gives an
// *InvalidEventError.
func ValidateBatch(events []Event) ([]Span, error) {
	if len(events) == 0 {
		return nil, &InvalidEventError{Index: -1, Reason: "empty batch"}
	}
	spans := make([]Span, 0, 1)
	index := make(map[AggregateRef]int, 1)
	typeOf := make(map[string]string, 1)
	for i := range events {
		e := &events[i]
		if e.AggregateType == "" {
			return nil, &InvalidEventError{Index: i, Reason: "missing aggregate type"}
		}
		if e.AggregateID == "" {
			return nil, &InvalidEventError{Index: i, Reason: "missing aggregate id"}
		}
		if e.Name == "" {
			return nil, &InvalidEventError{Index: i, Reason: "missing event name"}
		}
		for _, s := range []struct{ what, v string }{{"aggregate type", e.AggregateType}, {"aggregate id", e.AggregateID}, {"name", e.Name}, {"routing key", e.RoutingKey}} {
			if err := checkIdent(s.what, s.v); err != nil {
				return nil, &InvalidEventError{Index: i, Reason: err.Error()}
			}
		}
		if e.Version == 0 {
			return nil, &InvalidEventError{Index: i, Reason: "version 0: versions start at 1"}
		}
		if t, ok := typeOf[e.AggregateID]; ok && t != e.AggregateType {
			return nil, &InvalidEventError{Index: i, Reason: fmt.Sprintf("aggregate id %q appears under types %q and %q", e.AggregateID, t, e.AggregateType)}
		}
		typeOf[e.AggregateID] = e.AggregateType
		ref := AggregateRef{Type: e.AggregateType, ID: e.AggregateID}
		if j, ok := index[ref]; ok {
			if e.Version != spans[j].Last+1 {
				return nil, &InvalidEventError{Index: i, Reason: fmt.Sprintf("version %d of %s/%q does not follow %d in the batch", e.Version, ref.Type, ref.ID, spans[j].Last)}
			}
			spans[j].Last = e.Version
			continue
		}
		index[ref] = len(spans)
		spans = append(spans, Span{AggregateRef: ref, Expected: e.Version - 1, Last: e.Version})
	}
	return spans, nil
}
