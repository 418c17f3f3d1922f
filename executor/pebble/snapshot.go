package pebble

import (
	"context"
	"fmt"

	pdb "github.com/cockroachdb/pebble/v2"
	"github.com/evento-go/evento"
)

type snapRecord struct {
	_msgpack  struct{} `msgpack:",as_array"`
	Cursor    string
	EventTime int64
	Data      []byte
	CreatedAt int64
}

func checkSnapshotKey(typ, revision, id string) error {
	if err := checkAggregate(typ, id); err != nil {
		return err
	}
	q := evento.Query{Filters: []evento.Filter{{AggregateType: typ, Name: revision}}}
	if err := q.Validate(0); err != nil {
		return fmt.Errorf("pebble executor: snapshot revision: %w", err)
	}
	return nil
}

// SaveSnapshot stores sn, replacing a snapshot with the same type,
// revision, id and version.
func (s *Store) SaveSnapshot(ctx context.Context, sn evento.Snapshot) error {
	if err := checkSnapshotKey(sn.AggregateType, sn.Revision, sn.AggregateID); err != nil {
		return err
	}
	if err := s.enter(); err != nil {
		return err
	}
	defer s.leave()
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("pebble executor: save snapshot: %w", err)
	}
	rec := snapRecord{Cursor: sn.Cursor, EventTime: micros(sn.EventTime), Data: sn.Data, CreatedAt: s.now().UnixMicro()}
	v, err := evento.Marshal(&rec)
	if err != nil {
		return fmt.Errorf("pebble executor: save snapshot: %w", err)
	}
	key := appendU64(snapshotPrefix(nil, sn.AggregateType, sn.AggregateID, sn.Revision), sn.Version)
	b := s.db.NewBatch()
	defer b.Close() // after a failed commit, Close leaves the batch to Pebble
	if err := b.Set(key, v, nil); err != nil {
		return fmt.Errorf("pebble executor: save snapshot: %w", err)
	}
	return s.applyBatch(b)
}

// LoadSnapshot returns the newest snapshot of (type, revision, id) with
// Version <= maxVersion (0: no bound), with one reverse seek.
//
// A snapshot is state the caller computed and saved; the store does not
// check it against the log. The events it covers were durable when they
// were read (ReadAggregate shows nothing past Head), and a loader that
// replays from it reads its own event through ReadAggregate too.
func (s *Store) LoadSnapshot(ctx context.Context, aggregateType, revision, id string, maxVersion uint64) (evento.Snapshot, error) {
	if err := checkSnapshotKey(aggregateType, revision, id); err != nil {
		return evento.Snapshot{}, err
	}
	if err := s.enter(); err != nil {
		return evento.Snapshot{}, err
	}
	defer s.leave()
	if err := ctx.Err(); err != nil {
		return evento.Snapshot{}, fmt.Errorf("pebble executor: load snapshot: %w", err)
	}
	prefix := snapshotPrefix(nil, aggregateType, id, revision)
	upper := prefixEnd(prefix)
	if maxVersion != 0 && maxVersion != ^uint64(0) {
		upper = appendU64(append([]byte(nil), prefix...), maxVersion+1)
	}
	it, err := s.db.NewIter(&pdb.IterOptions{LowerBound: prefix, UpperBound: upper})
	if err != nil {
		return evento.Snapshot{}, fmt.Errorf("pebble executor: load snapshot: %w", err)
	}
	defer s.closeIter(it)
	if !it.Last() {
		if err := it.Error(); err != nil {
			return evento.Snapshot{}, fmt.Errorf("pebble executor: load snapshot: %w", err)
		}
		return evento.Snapshot{}, fmt.Errorf("pebble executor: snapshot of %s/%q revision %q: %w", aggregateType, id, revision, evento.ErrNotFound)
	}
	k := it.Key()
	if len(k) != len(prefix)+8 {
		return evento.Snapshot{}, fmt.Errorf("pebble executor: bad snapshot key %x: %w", k, errCorrupt)
	}
	v, err := it.ValueAndErr()
	if err != nil {
		return evento.Snapshot{}, fmt.Errorf("pebble executor: load snapshot: %w", err)
	}
	var rec snapRecord
	if err := evento.Unmarshal(v, &rec); err != nil {
		return evento.Snapshot{}, fmt.Errorf("pebble executor: snapshot record: %w", err)
	}
	var data []byte
	if len(rec.Data) > 0 {
		data = append([]byte(nil), rec.Data...)
	}
	return evento.Snapshot{
		AggregateType: aggregateType,
		AggregateID:   id,
		Revision:      revision,
		Version:       decodeU64(k[len(prefix):]),
		Cursor:        rec.Cursor,
		EventTime:     fromMicros(rec.EventTime),
		Data:          data,
		CreatedAt:     fromMicros(rec.CreatedAt),
	}, nil
}

// PruneSnapshots keeps the newest keep snapshots of (type, revision, id)
// and deletes the older ones and every snapshot of the aggregate under
// another revision.
func (s *Store) PruneSnapshots(ctx context.Context, aggregateType, revision, id string, keep int) error {
	if err := checkSnapshotKey(aggregateType, revision, id); err != nil {
		return err
	}
	if err := s.enter(); err != nil {
		return err
	}
	defer s.leave()
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("pebble executor: prune snapshots: %w", err)
	}
	s.subMu.Lock()
	defer s.subMu.Unlock()
	agg := snapshotAggPrefix(nil, aggregateType, id)
	cur := snapshotPrefix(nil, aggregateType, id, revision)
	it, err := s.db.NewIter(&pdb.IterOptions{LowerBound: agg, UpperBound: prefixEnd(agg)})
	if err != nil {
		return fmt.Errorf("pebble executor: prune snapshots: %w", err)
	}
	defer s.closeIter(it)
	b := s.db.NewBatch()
	defer b.Close()
	// Walk backwards so the current revision's newest come first.
	kept := 0
	for ok := it.Last(); ok; ok = it.Prev() {
		k := it.Key()
		if len(k) == len(cur)+8 && string(k[:len(cur)]) == string(cur) {
			if kept < keep {
				kept++
				continue
			}
		}
		if err := b.Delete(k, nil); err != nil {
			return fmt.Errorf("pebble executor: prune snapshots: %w", err)
		}
	}
	if err := it.Error(); err != nil {
		return fmt.Errorf("pebble executor: prune snapshots: %w", err)
	}
	if b.Empty() {
		return nil
	}
	return s.applyBatch(b)
}
