package pebble

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"time"

	pdb "github.com/cockroachdb/pebble/v2"
	"github.com/evento-go/evento"
	"github.com/evento-go/evento/executor/storekit"
	"github.com/oklog/ulid/v2"
	"github.com/vmihailenco/msgpack/v5"
)

// subRecord is a subscriber's stored state: a msgpack array. Fields were
// appended over time (AckedAt and Selection after the first nine), so
// DecodeMsgpack accepts any length and leaves the missing fields zero.
type subRecord struct {
	_msgpack  struct{} `msgpack:",as_array"`
	Cursor    string
	Holder    string
	Token     uint64
	ExpiresAt int64 // Unix microseconds; 0 when no lease
	LagEvents uint64
	LagTime   int64
	LastError string
	Parked    int
	UpdatedAt int64
	AckedAt   int64  // Unix microseconds; 0 before the first acknowledgement
	Selection []byte // recorded by RecordSelection; nil when none
}

// DecodeMsgpack decodes a record of any field count: older records lack
// the last fields, newer ones may carry more (skipped).
func (r *subRecord) DecodeMsgpack(d *msgpack.Decoder) error {
	n, err := d.DecodeArrayLen()
	if err != nil {
		return err
	}
	fields := []any{&r.Cursor, &r.Holder, &r.Token, &r.ExpiresAt, &r.LagEvents, &r.LagTime, &r.LastError, &r.Parked, &r.UpdatedAt, &r.AckedAt, &r.Selection}
	for i := 0; i < n; i++ {
		if i >= len(fields) {
			if err := d.Skip(); err != nil {
				return err
			}
			continue
		}
		if err := d.Decode(fields[i]); err != nil {
			return err
		}
	}
	return nil
}

// parkedRecord is a parked event's stored form.
type parkedRecord struct {
	_msgpack struct{} `msgpack:",as_array"`
	Event    []byte
	Meta     []byte
	Error    string
	Attempts int
	ParkedAt int64
}

func micros(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMicro()
}

func fromMicros(us int64) time.Time {
	if us == 0 {
		return time.Time{}
	}
	return time.UnixMicro(us).UTC()
}

func (s *Store) now() time.Time { return s.cfg.clock().UTC().Truncate(time.Microsecond) }

// getSub reads a subscriber record; found is false if there is none.
func (s *Store) getSub(key []byte) (rec subRecord, found bool, err error) {
	v, closer, err := s.db.Get(key)
	if errors.Is(err, pdb.ErrNotFound) {
		return rec, false, nil
	}
	if err != nil {
		return rec, false, fmt.Errorf("pebble executor: read subscriber: %w", err)
	}
	defer closer.Close()
	if err := evento.Unmarshal(v, &rec); err != nil {
		return rec, false, fmt.Errorf("pebble executor: subscriber record: %w", err)
	}
	return rec, true, nil
}

func (s *Store) putSub(b *pdb.Batch, key []byte, rec *subRecord) error {
	v, err := evento.Marshal(rec)
	if err != nil {
		return fmt.Errorf("pebble executor: %w", err)
	}
	return b.Set(key, v, nil)
}

// commit commits b; a failed commit fails the Store (see applyBatch).
func (s *Store) commit(b *pdb.Batch) error { return s.applyBatch(b) }

// subOp runs f under the subscriber mutex with the subscriber record of
// (key, part) and commits the batch f filled.
func (s *Store) subOp(ctx context.Context, what, key string, part uint32, f func(b *pdb.Batch, k []byte, rec *subRecord, found bool, now time.Time) error) error {
	if err := s.enter(); err != nil {
		return err
	}
	defer s.leave()
	b := s.db.NewBatch()
	defer b.Close()
	return s.subOpIn(ctx, what, key, part, b, f)
}

