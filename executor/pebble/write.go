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
	"github.com/oklog/ulid/v2"
)

// writeReq is one Write handed to the committer.
type writeReq struct {
	events []evento.Event
	spans  []evento.Span
	meta   [][]byte
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
	spans, err := evento.ValidateBatch(events)
	if err != nil {
		return err
	}
	meta := make([][]byte, len(events))
	for i := range events {
		m, err := evento.EncodeMetadata(events[i].Metadata)
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
	r := &writeReq{events: events, spans: spans, meta: meta, done: make(chan struct{})}
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

func (s *Store) commitLoop() {
	defer close(s.done)
	var group []*writeReq
	batch := s.db.NewBatch()
	defer batch.Close()
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
		batch.Reset()
		s.commitGroup(batch, group)
	}
}

// commitGroup checks, encodes and commits one group of writes, then
// answers every writer.
func (s *Store) commitGroup(batch *pdb.Batch, group []*writeReq) {
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
		// Check every span first: a conflicting write fails alone.
		for _, sp := range r.spans {
			cur, ok := pending[sp.AggregateRef]
			if !ok {
				var err error
				cur, err = s.currentVersion(sp.AggregateRef)
				if err != nil {
					r.err = err
					break
				}
			}
			if cur != sp.Expected {
				r.err = &evento.VersionConflictError{AggregateType: sp.Type, AggregateID: sp.ID, Expected: sp.Expected, Actual: cur}
				break
			}
		}
		if r.err != nil {
			continue
		}
		for _, sp := range r.spans {
			pending[sp.AggregateRef] = sp.Last
		}
		for i := range r.events {
			e := &r.events[i]
			e.Position = evento.Position{Seq: next}
			e.Timestamp = now
			e.ID = s.newID(now)
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
	if count > 0 && rerr == nil {
		rerr = batch.Commit(s.wopts)
		s.commits.Add(1)
	}
	if count > 0 {
		if rerr != nil {
			rerr = fmt.Errorf("pebble executor: commit: %w", rerr)
			s.cfg.logger.Error("pebble executor: commit failed", "err", rerr, "events", count)
			// Forget cached versions: the group did not land.
			for ref := range pending {
				delete(s.versions, ref)
			}
		} else {
			s.next = next
			s.lastTS = now
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
}

// newID returns a ULID for a new event, greater than every ID in the
// store even if the clock went back since the last commit, restart
// included. Only the committer calls it.
func (s *Store) newID(now time.Time) ulid.ULID {
	s.lastID = ids.Above(s.ulids.New(now), s.lastID)
	return s.lastID
}

// currentVersion returns an aggregate's committed version, from the cache
// or with one reverse seek. Only the committer calls it.
func (s *Store) currentVersion(ref evento.AggregateRef) (uint64, error) {
	if v, ok := s.versions[ref]; ok {
		return v, nil
	}
	return s.readVersion(ref.Type, ref.ID)
}

// readVersion reads an aggregate's last version from the database.
func (s *Store) readVersion(typ, id string) (uint64, error) {
	lower := aggregatePrefix(nil, typ, id)
	upper := prefixEnd(lower)
	it, err := s.db.NewIter(&pdb.IterOptions{LowerBound: lower, UpperBound: upper})
	if err != nil {
		return 0, fmt.Errorf("pebble executor: read version of %s/%q: %w", typ, id, err)
	}
	defer it.Close()
	if !it.Last() {
		if err := it.Error(); err != nil {
			return 0, fmt.Errorf("pebble executor: read version of %s/%q: %w", typ, id, err)
		}
		return 0, nil
	}
	k := it.Key()
	if len(k) != len(lower)+8 {
		return 0, fmt.Errorf("pebble executor: bad aggregate key %x: %w", k, errCorrupt)
	}
	return decodeU64(k[len(lower):]), nil
}

func decodeU64(b []byte) uint64 { return binary.BigEndian.Uint64(b) }
