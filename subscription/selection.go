package subscription

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/evento-go/evento"
)

// ErrSelectionChanged means a subscription key's stored selection (what
// its cursor was advanced over) differs from what the worker would read.
// The error is a *SelectionChangedError.
var ErrSelectionChanged = errors.New("subscription: selection changed")

// Selection is what a subscription reads: the aggregate types of its
// filters, its routing selector and its number of partitions. A worker
// records it under the key the first time (evento.SubscriberStore's
// RecordSelection) and refuses to run a different one: the stored cursor
// only says which events of the recorded selection were handled, so
// reading another selection from it would silently pass over the events
// only the new one matches.
type Selection struct {
	// Types are the aggregate types read, sorted and distinct.
	Types []string
	// Routing is the routing selector.
	Routing evento.Routing
	// Partitions is the number of partitions (1 without partitioning).
	Partitions int
}

// selectionVersion is the first element of an encoded selection.
const selectionVersion = 1

// selRecord is a Selection's stored form: a msgpack array of the format
// version, the sorted types, the routing kind (0 any, 1 no key, 2 key), the
// routing key and the partition count. Equal selections encode to equal
// bytes, so the comparison is a byte comparison.
type selRecord struct {
	_msgpack   struct{} `msgpack:",as_array"`
	Version    int
	Types      []string
	Routing    uint8
	RoutingKey string
	Partitions int
}

// selectionOf returns the selection of a plan.
func selectionOf(p *plan) Selection {
	types := make([]string, 0, len(p.query.Filters))
	for _, f := range p.query.Filters {
		types = append(types, f.AggregateType)
	}
	slices.Sort(types)
	return Selection{Types: slices.Compact(types), Routing: p.cfg.Routing, Partitions: p.cfg.Partitions}
}

// encode returns the canonical encoding of s.
func (s Selection) encode() []byte {
	r := selRecord{Version: selectionVersion, Types: slices.Compact(slices.Sorted(slices.Values(s.Types))), Partitions: max(s.Partitions, 1)}
	switch {
	case s.Routing.IsNone():
		r.Routing = 1
	case !s.Routing.IsAny():
		r.Routing = 2
		r.RoutingKey, _ = s.Routing.Key()
	}
	if r.Types == nil {
		r.Types = []string{}
	}
	b, err := evento.Marshal(&r)
	if err != nil {
		panic(fmt.Sprintf("subscription: encode selection: %v", err)) // strings and ints always encode
	}
	return b
}

// decodeSelection decodes a stored selection.
func decodeSelection(b []byte) (Selection, error) {
	var r selRecord
	if err := evento.Unmarshal(b, &r); err != nil {
		return Selection{}, fmt.Errorf("subscription: stored selection: %w", err)
	}
	if r.Version != selectionVersion {
		return Selection{}, fmt.Errorf("subscription: stored selection has format version %d, this code reads %d: %w", r.Version, selectionVersion, evento.ErrSchemaTooNew)
	}
	s := Selection{Types: r.Types, Partitions: r.Partitions}
	switch r.Routing {
	case 0:
	case 1:
		s.Routing = evento.NoRoutingKey()
	case 2:
		s.Routing = evento.RoutingKey(r.RoutingKey)
	default:
		return Selection{}, fmt.Errorf("subscription: stored selection has routing kind %d: %w", r.Routing, evento.ErrDecode)
	}
	return s, nil
}

// Query returns the query a partition of the selection reads: one filter
// per type, intersected with the routing selector. Each partition keeps
// the events of its aggregates (PartitionOf).
func (s Selection) Query() evento.Query {
	q := evento.Query{Routing: s.Routing}
	for _, t := range s.Types {
		q.Filters = append(q.Filters, evento.Filter{AggregateType: t})
	}
	return q
}

// String describes the selection, e.g.
// types ["bank/Account" "bank/Audit"], routing any, 4 partitions.
func (s Selection) String() string {
	q := make([]string, len(s.Types))
	for i, t := range s.Types {
		q[i] = strconv.Quote(t)
	}
	return fmt.Sprintf("types [%s], routing %s, %d partitions", strings.Join(q, " "), s.Routing, s.Partitions)
}

// SelectionChangedError is the error of a worker (Start, CatchUp, or a
// running worker after a claim) whose selection differs from the one
// stored under its key. errors.Is(err, ErrSelectionChanged) holds.
type SelectionChangedError struct {
	Key       string
	Partition uint32
	// Stored is the recorded selection (zero when StoredErr is set).
	Stored Selection
	// StoredErr is set when the recorded selection could not be decoded
	// (written by a newer version, or damaged).
	StoredErr error
	// Wanted is the selection of the worker that was refused.
	Wanted Selection
}

