package aggregator

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/evento-go/evento"
	"github.com/evento-go/evento/executor/storekit"
	"github.com/evento-go/evento/snapshot"
)

// Store is what loads need: the event store and the snapshot store.
// evento.Executor implements it.
type Store interface {
	evento.EventStore
	evento.SnapshotStore
}

// Load rebuilds the current state of the aggregate id into agg, a fresh
// aggregate value (usually a pointer to the zero struct), and returns the
// version it reached: the version a following commit must expect.
//
// An aggregate with no events gives version 0 and an error wrapping
// evento.ErrNotFound (Handle treats that as "does not exist yet"). On any
// error the state of agg is unspecified.
//
// # Snapshots
//
// When agg declares a revision (Revisioned, or WithRevision) and is a
// pointer, Load starts from the newest snapshot of that revision and
// replays only the later events. The snapshot replaces the whole value agg
// points to (see snapshot.Decode): state must live in the fields msgpack
// encodes, and unexported fields start from zero. A snapshot that does not decode, whose
// version is past the stored events, or whose cursor names another event
// than the one stored at its version, is ignored with a warning on the
// logger and the aggregate is replayed in full. LoadWithInfo reports
// whether a snapshot was used and how many events were replayed.
//
// Load only reads: it never saves a snapshot unless WithSnapshotOnLoad is
// given. Snapshots are saved by commands (Handle, when the policy's Every
// is reached), on demand (SaveSnapshot) and by rebuilds
// (RebuildSnapshots); see the package doc. With WithSnapshotOnLoad, Load
// saves a snapshot of the state it reached when the policy says so
// (snapshot.Policy.Due: at least Every events replayed), inline on the
// caller's goroutine, at most once per Every replayed events, and prunes
// to the policy's Keep; a failed save is logged and does not fail the
// load.
//
// Load reads events in chunks of WithChunk (DefaultChunk) events, so memory
// stays bounded for long histories. Events committed while Load runs may or
// may not be included; the returned version always matches the state.
func Load(ctx context.Context, store Store, id string, agg Aggregate, opts ...Option) (uint64, error) {
	o := buildOptions(opts)
	info, err := o.load(ctx, store, id, agg, 0, o.snapshotOnLoad)
	return info.Version, err
}

// LoadInfo says how a load rebuilt an aggregate's state.
type LoadInfo struct {
	// Version is the version reached (what Load returns).
	Version uint64
	// FromSnapshot reports whether the load started from a snapshot.
	FromSnapshot bool
	// SnapshotVersion is the version of that snapshot; 0 when the load
	// replayed from the first event.
	SnapshotVersion uint64
	// Replayed is the number of events applied with ApplyEvent: Version -
	// SnapshotVersion after a successful load.
	Replayed int
	// SnapshotSaved reports whether the load saved a snapshot at Version
	// (only with WithSnapshotOnLoad).
	SnapshotSaved bool
}

// LoadWithInfo is Load, reporting how the state was rebuilt: whether from a
// snapshot (an unusable snapshot counts as none), at which version, and how
// many events were replayed after it. The Version in the info is the
// version Load would return, also on error.
func LoadWithInfo(ctx context.Context, store Store, id string, agg Aggregate, opts ...Option) (LoadInfo, error) {
	o := buildOptions(opts)
	return o.load(ctx, store, id, agg, 0, o.snapshotOnLoad)
}

// LoadAt rebuilds the state of the aggregate id as it was at version
// (>= 1), using only snapshots at or before that version. A version past
// the aggregate's current version, or 0, gives an error wrapping
// evento.ErrNotFound. LoadAt never saves snapshots.
func LoadAt(ctx context.Context, store Store, id string, agg Aggregate, version uint64, opts ...Option) (uint64, error) {
	if version == 0 {
		return 0, fmt.Errorf("aggregator: %s/%q has no version 0: %w", agg.AggregateType(), id, evento.ErrNotFound)
	}
	o := buildOptions(opts)
	info, err := o.load(ctx, store, id, agg, version, false)
	return info.Version, err
}