// subOpIn is subOp over a batch the caller made (and closes), which may
// already hold writes: AcknowledgeTx's handler writes. The caller has
// entered the Store.
func (s *Store) subOpIn(ctx context.Context, what, key string, part uint32, b *pdb.Batch, f func(b *pdb.Batch, k []byte, rec *subRecord, found bool, now time.Time) error) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("pebble executor: %s: %w", what, err)
	}
	s.subMu.Lock()
	defer s.subMu.Unlock()
	k := subscriberKey(nil, key, part)
	rec, found, err := s.getSub(k)
	if err != nil {
		return err
	}
	if err := f(b, k, &rec, found, s.now()); err != nil {
		return err
	}
	if b.Empty() {
		return nil
	}
	return s.commit(b)
}

func lostErr(l evento.Lease) error {
	return fmt.Errorf("pebble executor: lease on %q/%d (holder %q, token %d): %w", l.Key, l.Partition, l.Holder, l.Token, evento.ErrLeaseLost)
}

// current reports whether l is the live lease of rec at now.
func current(rec *subRecord, found bool, l evento.Lease, now time.Time) bool {
	return found && rec.Holder != "" && rec.Holder == l.Holder && rec.Token == l.Token && rec.ExpiresAt > now.UnixMicro()
}

// ClaimLease claims (key, partition) for holder for ttl (see
// evento.SubscriberStore). Expiry is judged by the Store's clock.
func (s *Store) ClaimLease(ctx context.Context, key string, partition uint32, holder string, ttl time.Duration) (evento.Lease, error) {
	if err := storekit.CheckClaim(key, holder, ttl); err != nil {
		return evento.Lease{}, fmt.Errorf("pebble executor: %w", err)
	}
	var out evento.Lease
	err := s.subOp(ctx, "claim lease", key, partition, func(b *pdb.Batch, k []byte, rec *subRecord, found bool, now time.Time) error {
		if found && rec.Holder != "" && rec.Holder != holder && rec.ExpiresAt > now.UnixMicro() {
			return fmt.Errorf("pebble executor: lease on %q/%d held by %q until %s: %w", key, partition, rec.Holder, fromMicros(rec.ExpiresAt).Format(time.RFC3339Nano), evento.ErrLeaseHeld)
		}
		exp := now.Add(ttl)
		rec.Holder = holder
		rec.Token++
		rec.ExpiresAt = exp.UnixMicro()
		rec.UpdatedAt = now.UnixMicro()
		out = evento.Lease{Key: key, Partition: partition, Holder: holder, Token: rec.Token, ExpiresAt: exp}
		return s.putSub(b, k, rec)
	})
	if err != nil {
		return evento.Lease{}, err
	}
	return out, nil
}

// RenewLease extends a live lease by ttl from now.
func (s *Store) RenewLease(ctx context.Context, l evento.Lease, ttl time.Duration) (evento.Lease, error) {
	if err := storekit.CheckRenew(l, ttl); err != nil {
		return evento.Lease{}, fmt.Errorf("pebble executor: %w", err)
	}
	out := l
	err := s.subOp(ctx, "renew lease", l.Key, l.Partition, func(b *pdb.Batch, k []byte, rec *subRecord, found bool, now time.Time) error {
		if !current(rec, found, l, now) {
			return lostErr(l)
		}
		exp := now.Add(ttl)
		rec.ExpiresAt = exp.UnixMicro()
		rec.UpdatedAt = now.UnixMicro()
		out.ExpiresAt = exp
		return s.putSub(b, k, rec)
	})
	if err != nil {
		return evento.Lease{}, err
	}
	return out, nil
}

// ReleaseLease gives a lease up. A lease that is not current (another
// token, or expired) gives ErrLeaseLost and changes nothing.
func (s *Store) ReleaseLease(ctx context.Context, l evento.Lease) error {
	return s.subOp(ctx, "release lease", l.Key, l.Partition, func(b *pdb.Batch, k []byte, rec *subRecord, found bool, now time.Time) error {
		if !current(rec, found, l, now) {
			return lostErr(l)
		}
		rec.Holder = ""
		rec.ExpiresAt = 0
		rec.UpdatedAt = now.UnixMicro()
		return s.putSub(b, k, rec)
	})
}