// Changes lists what differs, one phrase per field.
func (e *SelectionChangedError) Changes() []string {
	if e.StoredErr != nil {
		return []string{e.StoredErr.Error()}
	}
	var out []string
	if added, removed := diffTypes(e.Stored.Types, e.Wanted.Types); len(added)+len(removed) > 0 {
		var b strings.Builder
		b.WriteString("types")
		if len(added) > 0 {
			fmt.Fprintf(&b, " added %q", added)
		}
		if len(removed) > 0 {
			fmt.Fprintf(&b, " removed %q", removed)
		}
		out = append(out, b.String())
	}
	if e.Stored.Routing != e.Wanted.Routing {
		out = append(out, fmt.Sprintf("routing %s -> %s", e.Stored.Routing, e.Wanted.Routing))
	}
	if e.Stored.Partitions != e.Wanted.Partitions {
		out = append(out, fmt.Sprintf("partitions %d -> %d", e.Stored.Partitions, e.Wanted.Partitions))
	}
	return out
}

func diffTypes(old, cur []string) (added, removed []string) {
	in := func(l []string, t string) bool { _, ok := slices.BinarySearch(l, t); return ok }
	for _, t := range cur {
		if !in(old, t) {
			added = append(added, t)
		}
	}
	for _, t := range old {
		if !in(cur, t) {
			removed = append(removed, t)
		}
	}
	return added, removed
}

func (e *SelectionChangedError) Error() string {
	return fmt.Sprintf("subscription %q partition %d: %v: %s (stored: %s; this worker: %s); "+
		"its cursor only covers the stored selection, so the worker is refused rather than pass over events: "+
		"to read the new selection, reset the subscriber (evento reset -key %s, or subscription.Reset), "+
		"which clears the stored selection and sets the cursor (empty: from the start), or run the old definition",
		e.Key, e.Partition, ErrSelectionChanged, strings.Join(e.Changes(), "; "), e.storedString(), e.Wanted, e.Key)
}

func (e *SelectionChangedError) storedString() string {
	if e.StoredErr != nil {
		return "unreadable"
	}
	return e.Stored.String()
}

// Is makes errors.Is(err, ErrSelectionChanged) hold.
func (e *SelectionChangedError) Is(target error) bool { return target == ErrSelectionChanged }

// compareSelection returns nil when the stored encoding equals want's,
// else a *SelectionChangedError.
func compareSelection(key string, part uint32, stored []byte, want Selection, wantEnc []byte) error {
	if string(stored) == string(wantEnc) {
		return nil
	}
	e := &SelectionChangedError{Key: key, Partition: part, Wanted: want}
	s, err := decodeSelection(stored)
	if err != nil {
		e.StoredErr = err
	} else {
		e.Stored = s
	}
	return e
}

// recordSelection records the runner's selection on one partition, or
// returns the *SelectionChangedError of a different stored one.
func (r *runner) recordSelection(ctx context.Context, part uint32) error {
	stored, err := r.exec.RecordSelection(ctx, r.p.cfg.Key, part, r.p.selEnc)
	if err != nil {
		return fmt.Errorf("subscription %q partition %d: record selection: %w", r.p.cfg.Key, part, err)
	}
	return compareSelection(r.p.cfg.Key, part, stored, r.p.sel, r.p.selEnc)
}

// checkSelection checks every partition before a worker starts: first
// without writing (so a refused worker records nothing), then records the
// selection where none is stored.
func (r *runner) checkSelection(ctx context.Context) error {
	n := uint32(r.p.cfg.Partitions)
	for part := range n {
		st, err := r.exec.Subscriber(ctx, r.p.cfg.Key, part)
		if errors.Is(err, evento.ErrNotFound) || (err == nil && len(st.Selection) == 0) {
			continue
		}
		if err != nil {
			return fmt.Errorf("subscription %q partition %d: read subscriber: %w", r.p.cfg.Key, part, err)
		}
		if err := compareSelection(r.p.cfg.Key, part, st.Selection, r.p.sel, r.p.selEnc); err != nil {
			return err
		}
	}
	for part := range n {
		if err := r.recordSelection(ctx, part); err != nil {
			return err
		}
	}
	return nil
}

// Reset resets every stored partition of a subscription key (partition 0
// when none is stored) to cursor (empty: the start) with the executor's
// ResetSubscriber: leases are revoked and the stored selection is cleared,
// so the next worker records its own. Stop the workers of the old
// definition first: a running worker re-records its selection when it
// claims again.
func Reset(ctx context.Context, exec evento.Executor, key, cursor string) error {
	subs, err := exec.Subscribers(ctx)
	if err != nil {
		return fmt.Errorf("subscription %q: reset: %w", key, err)
	}
	parts := map[uint32]bool{}
	for _, s := range subs {
		if s.Key == key {
			parts[s.Partition] = true
		}
	}
	if len(parts) == 0 {
		parts[0] = true
	}
	for _, p := range slices.Sorted(maps.Keys(parts)) {
		if err := exec.ResetSubscriber(ctx, key, p, cursor); err != nil {
			return fmt.Errorf("subscription %q: reset partition %d: %w", key, p, err)
		}
	}
	return nil
}
