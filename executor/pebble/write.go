package pebble

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	pdb "github.com/cockroachdb/pebble/v2"
	"github.com/evento-go/evento"
	"github.com/evento-go/evento/executor/internal/ids"
	"github.com/evento-go/evento/executor/storekit"
	"github.com/oklog/ulid/v2"
)

// writeReq is one Write handed to the committer.
type writeReq struct {
	events []evento.Event
	spans  []storekit.Span
	meta   [][]byte
	keep   bool // Import: keep the events' IDs and timestamps
	err    error
	done   chan struct{}
}

// Write appends events atomically (see evento.EventStore).
//
// Writes go through a single committer goroutine that gathers every write
// pending when it is free (group commit), checks each write's versions (a
// conflicting write fails alone), assigns positions and IDs in commit order
// and writes the whole group in one Pebble batch with one sync. Concurrent
// writers therefore share WAL syncs.
//
// ctx is honoured until the committer takes the write: a write cancelled
// before that never lands. Once taken, Write waits for the outcome (one
// commit) and may succeed even if ctx is cancelled meanwhile.
func (s *Store) Write(ctx context.Context, events []evento.Event) error {
	return s.write(ctx, events, false)
}

// write is Write, or Import when keep is set.
func (s *Store) write(ctx context.Context, events []evento.Event, keep bool) error {
	spans, err := storekit.ValidateBatch(events)
	if err != nil {
		return err
	}
	if keep {
		if err := storekit.ValidateImport(events); err != nil {
			return err
		}
	}
	meta := make([][]byte, len(events))
	for i := range events {
		m, err := storekit.EncodeMetadata(events[i].Metadata)
		if err != nil {
			return &evento.InvalidEventError{Index: i, Reason: "metadata: " + err.Error()}
		}
		meta[i] = m
	}
	if err := s.enter(); err != nil {
		return err
	}
	defer s.leave()
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("pebble executor: write: %w", err)
	}
	r := &writeReq{events: events, spans: spans, meta: meta, keep: keep, done: make(chan struct{})}
	select {
	case s.reqs <- r:
	case <-ctx.Done():
		return fmt.Errorf("pebble executor: write: %w", ctx.Err())
	case <-s.closing:
		return fmt.Errorf("pebble executor: write: %w", evento.ErrClosed)
	}
	<-r.done
	return r.err
}

// aggState is what the committer knows of an aggregate: its version and
// its routing key (fixed by its first event).
type aggState struct {
	version uint64
	routing string
}

func (s *Store) commitLoop() {
	defer close(s.done)
	var group []*writeReq
	var batch *pdb.Batch
	defer func() {
		if batch != nil {
			_ = batch.Close()
		}
	}()
	for {
		group = group[:0]
		select {
		case <-s.closing:
			return
		default:
		}
		select {
		case r := <-s.reqs:
			group = append(group, r)
		case <-s.closing:
			return
		}
	gather:
		for len(group) < s.cfg.maxGroupLen {
			select {
			case r := <-s.reqs:
				group = append(group, r)
			default:
				break gather
			}
		}
		if f := s.failed(); f != nil {
			// A write that entered before the failure.
			for _, r := range group {
				r.err = f
				close(r.done)
			}
			continue
		}
		if batch == nil {
			batch = s.db.NewBatch()
		} else {
			batch.Reset()
		}
		if !s.commitGroup(batch, group) {
			// Pebble may still hold a batch whose commit failed: never
			// touch it again.
			batch = nil
		}
	}
}

