package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"

	"github.com/evento-go/evento"
)

// SaveSnapshot stores snap, replacing one with the same type, revision, id
// and version. CreatedAt is set by the store.
func (s *Store) SaveSnapshot(ctx context.Context, snap evento.Snapshot) error {
	if err := s.check(ctx); err != nil {
		return err
	}
	if snap.AggregateType == "" || snap.AggregateID == "" {
		return fmt.Errorf("sqlite executor: save snapshot: aggregate type and id are required (got %q/%q): %w", snap.AggregateType, snap.AggregateID, evento.ErrInvalidEvent)
	}
	if snap.Version > math.MaxInt64 {
		return fmt.Errorf("sqlite executor: save snapshot: version %d is out of range: %w", snap.Version, evento.ErrInvalidEvent)
	}
	return s.writeTx(ctx, "save snapshot", func(w *writeConn) error {
		_, err := w.exec(ctx, `INSERT OR REPLACE INTO snapshots (aggregate_type, aggregate_id, revision, version, cursor, event_time, data, created_at)
VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
			blob(snap.AggregateType), blob(snap.AggregateID), blob(snap.Revision), int64(snap.Version), blob(snap.Cursor),
			micros(snap.EventTime), snap.Data, s.now().UnixMicro())
		return s.txErr("save snapshot", err)
	})
}

// LoadSnapshot returns the newest snapshot of (type, revision, id) with
// Version <= maxVersion (0: no bound), or ErrNotFound.
func (s *Store) LoadSnapshot(ctx context.Context, aggregateType, revision, id string, maxVersion uint64) (evento.Snapshot, error) {
	if err := s.check(ctx); err != nil {
		return evento.Snapshot{}, err
	}
	if maxVersion == 0 || maxVersion > math.MaxInt64 {
		maxVersion = math.MaxInt64
	}
	out := evento.Snapshot{AggregateType: aggregateType, AggregateID: id, Revision: revision}
	var version int64
	var eventTime, created sql.NullInt64
	err := s.queryRow(ctx, `SELECT version, cursor, event_time, data, created_at FROM snapshots
WHERE aggregate_type = ? AND aggregate_id = ? AND revision = ? AND version <= ? ORDER BY version DESC LIMIT 1`,
		[]any{blob(aggregateType), blob(id), blob(revision), int64(maxVersion)},
		&version, &out.Cursor, &eventTime, &out.Data, &created)
	if errors.Is(err, sql.ErrNoRows) {
		return evento.Snapshot{}, fmt.Errorf("sqlite executor: snapshot %s/%q revision %q: %w", aggregateType, id, revision, evento.ErrNotFound)
	}
	if err != nil {
		return evento.Snapshot{}, s.wrap("load snapshot", err)
	}
	out.Version = uint64(version)
	out.EventTime = fromMicros(eventTime)
	out.CreatedAt = fromMicros(created)
	return out, nil
}

// PruneSnapshots keeps the newest keep snapshots of (type, revision, id)
// and deletes the older ones and every snapshot of the aggregate under
// another revision.
func (s *Store) PruneSnapshots(ctx context.Context, aggregateType, revision, id string, keep int) error {
	if err := s.check(ctx); err != nil {
		return err
	}
	if keep < 0 {
		keep = 0
	}
	return s.writeTx(ctx, "prune snapshots", func(w *writeConn) error {
		if _, err := w.exec(ctx, `DELETE FROM snapshots WHERE aggregate_type = ? AND aggregate_id = ? AND revision <> ?`,
			blob(aggregateType), blob(id), blob(revision)); err != nil {
			return s.txErr("prune snapshots", err)
		}
		_, err := w.exec(ctx, `DELETE FROM snapshots WHERE aggregate_type = ?1 AND aggregate_id = ?2 AND revision = ?3 AND version NOT IN (
	SELECT version FROM snapshots WHERE aggregate_type = ?1 AND aggregate_id = ?2 AND revision = ?3 ORDER BY version DESC LIMIT ?4)`,
			blob(aggregateType), blob(id), blob(revision), keep)
		return s.txErr("prune snapshots", err)
	})
}