// Acknowledge records a atomically with the check of l (see
// evento.SubscriberStore).
func (s *Store) Acknowledge(ctx context.Context, l evento.Lease, a evento.Ack) error {
	parks, err := prepareParks(l, a)
	if err != nil {
		return err
	}
	return s.subOp(ctx, "acknowledge", l.Key, l.Partition, func(b *pdb.Batch, k []byte, rec *subRecord, found bool, now time.Time) error {
		return s.ackIn(b, k, rec, found, now, l, a, parks)
	})
}

// parkedEntry is a parked event's key and record, encoded before the
// acknowledgement's critical section.
type parkedEntry struct {
	key []byte
	rec parkedRecord
}

// prepareParks checks a's cursor and encodes its parked events.
func prepareParks(l evento.Lease, a evento.Ack) ([]parkedEntry, error) {
	if a.Cursor != "" {
		if _, _, err := storekit.DecodeCursor(a.Cursor); err != nil {
			return nil, fmt.Errorf("pebble executor: acknowledge: %w", err)
		}
	}
	parks := make([]parkedEntry, 0, len(a.Park))
	for i := range a.Park {
		p := &a.Park[i]
		meta, err := storekit.EncodeMetadata(p.Event.Metadata)
		if err != nil {
			return nil, fmt.Errorf("pebble executor: acknowledge: parked event %d: %w", i, err)
		}
		parks = append(parks, parkedEntry{
			key: appendU32(append(parkedPrefix(nil, l.Key), p.Event.ID[:]...), l.Partition),
			rec: parkedRecord{Event: appendEvent(nil, &p.Event, meta), Error: p.Error, Attempts: p.Attempts, ParkedAt: micros(p.ParkedAt)},
		})
	}
	return parks, nil
}

// ackIn is the acknowledgement rule, for Acknowledge and AcknowledgeTx:
// under the subscriber mutex, check that l is current and add the record's
// update and the parked events to b, which the caller commits.
func (s *Store) ackIn(b *pdb.Batch, k []byte, rec *subRecord, found bool, now time.Time, l evento.Lease, a evento.Ack, parks []parkedEntry) error {
	if !current(rec, found, l, now) {
		return lostErr(l)
	}
	if a.Cursor != "" {
		rec.Cursor = a.Cursor
	}
	rec.LagEvents = a.Lag.Events
	rec.LagTime = int64(a.Lag.Time)
	rec.LastError = a.LastError
	rec.UpdatedAt = now.UnixMicro()
	rec.AckedAt = now.UnixMicro()
	seen := map[string]bool{}
	for _, p := range parks {
		if seen[string(p.key)] {
			continue
		}
		_, closer, err := s.db.Get(p.key)
		switch {
		case errors.Is(err, pdb.ErrNotFound):
			rec.Parked++
		case err != nil:
			return fmt.Errorf("pebble executor: acknowledge: %w", err)
		default:
			closer.Close()
		}
		seen[string(p.key)] = true
	}
	for i := range parks {
		p := &parks[i]
		if p.rec.ParkedAt == 0 {
			p.rec.ParkedAt = now.UnixMicro()
		}
		val, err := evento.Marshal(&p.rec)
		if err != nil {
			return fmt.Errorf("pebble executor: acknowledge: %w", err)
		}
		if err := b.Set(p.key, val, nil); err != nil {
			return fmt.Errorf("pebble executor: acknowledge: %w", err)
		}
	}
	return s.putSub(b, k, rec)
}

func (s *Store) stateOf(key string, part uint32, rec *subRecord) evento.SubscriberState {
	return evento.SubscriberState{
		Key:            key,
		Partition:      part,
		Cursor:         rec.Cursor,
		Holder:         rec.Holder,
		Token:          rec.Token,
		LeaseExpiresAt: fromMicros(rec.ExpiresAt),
		Lag:            evento.Lag{Events: rec.LagEvents, Time: time.Duration(rec.LagTime)},
		LastError:      rec.LastError,
		Parked:         rec.Parked,
		UpdatedAt:      fromMicros(rec.UpdatedAt),
		AckedAt:        fromMicros(rec.AckedAt),
		Selection:      rec.Selection,
	}
}