// commitGroup checks, encodes and commits one group of writes, then
// answers every writer. It reports false when the batch must not be
// reused.
func (s *Store) commitGroup(batch *pdb.Batch, group []*writeReq) (reusable bool) {
	now := s.cfg.clock().UTC().Truncate(time.Microsecond)
	if now.Before(s.lastTS) {
		now = s.lastTS
	}
	pending := s.pending
	clear(pending)
	next := s.next
	key, val := s.keyBuf[:0], s.valBuf[:0]
	defer func() { s.keyBuf, s.valBuf = key, val }()
	var (
		count int
		rerr  error
	)
	for _, r := range group {
		// Check every span first (versions and routing keys): a refused
		// write fails alone, with nothing written.
		keys, err := s.checkSpans(r, pending)
		if err != nil {
			r.err = err
			continue
		}
		for j := range r.spans {
			sp := &r.spans[j]
			if keys[j] != sp.RoutingKey {
				// Events that gave no key inherit the stored one.
				storekit.SetRouting(r.events, sp, keys[j])
			}
			pending[sp.AggregateRef] = aggState{version: sp.Last, routing: keys[j]}
		}
		for i := range r.events {
			e := &r.events[i]
			e.Position = evento.Position{Seq: next}
			if r.keep {
				s.keepID(e.ID)
			} else {
				e.Timestamp = now
				e.ID = s.newID(now)
			}
			next++
			val = appendEvent(val[:0], e, r.meta[i])
			key = eventKey(key[:0], e.Position.Seq)
			rerr = errors.Join(rerr, batch.Set(key, val, nil))
			key = appendU64(aggregatePrefix(key[:0], e.AggregateType, e.AggregateID), e.Version)
			rerr = errors.Join(rerr, batch.Set(key, val, nil))
			key = appendU64(typePrefix(key[:0], e.AggregateType), e.Position.Seq)
			rerr = errors.Join(rerr, batch.Set(key, nil, nil))
			key = appendU64(typeNamePrefix(key[:0], e.AggregateType, e.Name), e.Position.Seq)
			rerr = errors.Join(rerr, batch.Set(key, nil, nil))
			key = appendU64(routingPrefix(key[:0], e.RoutingKey), e.Position.Seq)
			rerr = errors.Join(rerr, batch.Set(key, nil, nil))
			key = appendU64(routTypePrefix(key[:0], e.RoutingKey, e.AggregateType), e.Position.Seq)
			rerr = errors.Join(rerr, batch.Set(key, nil, nil))
			key = appendU64(routNamePrefix(key[:0], e.RoutingKey, e.AggregateType, e.Name), e.Position.Seq)
			rerr = errors.Join(rerr, batch.Set(key, nil, nil))
			count++
		}
	}
	reusable = true
	switch {
	case count == 0:
	case rerr != nil:
		// Building the batch failed: nothing was committed, the Store
		// goes on, the group fails.
		rerr = fmt.Errorf("pebble executor: write batch: %w", rerr)
		s.cfg.logger.Error("pebble executor: write batch failed", evento.LogError, rerr, "events", count)
		reusable = false
	default:
		rerr = s.applyBatch(batch)
		s.commits.Add(1)
		if rerr != nil {
			// The Store has failed (applyBatch recorded it): every
			// later call is refused, so the cache needs no repair.
			reusable = false
			break
		}
		if s.testHookCommitted != nil {
			s.testHookCommitted()
		}
		s.next = next
		s.lastTS = now
		s.observeCommit(len(group), count)
		// Committed and synced: readers may now see the group.
		s.head.Store(next - 1)
		if s.cfg.cacheSize > 0 {
			if len(s.versions)+len(pending) > s.cfg.cacheSize {
				clear(s.versions)
			}
			for ref, v := range pending {
				s.versions[ref] = v
			}
		}
	}
	for _, r := range group {
		if r.err == nil && rerr != nil {
			r.err = rerr
		}
		close(r.done)
	}
	if count > 0 && rerr == nil {
		s.notify.Signal()
	}
	return reusable
}

// checkSpans checks a write's spans against the aggregates' state (pending
// writes of the group first, then the committed state) and returns the
// routing key of each span: the version must be the span's expected one,
// and the key the one the aggregate's first event fixed (Span.Routing). The
// slice is scratch, valid until the next call. Only the committer calls it.
func (s *Store) checkSpans(r *writeReq, pending map[evento.AggregateRef]aggState) ([]string, error) {
	keys := s.keys[:0]
	defer func() { s.keys = keys }()
	for j := range r.spans {
		sp := &r.spans[j]
		cur, ok := pending[sp.AggregateRef]
		if !ok {
			var err error
			if cur, err = s.currentState(sp.AggregateRef); err != nil {
				return nil, err
			}
		}
		if cur.version != sp.Expected {
			return nil, &evento.VersionConflictError{AggregateType: sp.Type, AggregateID: sp.ID, Expected: sp.Expected, Actual: cur.version}
		}
		rk, err := sp.Routing(cur.routing)
		if err != nil {
			return nil, err
		}
		keys = append(keys, rk)
	}
	return keys, nil
}