// LoadAtTime rebuilds the state of the aggregate id as it was at time t:
// after the last event whose Timestamp is not after t. It returns that
// event's version. If the aggregate has no event at or before t, the error
// wraps evento.ErrNotFound.
//
// It finds the version by binary search over the event timestamps (about
// log2(version) single-event reads, which assumes timestamps do not
// decrease with versions, as stores assign them at commit) and then loads
// as LoadAt does.
func LoadAtTime(ctx context.Context, store Store, id string, agg Aggregate, t time.Time, opts ...Option) (uint64, error) {
	typ := agg.AggregateType()
	head, err := store.AggregateVersion(ctx, typ, id)
	if err != nil {
		return 0, fmt.Errorf("aggregator: version of %s/%q: %w", typ, id, err)
	}
	if head == 0 {
		return 0, fmt.Errorf("aggregator: %s/%q has no events: %w", typ, id, evento.ErrNotFound)
	}
	after := func(v uint64) (bool, error) { // ts(v) > t
		e, err := readOne(ctx, store, typ, id, v)
		if err != nil {
			return false, err
		}
		return e.Timestamp.After(t), nil
	}
	// Find the first version in [1, head] stamped after t; the answer is
	// the one before it. The head is checked first: "as of now" is common.
	var target uint64
	if later, err := after(head); err != nil {
		return 0, err
	} else if !later {
		target = head
	} else {
		lo, hi := uint64(1), head // the answer+1 is in [lo, hi]
		for lo < hi {
			mid := lo + (hi-lo)/2
			later, err := after(mid)
			if err != nil {
				return 0, err
			}
			if later {
				hi = mid
			} else {
				lo = mid + 1
			}
		}
		target = lo - 1
	}
	if target == 0 {
		return 0, fmt.Errorf("aggregator: %s/%q has no event at or before %s: %w", typ, id, t.Format(time.RFC3339Nano), evento.ErrNotFound)
	}
	o := buildOptions(opts)
	info, err := o.load(ctx, store, id, agg, target, false)
	return info.Version, err
}

// readOne reads the event at version v.
func readOne(ctx context.Context, store evento.EventStore, typ, id string, v uint64) (evento.Event, error) {
	evs, err := store.ReadAggregate(ctx, typ, id, v-1, 1)
	if err != nil {
		return evento.Event{}, fmt.Errorf("aggregator: read %s/%q v%d: %w", typ, id, v, err)
	}
	if len(evs) == 0 || evs[0].Version != v {
		return evento.Event{}, fmt.Errorf("aggregator: %s/%q has no version %d: %w", typ, id, v, evento.ErrNotFound)
	}
	return evs[0], nil
}

// SaveSnapshot saves agg, the state of the aggregate id at version, as a
// snapshot under the aggregate's revision. It is the on-demand way to
// snapshot (see snapshot.OnDemand). The event at version must exist; its
// cursor and time are recorded with the snapshot. Without a revision it
// returns an error: such an aggregate cannot be snapshotted.
//
// Like every save, it then prunes the aggregate's snapshots to the policy's
// Keep (snapshot.DefaultKeep unless set): the newest of the current
// revision stay, older ones and those of other revisions go. A snapshot
// saved at a version older than the Keep newest is therefore removed at
// once; use a policy with Keep: snapshot.KeepAll to build a history of
// snapshots for time travel.
func SaveSnapshot(ctx context.Context, store Store, id string, agg Aggregate, version uint64, opts ...Option) error {
	o := buildOptions(opts)
	typ := agg.AggregateType()
	rev := o.revisionFor(agg)
	if rev == "" {
		return fmt.Errorf("aggregator: snapshot of %s/%q: the aggregate declares no revision (implement Revisioned or use WithRevision)", typ, id)
	}
	if version == 0 {
		return fmt.Errorf("aggregator: snapshot of %s/%q at version 0: %w", typ, id, evento.ErrNotFound)
	}
	e, err := readOne(ctx, store, typ, id, version)
	if err != nil {
		return err
	}
	return o.save(ctx, store, agg, rev, &e)
}

