package postgres

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/evento-go/evento"
	"github.com/jackc/pgx/v5"
)

// SaveSnapshot stores snap, replacing one with the same type, revision, id
// and version. See evento.SnapshotStore.
func (s *Store) SaveSnapshot(ctx context.Context, snap evento.Snapshot) error {
	if err := s.check(); err != nil {
		return err
	}
	if snap.Version > math.MaxInt64 {
		return fmt.Errorf("postgres executor: snapshot version %d is above PostgreSQL's bigint range: %w", snap.Version, evento.ErrInvalidEvent)
	}
	var et any
	var etNs int64
	if !snap.EventTime.IsZero() {
		// timestamptz holds microseconds: keep the rest beside it.
		tr := snap.EventTime.Truncate(time.Microsecond)
		et, etNs = tr, int64(snap.EventTime.Sub(tr))
	}
	_, err := s.pool.Exec(ctx, `INSERT INTO `+s.schema+`.snapshots (aggregate_type, revision, aggregate_id, version, cursor, event_time, event_time_ns, data, created_at)
VALUES ($1, $2, $3, $4, $5, $6, $8, $7, now())
ON CONFLICT (aggregate_type, aggregate_id, revision, version) DO UPDATE SET
	cursor = EXCLUDED.cursor, event_time = EXCLUDED.event_time, event_time_ns = EXCLUDED.event_time_ns, data = EXCLUDED.data, created_at = EXCLUDED.created_at`,
		[]byte(snap.AggregateType), []byte(snap.Revision), []byte(snap.AggregateID), int64(snap.Version), snap.Cursor, et, snap.Data, etNs)
	return s.wrap("save snapshot", err)
}

// LoadSnapshot returns the newest snapshot of (type, revision, id) at or
// below maxVersion (0: no bound), or evento.ErrNotFound.
func (s *Store) LoadSnapshot(ctx context.Context, aggregateType, revision, id string, maxVersion uint64) (evento.Snapshot, error) {
	if err := s.check(); err != nil {
		return evento.Snapshot{}, err
	}
	bound := int64(math.MaxInt64)
	if maxVersion > 0 && maxVersion < math.MaxInt64 {
		bound = int64(maxVersion)
	}
	var (
		version   int64
		cur       string
		et        *time.Time
		etNs      int64
		data      []byte
		createdAt time.Time
	)
	err := s.read(ctx, func(b *pgx.Batch) {
		b.Queue(`SELECT version, cursor, event_time, event_time_ns, data, created_at FROM `+s.schema+`.snapshots
WHERE aggregate_type = $1 AND aggregate_id = $2 AND revision = $3 AND version <= $4
ORDER BY version DESC LIMIT 1`, []byte(aggregateType), []byte(id), []byte(revision), bound)
	}, func(br pgx.BatchResults) error {
		return br.QueryRow().Scan(&version, &cur, &et, &etNs, &data, &createdAt)
	})
	if errors.Is(err, pgx.ErrNoRows) {
		return evento.Snapshot{}, fmt.Errorf("postgres executor: snapshot of %s/%q revision %q: %w", aggregateType, id, revision, evento.ErrNotFound)
	}
	if err != nil {
		return evento.Snapshot{}, s.wrap("load snapshot", err)
	}
	snap := evento.Snapshot{AggregateType: aggregateType, AggregateID: id, Revision: revision, Version: uint64(version),
		Cursor: cur, Data: data, CreatedAt: createdAt.UTC()}
	if et != nil {
		snap.EventTime = et.UTC().Add(time.Duration(etNs))
	}
	return snap, nil
}

// PruneSnapshots keeps the newest keep snapshots of (type, revision, id) and
// deletes the rest, and every snapshot of the aggregate under another
// revision.
func (s *Store) PruneSnapshots(ctx context.Context, aggregateType, revision, id string, keep int) error {
	if err := s.check(); err != nil {
		return err
	}
	keep = max(keep, 0)
	_, err := s.pool.Exec(ctx, `DELETE FROM `+s.schema+`.snapshots
WHERE aggregate_type = $1 AND aggregate_id = $2 AND (revision <> $3 OR version NOT IN (
	SELECT version FROM `+s.schema+`.snapshots WHERE aggregate_type = $1 AND aggregate_id = $2 AND revision = $3
	ORDER BY version DESC LIMIT $4))`, []byte(aggregateType), []byte(id), []byte(revision), int64(keep))
	return s.wrap("prune snapshots", err)
}