// Subscriber returns one subscriber's state, or ErrNotFound.
func (s *Store) Subscriber(ctx context.Context, key string, partition uint32) (evento.SubscriberState, error) {
	if err := s.enter(); err != nil {
		return evento.SubscriberState{}, err
	}
	defer s.leave()
	if err := ctx.Err(); err != nil {
		return evento.SubscriberState{}, fmt.Errorf("pebble executor: subscriber: %w", err)
	}
	rec, found, err := s.getSub(subscriberKey(nil, key, partition))
	if err != nil {
		return evento.SubscriberState{}, err
	}
	if !found {
		return evento.SubscriberState{}, fmt.Errorf("pebble executor: subscriber %q/%d: %w", key, partition, evento.ErrNotFound)
	}
	return s.stateOf(key, partition, &rec), nil
}

// Subscribers returns every subscriber's state, ordered by key and
// partition.
func (s *Store) Subscribers(ctx context.Context) ([]evento.SubscriberState, error) {
	if err := s.enter(); err != nil {
		return nil, err
	}
	defer s.leave()
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("pebble executor: subscribers: %w", err)
	}
	it, err := s.db.NewIter(&pdb.IterOptions{LowerBound: []byte{tagSubscriber}, UpperBound: []byte{tagSubscriber + 1}})
	if err != nil {
		return nil, fmt.Errorf("pebble executor: subscribers: %w", err)
	}
	defer it.Close()
	out := []evento.SubscriberState{}
	for ok := it.First(); ok; ok = it.Next() {
		key, rest, ok2 := decodeString(it.Key()[1:])
		if !ok2 || len(rest) != 4 {
			return nil, fmt.Errorf("pebble executor: bad subscriber key %x: %w", it.Key(), errCorrupt)
		}
		v, err := it.ValueAndErr()
		if err != nil {
			return nil, fmt.Errorf("pebble executor: subscribers: %w", err)
		}
		var rec subRecord
		if err := evento.Unmarshal(v, &rec); err != nil {
			return nil, fmt.Errorf("pebble executor: subscriber record: %w", err)
		}
		out = append(out, s.stateOf(key, binary.BigEndian.Uint32(rest), &rec))
	}
	if err := it.Error(); err != nil {
		return nil, fmt.Errorf("pebble executor: subscribers: %w", err)
	}
	return out, nil
}

// ParkedEvents returns the parked events of a subscription key, all
// partitions, in global order.
func (s *Store) ParkedEvents(ctx context.Context, key string) ([]evento.ParkedEvent, error) {
	if err := s.enter(); err != nil {
		return nil, err
	}
	defer s.leave()
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("pebble executor: parked events: %w", err)
	}
	prefix := parkedPrefix(nil, key)
	it, err := s.db.NewIter(&pdb.IterOptions{LowerBound: prefix, UpperBound: prefixEnd(prefix)})
	if err != nil {
		return nil, fmt.Errorf("pebble executor: parked events: %w", err)
	}
	defer it.Close()
	out := []evento.ParkedEvent{}
	for ok := it.First(); ok; ok = it.Next() {
		rest := it.Key()[len(prefix):]
		if len(rest) != 20 {
			return nil, fmt.Errorf("pebble executor: bad parked key %x: %w", it.Key(), errCorrupt)
		}
		v, err := it.ValueAndErr()
		if err != nil {
			return nil, fmt.Errorf("pebble executor: parked events: %w", err)
		}
		var rec parkedRecord
		if err := evento.Unmarshal(v, &rec); err != nil {
			return nil, fmt.Errorf("pebble executor: parked record: %w", err)
		}
		p := evento.ParkedEvent{Key: key, Partition: binary.BigEndian.Uint32(rest[16:]), Error: rec.Error, Attempts: rec.Attempts, ParkedAt: fromMicros(rec.ParkedAt)}
		if err := decodeEvent(rec.Event, &p.Event); err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	if err := it.Error(); err != nil {
		return nil, fmt.Errorf("pebble executor: parked events: %w", err)
	}
	return out, nil
}