// newID returns a ULID for a new event, greater than every ID in the
// store even if the clock went back since the last commit, restart
// included. Only the committer calls it.
func (s *Store) newID(now time.Time) ulid.ULID {
	s.lastID = ids.Above(s.ulids.New(now), s.lastID)
	return s.lastID
}

// currentState returns an aggregate's committed version and routing key,
// from the cache or with one bounded iterator (its last event for the
// version, its first for the key). Only the committer calls it: it sees
// every committed group, as it is the only writer.
func (s *Store) currentState(ref evento.AggregateRef) (aggState, error) {
	if st, ok := s.versions[ref]; ok {
		return st, nil
	}
	lower := aggregatePrefix(nil, ref.Type, ref.ID)
	it, err := s.db.NewIter(&pdb.IterOptions{LowerBound: lower, UpperBound: prefixEnd(lower)})
	if err != nil {
		return aggState{}, fmt.Errorf("pebble executor: read version of %s/%q: %w", ref.Type, ref.ID, err)
	}
	defer s.closeIter(it)
	if !it.Last() {
		if err := it.Error(); err != nil {
			return aggState{}, fmt.Errorf("pebble executor: read version of %s/%q: %w", ref.Type, ref.ID, err)
		}
		return aggState{}, nil
	}
	k := it.Key()
	if len(k) != len(lower)+8 {
		return aggState{}, fmt.Errorf("pebble executor: bad aggregate key %x: %w", k, errCorrupt)
	}
	st := aggState{version: decodeU64(k[len(lower):])}
	if !it.First() {
		return aggState{}, errors.Join(it.Error(), fmt.Errorf("pebble executor: aggregate %s/%q lost its first event: %w", ref.Type, ref.ID, errCorrupt))
	}
	v, err := it.ValueAndErr()
	if err != nil {
		return aggState{}, fmt.Errorf("pebble executor: read routing key of %s/%q: %w", ref.Type, ref.ID, err)
	}
	rk, ok := valueRouting(v)
	if !ok {
		return aggState{}, fmt.Errorf("pebble executor: bad aggregate record at %x: %w", it.Key(), errCorrupt)
	}
	st.routing = rk
	return st, nil
}

// durableVersion returns an aggregate's last version at or below the
// position head: the newest event whose Write could have returned.
func (s *Store) durableVersion(typ, id string, head uint64) (uint64, error) {
	lower := aggregatePrefix(nil, typ, id)
	upper := prefixEnd(lower)
	it, err := s.db.NewIter(&pdb.IterOptions{LowerBound: lower, UpperBound: upper})
	if err != nil {
		return 0, fmt.Errorf("pebble executor: read version of %s/%q: %w", typ, id, err)
	}
	defer s.closeIter(it)
	// Positions grow with versions: step back over the events of groups
	// not yet synced (at most the last group's).
	for ok := it.Last(); ok; ok = it.Prev() {
		k := it.Key()
		v, err := it.ValueAndErr()
		if err != nil {
			return 0, fmt.Errorf("pebble executor: read version of %s/%q: %w", typ, id, err)
		}
		p, okp := valuePos(v)
		if len(k) != len(lower)+8 || !okp {
			return 0, fmt.Errorf("pebble executor: bad aggregate record at %x: %w", k, errCorrupt)
		}
		if p <= head {
			return decodeU64(k[len(lower):]), nil
		}
	}
	if err := it.Error(); err != nil {
		return 0, fmt.Errorf("pebble executor: read version of %s/%q: %w", typ, id, err)
	}
	return 0, nil
}

func decodeU64(b []byte) uint64 { return binary.BigEndian.Uint64(b) }