// save stores agg's state as of event last, then prunes the aggregate's
// snapshots to the policy's Keep.
func (o *options) save(ctx context.Context, store Store, agg Aggregate, rev string, last *evento.Event) error {
	data, err := snapshot.Encode(agg)
	if err != nil {
		return fmt.Errorf("aggregator: snapshot of %s/%q v%d: %w", last.AggregateType, last.AggregateID, last.Version, err)
	}
	s := evento.Snapshot{
		AggregateType: last.AggregateType,
		AggregateID:   last.AggregateID,
		Revision:      rev,
		Version:       last.Version,
		Cursor:        last.Cursor(),
		EventTime:     last.Timestamp,
		Data:          data,
	}
	if err := store.SaveSnapshot(ctx, s); err != nil {
		return fmt.Errorf("aggregator: save snapshot of %s/%q v%d: %w", s.AggregateType, s.AggregateID, s.Version, err)
	}
	if keep := o.policyFor(agg).Limit(); keep > 0 {
		if err := store.PruneSnapshots(ctx, s.AggregateType, rev, s.AggregateID, keep); err != nil {
			return fmt.Errorf("aggregator: prune snapshots of %s/%q: %w", s.AggregateType, s.AggregateID, err)
		}
	}
	return nil
}

// saveDue saves a policy snapshot of agg as of event last. A failure fails
// the call only under strictSave (rebuilds); otherwise it is logged.
func (o *options) saveDue(ctx context.Context, store Store, agg Aggregate, rev string, last *evento.Event) (bool, error) {
	if err := o.save(ctx, store, agg, rev, last); err != nil {
		if o.strictSave {
			return false, err
		}
		o.logger.WarnContext(ctx, "aggregator: snapshot not saved", evento.LogAggregateType, last.AggregateType, evento.LogAggregateID, last.AggregateID, evento.LogVersion, last.Version, evento.LogError, err)
		return false, nil
	}
	return true, nil
}

// loadState replays aggregate id into agg up to target (0: the head). save
// allows a policy snapshot at the end. The info's Version is the version
// reached, also on error.
func (o *options) loadState(ctx context.Context, store Store, id string, agg Aggregate, target uint64, save bool) (LoadInfo, error) {
	typ := agg.AggregateType()
	rev := o.revisionFor(agg)
	useSnap := rev != "" && snapshot.Decodable(agg)

	r := replayer{store: store, typ: typ, id: id, agg: agg, target: target, chunk: o.chunk}
	// Without a usable snapshot, replay from version 0: no events in hand,
	// and full so that run reads the first chunk.
	var evs []evento.Event
	full := true
	var info LoadInfo
	if useSnap {
		var err error
		if evs, full, err = o.fromSnapshot(ctx, &r, rev); err != nil {
			return info, err
		}
		info.FromSnapshot, info.SnapshotVersion = r.version > 0, r.version
	}
	err := r.run(ctx, evs, full)
	info.Version, info.Replayed = r.version, r.applied
	if err != nil {
		return info, err
	}
	if r.version == 0 {
		return info, fmt.Errorf("aggregator: %s/%q has no events: %w", typ, id, evento.ErrNotFound)
	}
	if target != 0 && r.version < target {
		return info, fmt.Errorf("aggregator: %s/%q has %d events, no version %d: %w", typ, id, r.version, target, evento.ErrNotFound)
	}
	if save && useSnap && o.policyFor(agg).Due(r.applied) {
		if info.SnapshotSaved, err = o.saveDue(ctx, store, agg, rev, &r.last); err != nil {
			return info, err
		}
	}
	return info, nil
}