// DeleteParked removes a parked event; a missing one gives ErrNotFound.
func (s *Store) DeleteParked(ctx context.Context, key string, partition uint32, eventID ulid.ULID) error {
	pk := appendU32(append(parkedPrefix(nil, key), eventID[:]...), partition)
	return s.subOp(ctx, "delete parked", key, partition, func(b *pdb.Batch, k []byte, rec *subRecord, found bool, now time.Time) error {
		_, closer, err := s.db.Get(pk)
		if errors.Is(err, pdb.ErrNotFound) {
			return fmt.Errorf("pebble executor: parked event %s of %q/%d: %w", eventID, key, partition, evento.ErrNotFound)
		}
		if err != nil {
			return fmt.Errorf("pebble executor: delete parked: %w", err)
		}
		closer.Close()
		if err := b.Delete(pk, nil); err != nil {
			return fmt.Errorf("pebble executor: delete parked: %w", err)
		}
		if found {
			if rec.Parked > 0 {
				rec.Parked--
			}
			rec.UpdatedAt = now.UnixMicro()
			return s.putSub(b, k, rec)
		}
		return nil
	})
}

// ResetSubscriber sets a subscriber's cursor (creating the subscriber if
// needed), releases its lease and bumps its token, so that the current
// holder's next acknowledgement fails with ErrLeaseLost.
func (s *Store) ResetSubscriber(ctx context.Context, key string, partition uint32, cursor string) error {
	if cursor != "" {
		if _, _, err := storekit.DecodeCursor(cursor); err != nil {
			return fmt.Errorf("pebble executor: reset subscriber: %w", err)
		}
	}
	return s.subOp(ctx, "reset subscriber", key, partition, func(b *pdb.Batch, k []byte, rec *subRecord, found bool, now time.Time) error {
		rec.Cursor = cursor
		rec.Token++
		rec.Holder = ""
		rec.ExpiresAt = 0
		rec.Selection = nil
		rec.UpdatedAt = now.UnixMicro()
		return s.putSub(b, k, rec)
	})
}

// DeleteSubscriber removes a subscriber and its parked events (see
// evento.SubscriberStore), or returns ErrNotFound.
func (s *Store) DeleteSubscriber(ctx context.Context, key string, partition uint32) error {
	return s.subOp(ctx, "delete subscriber", key, partition, func(b *pdb.Batch, k []byte, rec *subRecord, found bool, now time.Time) error {
		if !found {
			return fmt.Errorf("pebble executor: subscriber %q/%d: %w", key, partition, evento.ErrNotFound)
		}
		if err := b.Delete(k, nil); err != nil {
			return fmt.Errorf("pebble executor: delete subscriber: %w", err)
		}
		// Parked keys are prefix, event id (16 bytes), partition.
		prefix := parkedPrefix(nil, key)
		it, err := s.db.NewIter(&pdb.IterOptions{LowerBound: prefix, UpperBound: prefixEnd(prefix)})
		if err != nil {
			return fmt.Errorf("pebble executor: delete subscriber: %w", err)
		}
		defer it.Close()
		for ok := it.First(); ok; ok = it.Next() {
			rest := it.Key()[len(prefix):]
			if len(rest) == 20 && binary.BigEndian.Uint32(rest[16:]) == partition {
				if err := b.Delete(append([]byte(nil), it.Key()...), nil); err != nil {
					return fmt.Errorf("pebble executor: delete subscriber: %w", err)
				}
			}
		}
		if err := it.Error(); err != nil {
			return fmt.Errorf("pebble executor: delete subscriber: %w", err)
		}
		return nil
	})
}