// fromSnapshot sets r up to continue from the newest usable snapshot and
// returns the events read after it and whether that read was full. When
// there is no snapshot, or it is unusable (logged), r and agg are untouched
// and it returns (nil, true, nil): replay from the start.
func (o *options) fromSnapshot(ctx context.Context, r *replayer, rev string) ([]evento.Event, bool, error) {
	s, err := r.store.LoadSnapshot(ctx, r.typ, rev, r.id, r.target)
	if errors.Is(err, evento.ErrNotFound) {
		return nil, true, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("aggregator: load snapshot of %s/%q: %w", r.typ, r.id, err)
	}
	ignore := func(reason string, args ...any) ([]evento.Event, bool, error) {
		o.logger.WarnContext(ctx, "aggregator: snapshot ignored, replaying in full",
			append([]any{evento.LogAggregateType, r.typ, evento.LogAggregateID, r.id, "revision", rev, "snapshot_version", s.Version, "reason", reason}, args...)...)
		return nil, true, nil
	}
	if s.Version == 0 || (r.target != 0 && s.Version > r.target) {
		return ignore("snapshot version out of range")
	}
	// Read from the snapshot's own event: it must exist and be the event
	// the snapshot claims to cover.
	first, full, err := r.read(ctx, s.Version-1)
	if err != nil {
		return nil, false, err
	}
	if len(first) == 0 || first[0].Version != s.Version {
		return ignore("snapshot version is past the stored events")
	}
	if s.Cursor != "" {
		cid, _, err := storekit.DecodeCursor(s.Cursor)
		if err != nil {
			return ignore("snapshot cursor does not decode", evento.LogError, err)
		}
		if cid != first[0].ID {
			return ignore("snapshot cursor names another event than the one stored at its version")
		}
	}
	if err := snapshot.Decode(s.Data, r.agg); err != nil {
		return ignore("snapshot state does not decode", evento.LogError, err)
	}
	r.version = s.Version
	r.last = first[0]
	return first[1:], full, nil
}

// replayer applies an aggregate's events in chunks.
type replayer struct {
	store  Store
	typ    string
	id     string
	agg    Aggregate
	target uint64
	chunk  int

	version uint64       // last version applied (or restored)
	applied int          // events applied by ApplyEvent
	last    evento.Event // the event at version, once known
}

// read reads the chunk after version after: chunk events, or fewer to stop
// at the target. full reports whether the store returned as many as asked,
// so that more may follow.
func (r *replayer) read(ctx context.Context, after uint64) (evs []evento.Event, full bool, err error) {
	n := r.chunk
	if r.target != 0 && r.target-after < uint64(n) {
		n = int(r.target - after)
	}
	evs, err = r.store.ReadAggregate(ctx, r.typ, r.id, after, n)
	if err != nil {
		return nil, false, fmt.Errorf("aggregator: read %s/%q after v%d: %w", r.typ, r.id, after, err)
	}
	return evs, len(evs) == n, nil
}

// run applies evs, then reads and applies chunks while the last read was
// full and the target is not reached.
func (r *replayer) run(ctx context.Context, evs []evento.Event, full bool) error {
	for {
		for i := range evs {
			e := &evs[i]
			if e.Version != r.version+1 {
				return fmt.Errorf("aggregator: %s/%q: store returned version %d after %d", r.typ, r.id, e.Version, r.version)
			}
			if err := r.agg.ApplyEvent(e); err != nil {
				return fmt.Errorf("aggregator: apply %s/%q v%d %s: %w", r.typ, r.id, e.Version, e.Name, err)
			}
			r.version = e.Version
			r.applied++
		}
		if len(evs) > 0 {
			r.last = evs[len(evs)-1]
		}
		if !full || (r.target != 0 && r.version >= r.target) {
			return nil
		}
		var err error
		if evs, full, err = r.read(ctx, r.version); err != nil {
			return err
		}
	}
}