// RecordSelection records sel as the selection of (key, partition) unless
// one is recorded, and returns the recorded one (see
// evento.SubscriberStore).
func (s *Store) RecordSelection(ctx context.Context, key string, partition uint32, sel []byte) ([]byte, error) {
	if err := storekit.CheckSelection(key, sel); err != nil {
		return nil, fmt.Errorf("pebble executor: %w", err)
	}
	var out []byte
	err := s.subOp(ctx, "record selection", key, partition, func(b *pdb.Batch, k []byte, rec *subRecord, found bool, now time.Time) error {
		if found && len(rec.Selection) > 0 {
			out = rec.Selection
			return nil
		}
		rec.Selection = append([]byte(nil), sel...)
		rec.UpdatedAt = now.UnixMicro()
		out = rec.Selection
		return s.putSub(b, k, rec)
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// tagWorker prefixes worker presence records:
//
//	'W' key worker -> expiry (8-byte big-endian Unix microseconds)
const tagWorker byte = 'W'

func workerPrefix(key string) []byte { return appendString([]byte{tagWorker}, key) }

// AnnounceWorker records worker's presence on key until ttl from now (the
// Store's clock), deletes the expired presences of key and returns the live
// workers in byte order (see evento.SubscriberStore).
func (s *Store) AnnounceWorker(ctx context.Context, key, worker string, ttl time.Duration) ([]string, error) {
	if err := storekit.CheckPresence(key, worker, ttl); err != nil {
		return nil, fmt.Errorf("pebble executor: %w", err)
	}
	if err := s.enter(); err != nil {
		return nil, err
	}
	defer s.leave()
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("pebble executor: announce worker: %w", err)
	}
	s.subMu.Lock()
	defer s.subMu.Unlock()
	now := s.now()
	prefix := workerPrefix(key)
	b := s.db.NewBatch()
	defer b.Close()
	it, err := s.db.NewIter(&pdb.IterOptions{LowerBound: prefix, UpperBound: prefixEnd(prefix)})
	if err != nil {
		return nil, fmt.Errorf("pebble executor: announce worker: %w", err)
	}
	live := []string{}
	for ok := it.First(); ok; ok = it.Next() {
		w, rest, ok2 := decodeString(it.Key()[len(prefix):])
		v, verr := it.ValueAndErr()
		if !ok2 || len(rest) != 0 || verr != nil || len(v) != 8 {
			it.Close()
			return nil, fmt.Errorf("pebble executor: bad worker presence %x: %w", it.Key(), errCorrupt)
		}
		switch {
		case w == worker:
		case int64(binary.BigEndian.Uint64(v)) > now.UnixMicro():
			live = append(live, w)
		default:
			if err := b.Delete(it.Key(), nil); err != nil {
				it.Close()
				return nil, fmt.Errorf("pebble executor: announce worker: %w", err)
			}
		}
	}
	if err := it.Close(); err != nil {
		return nil, fmt.Errorf("pebble executor: announce worker: %w", err)
	}
	if err := b.Set(appendString(prefix, worker), binary.BigEndian.AppendUint64(nil, uint64(now.Add(ttl).UnixMicro())), nil); err != nil {
		return nil, fmt.Errorf("pebble executor: announce worker: %w", err)
	}
	if err := s.commit(b); err != nil {
		return nil, err
	}
	live = append(live, worker)
	slices.Sort(live)
	return live, nil
}

// WithdrawWorker removes worker's presence on key.
func (s *Store) WithdrawWorker(ctx context.Context, key, worker string) error {
	if err := storekit.CheckPresence(key, worker, 1); err != nil {
		return fmt.Errorf("pebble executor: %w", err)
	}
	if err := s.enter(); err != nil {
		return err
	}
	defer s.leave()
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("pebble executor: withdraw worker: %w", err)
	}
	s.subMu.Lock()
	defer s.subMu.Unlock()
	b := s.db.NewBatch()
	defer b.Close()
	if err := b.Delete(appendString(workerPrefix(key), worker), nil); err != nil {
		return fmt.Errorf("pebble executor: withdraw worker: %w", err)
	}
	return s.commit(b)
}
