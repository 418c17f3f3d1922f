package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/evento-go/evento"
	"github.com/evento-go/evento/executor/storekit"
	"github.com/jackc/pgx/v5"
	"github.com/oklog/ulid/v2"
)

// Lease expiry is always judged by the server's clock (now()), and every
// check of a lease happens in the statement that acts on it.

// ClaimLease claims (key, partition) for holder for ttl. See
// evento.SubscriberStore.
func (s *Store) ClaimLease(ctx context.Context, key string, partition uint32, holder string, ttl time.Duration) (evento.Lease, error) {
	if err := s.check(); err != nil {
		return evento.Lease{}, err
	}
	if err := storekit.CheckClaim(key, holder, ttl); err != nil {
		return evento.Lease{}, fmt.Errorf("postgres executor: %w", err)
	}
	var token int64
	var exp time.Time
	err := s.pool.QueryRow(ctx, `INSERT INTO `+s.schema+`.subscribers AS s (key, partition, holder, token, lease_expires_at, updated_at)
VALUES ($1, $2, $3, 1, now() + $4::bigint * interval '1 microsecond', now())
ON CONFLICT (key, partition) DO UPDATE
	SET holder = EXCLUDED.holder, token = s.token + 1, lease_expires_at = EXCLUDED.lease_expires_at, updated_at = now()
	WHERE s.holder = EXCLUDED.holder OR s.holder = ''::bytea OR s.lease_expires_at IS NULL OR s.lease_expires_at <= now()
RETURNING token, lease_expires_at`, []byte(key), int64(partition), []byte(holder), ttl.Microseconds()).Scan(&token, &exp)
	if errors.Is(err, pgx.ErrNoRows) {
		return evento.Lease{}, fmt.Errorf("postgres executor: claim %q/%d for %q: %w", key, partition, holder, evento.ErrLeaseHeld)
	}
	if err != nil {
		return evento.Lease{}, s.wrap("claim lease", err)
	}
	return evento.Lease{Key: key, Partition: partition, Holder: holder, Token: uint64(token), ExpiresAt: exp.UTC()}, nil
}

// RenewLease extends a live lease by ttl from the server's now. See
// evento.SubscriberStore.
func (s *Store) RenewLease(ctx context.Context, l evento.Lease, ttl time.Duration) (evento.Lease, error) {
	if err := s.check(); err != nil {
		return evento.Lease{}, err
	}
	if err := storekit.CheckRenew(l, ttl); err != nil {
		return evento.Lease{}, fmt.Errorf("postgres executor: %w", err)
	}
	var exp time.Time
	err := s.pool.QueryRow(ctx, `UPDATE `+s.schema+`.subscribers
SET lease_expires_at = now() + $5::bigint * interval '1 microsecond', updated_at = now()
WHERE key = $1 AND partition = $2 AND holder = $3 AND token = $4 AND lease_expires_at > now()
RETURNING lease_expires_at`, []byte(l.Key), int64(l.Partition), []byte(l.Holder), int64(l.Token), ttl.Microseconds()).Scan(&exp)
	if errors.Is(err, pgx.ErrNoRows) {
		return evento.Lease{}, fmt.Errorf("postgres executor: renew %q/%d token %d: %w", l.Key, l.Partition, l.Token, evento.ErrLeaseLost)
	}
	if err != nil {
		return evento.Lease{}, s.wrap("renew lease", err)
	}
	l.ExpiresAt = exp.UTC()
	return l, nil
}

// ReleaseLease frees a lease so another worker can claim it at once; a
// lease that is not current (another token, or expired) gives
// ErrLeaseLost. See evento.SubscriberStore.
func (s *Store) ReleaseLease(ctx context.Context, l evento.Lease) error {
	if err := s.check(); err != nil {
		return err
	}
	tag, err := s.pool.Exec(ctx, `UPDATE `+s.schema+`.subscribers
SET holder = ''::bytea, lease_expires_at = NULL, updated_at = now()
WHERE key = $1 AND partition = $2 AND holder = $3 AND token = $4 AND lease_expires_at > now()`, []byte(l.Key), int64(l.Partition), []byte(l.Holder), int64(l.Token))
	if err != nil {
		return s.wrap("release lease", err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("postgres executor: release %q/%d token %d: %w", l.Key, l.Partition, l.Token, evento.ErrLeaseLost)
	}
	return nil
}

// Acknowledge records a if l is still the current, live lease, in one
// transaction. See evento.SubscriberStore.
func (s *Store) Acknowledge(ctx context.Context, l evento.Lease, a evento.Ack) error {
	if err := s.check(); err != nil {
		return err
	}
	if a.Cursor != "" {
		if _, _, err := storekit.DecodeCursor(a.Cursor); err != nil {
			return fmt.Errorf("postgres executor: acknowledge: %w", err)
		}
	}
	if len(a.Park) == 0 {
		update, args := s.ackUpdate(l, a, "now()")
		tag, err := s.pool.Exec(ctx, update, args...)
		if err != nil {
			return s.wrap("acknowledge", err)
		}
		if tag.RowsAffected() == 0 {
			return ackLost(l)
		}
		return nil
	}
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error { return s.ackIn(ctx, tx, l, a, "now()") })
	if errors.Is(err, evento.ErrLeaseLost) {
		return err
	}
	return s.wrap("acknowledge", err)
}

func ackLost(l evento.Lease) error {
	return fmt.Errorf("postgres executor: acknowledge %q/%d token %d: %w", l.Key, l.Partition, l.Token, evento.ErrLeaseLost)
}

// ackUpdate is the acknowledgement's conditional update: it records a only
// on the row of the current, live lease l, judged by the server's clock
// (clock is now() for a one-statement acknowledgement, clock_timestamp()
// inside a longer transaction, whose now() is its start).
func (s *Store) ackUpdate(l evento.Lease, a evento.Ack, clock string) (string, []any) {
	update := `UPDATE ` + s.schema + `.subscribers
SET cursor = CASE WHEN $5 = '' THEN cursor ELSE $5 END, lag_events = $6, lag_time_us = $7, last_error = $8, updated_at = ` + clock + `, acked_at = ` + clock + `
WHERE key = $1 AND partition = $2 AND holder = $3 AND token = $4 AND lease_expires_at > ` + clock
	args := []any{[]byte(l.Key), int64(l.Partition), []byte(l.Holder), int64(l.Token), a.Cursor,
		int64(min(a.Lag.Events, 1<<63-1)), a.Lag.Time.Microseconds(), []byte(a.LastError)}
	return update, args
}

// ackIn is the acknowledgement rule inside tx: the conditional update
// (ErrLeaseLost when l is not current) and the parked events.
func (s *Store) ackIn(ctx context.Context, tx pgx.Tx, l evento.Lease, a evento.Ack, clock string) error {
	update, args := s.ackUpdate(l, a, clock)
	tag, err := tx.Exec(ctx, update, args...)
	if err != nil {
		return err
	}
	if tag.RowsAffected() == 0 {
		return ackLost(l)
	}
	if len(a.Park) == 0 {
		return nil
	}
	b := &pgx.Batch{}
	for _, p := range a.Park {
		e := &p.Event
		md, err := storekit.EncodeMetadata(e.Metadata)
		if err != nil {
			return err
		}
		var parkedAt any
		if !p.ParkedAt.IsZero() {
			parkedAt = p.ParkedAt
		}
		b.Queue(`INSERT INTO `+s.schema+`.parked (key, partition, event_id, tx, seq, aggregate_type, aggregate_id, version, name, routing_key, data, metadata, ts, error, attempts, parked_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, coalesce($16::timestamptz, `+clock+`))
ON CONFLICT (key, partition, event_id) DO UPDATE SET
	tx = EXCLUDED.tx, seq = EXCLUDED.seq, aggregate_type = EXCLUDED.aggregate_type, aggregate_id = EXCLUDED.aggregate_id,
	version = EXCLUDED.version, name = EXCLUDED.name, routing_key = EXCLUDED.routing_key, data = EXCLUDED.data,
	metadata = EXCLUDED.metadata, ts = EXCLUDED.ts, error = EXCLUDED.error, attempts = EXCLUDED.attempts, parked_at = EXCLUDED.parked_at`,
			[]byte(l.Key), int64(l.Partition), e.ID[:], e.Position.Tx, int64(e.Position.Seq), []byte(e.AggregateType), []byte(e.AggregateID),
			int64(e.Version), []byte(e.Name), []byte(e.RoutingKey), e.Data, md, e.Timestamp, []byte(p.Error), int64(p.Attempts), parkedAt)
	}
	return tx.SendBatch(ctx, b).Close()
}

// subscriberSelectSQL returns the SELECT … FROM of a subscriber's state, as
// scanSubscriber reads it, over schema's subscribers aliased s.
func subscriberSelectSQL(schema string) string {
	return `SELECT s.key, s.partition, s.cursor, s.holder, s.token, s.lease_expires_at, s.lag_events, s.lag_time_us, s.last_error, s.updated_at,
	(SELECT count(*) FROM ` + schema + `.parked p WHERE p.key = s.key AND p.partition = s.partition), s.acked_at, s.selection
FROM ` + schema + `.subscribers s`
}

func scanSubscriber(r pgx.Row) (evento.SubscriberState, error) {
	var (
		key, holder, lastErr []byte
		part, token, lagE    int64
		lagT, parked         int64
		cur                  string
		exp, acked           *time.Time
		upd                  time.Time
		sel                  []byte
	)
	if err := r.Scan(&key, &part, &cur, &holder, &token, &exp, &lagE, &lagT, &lastErr, &upd, &parked, &acked, &sel); err != nil {
		return evento.SubscriberState{}, err
	}
	st := evento.SubscriberState{
		Key: string(key), Partition: uint32(part), Cursor: cur, Holder: string(holder), Token: uint64(token),
		Lag:       evento.Lag{Events: uint64(lagE), Time: time.Duration(lagT) * time.Microsecond},
		LastError: string(lastErr), Parked: int(parked), UpdatedAt: upd.UTC(),
	}
	if exp != nil {
		st.LeaseExpiresAt = exp.UTC()
	}
	if acked != nil {
		st.AckedAt = acked.UTC()
	}
	if len(sel) > 0 {
		st.Selection = sel
	}
	return st, nil
}

// Subscriber returns one subscriber's state, or evento.ErrNotFound.
func (s *Store) Subscriber(ctx context.Context, key string, partition uint32) (evento.SubscriberState, error) {
	if err := s.check(); err != nil {
		return evento.SubscriberState{}, err
	}
	st, err := scanSubscriber(s.pool.QueryRow(ctx, s.q.subscriber+` WHERE s.key = $1 AND s.partition = $2`,
		[]byte(key), int64(partition)))
	if errors.Is(err, pgx.ErrNoRows) {
		return evento.SubscriberState{}, fmt.Errorf("postgres executor: subscriber %q/%d: %w", key, partition, evento.ErrNotFound)
	}
	if err != nil {
		return evento.SubscriberState{}, s.wrap("subscriber", err)
	}
	return st, nil
}

// Subscribers returns every subscriber's state ordered by key and partition.
func (s *Store) Subscribers(ctx context.Context) ([]evento.SubscriberState, error) {
	if err := s.check(); err != nil {
		return nil, err
	}
	rows, err := s.pool.Query(ctx, s.q.subscriber+` ORDER BY s.key, s.partition`)
	if err != nil {
		return nil, s.wrap("subscribers", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (evento.SubscriberState, error) { return scanSubscriber(r) })
	if err != nil {
		return nil, s.wrap("subscribers", err)
	}
	return out, nil
}

// ParkedEvents returns a key's parked events, all partitions, in global
// order.
func (s *Store) ParkedEvents(ctx context.Context, key string) ([]evento.ParkedEvent, error) {
	if err := s.check(); err != nil {
		return nil, err
	}
	rows, err := s.pool.Query(ctx, `SELECT partition, error, attempts, parked_at, event_id, tx, seq, aggregate_type, aggregate_id, version, name, routing_key, data, metadata, ts
FROM `+s.schema+`.parked WHERE key = $1 ORDER BY tx, seq, partition`, []byte(key))
	if err != nil {
		return nil, s.wrap("parked events", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (evento.ParkedEvent, error) {
		var (
			part, attempts, seq, version int64
			errText, id, t, i, n, rk, d  []byte
			md                           []byte
			tx                           uint64
			parkedAt, ts                 time.Time
		)
		if err := r.Scan(&part, &errText, &attempts, &parkedAt, &id, &tx, &seq, &t, &i, &version, &n, &rk, &d, &md, &ts); err != nil {
			return evento.ParkedEvent{}, err
		}
		p := evento.ParkedEvent{Key: key, Partition: uint32(part), Error: string(errText), Attempts: int(attempts), ParkedAt: parkedAt.UTC()}
		p.Event = evento.Event{AggregateType: string(t), AggregateID: string(i), Version: uint64(version), Name: string(n),
			RoutingKey: string(rk), Timestamp: ts.UTC(), Position: evento.Position{Tx: tx, Seq: uint64(seq)}}
		if len(d) > 0 {
			p.Event.Data = d
		}
		copy(p.Event.ID[:], id)
		m, err := storekit.DecodeMetadata(md)
		if err != nil {
			return evento.ParkedEvent{}, err
		}
		p.Event.Metadata = m
		return p, nil
	})
	if err != nil {
		return nil, s.wrap("parked events", err)
	}
	return out, nil
}

// DeleteParked removes a parked event, or returns evento.ErrNotFound.
func (s *Store) DeleteParked(ctx context.Context, key string, partition uint32, eventID ulid.ULID) error {
	if err := s.check(); err != nil {
		return err
	}
	tag, err := s.pool.Exec(ctx, `DELETE FROM `+s.schema+`.parked WHERE key = $1 AND partition = $2 AND event_id = $3`, []byte(key), int64(partition), eventID[:])
	if err != nil {
		return s.wrap("delete parked", err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("postgres executor: parked event %s of %q/%d: %w", eventID, key, partition, evento.ErrNotFound)
	}
	return nil
}

// ResetSubscriber sets a subscriber's cursor (creating the subscriber if
// needed) and bumps its token, so the current holder's next acknowledgement
// fails with evento.ErrLeaseLost.
func (s *Store) ResetSubscriber(ctx context.Context, key string, partition uint32, cursor string) error {
	if err := s.check(); err != nil {
		return err
	}
	if cursor != "" {
		if _, _, err := storekit.DecodeCursor(cursor); err != nil {
			return fmt.Errorf("postgres executor: reset subscriber: %w", err)
		}
	}
	_, err := s.pool.Exec(ctx, `INSERT INTO `+s.schema+`.subscribers AS s (key, partition, cursor, token, updated_at)
VALUES ($1, $2, $3, 1, now())
ON CONFLICT (key, partition) DO UPDATE SET cursor = EXCLUDED.cursor, token = s.token + 1,
	holder = ''::bytea, lease_expires_at = NULL, selection = NULL, updated_at = now()`,
		[]byte(key), int64(partition), cursor)
	return s.wrap("reset subscriber", err)
}

// DeleteSubscriber removes a subscriber and its parked events (see
// evento.SubscriberStore), or returns evento.ErrNotFound. One statement, so
// both deletions commit together.
func (s *Store) DeleteSubscriber(ctx context.Context, key string, partition uint32) error {
	if err := s.check(); err != nil {
		return err
	}
	var n int64
	err := s.pool.QueryRow(ctx, `WITH sub AS (
	DELETE FROM `+s.schema+`.subscribers WHERE key = $1 AND partition = $2 RETURNING 1
), parked AS (
	DELETE FROM `+s.schema+`.parked WHERE key = $1 AND partition = $2 AND EXISTS (SELECT 1 FROM sub)
)
SELECT count(*) FROM sub`, []byte(key), int64(partition)).Scan(&n)
	if err != nil {
		return s.wrap("delete subscriber", err)
	}
	if n == 0 {
		return fmt.Errorf("postgres executor: subscriber %q/%d: %w", key, partition, evento.ErrNotFound)
	}
	return nil
}

// RecordSelection records sel as the selection of (key, partition) unless
// one is recorded, and returns the recorded one (see
// evento.SubscriberStore). The upsert always takes the row lock (DO UPDATE
// keeps a recorded selection), so RETURNING shows the latest committed
// selection even when another worker recorded one concurrently.
func (s *Store) RecordSelection(ctx context.Context, key string, partition uint32, sel []byte) ([]byte, error) {
	if err := s.check(); err != nil {
		return nil, err
	}
	if err := storekit.CheckSelection(key, sel); err != nil {
		return nil, fmt.Errorf("postgres executor: %w", err)
	}
	var out []byte
	err := s.pool.QueryRow(ctx, `INSERT INTO `+s.schema+`.subscribers AS s (key, partition, selection, updated_at)
VALUES ($1, $2, $3, now())
ON CONFLICT (key, partition) DO UPDATE SET
	selection  = CASE WHEN s.selection IS NULL OR length(s.selection) = 0 THEN EXCLUDED.selection ELSE s.selection END,
	updated_at = CASE WHEN s.selection IS NULL OR length(s.selection) = 0 THEN now() ELSE s.updated_at END
RETURNING selection`, []byte(key), int64(partition), sel).Scan(&out)
	if err != nil {
		return nil, s.wrap("record selection", err)
	}
	return out, nil
}

// AnnounceWorker records worker's presence on key until ttl from the
// server's now, deletes the expired presences of key and returns the live
// workers in byte order (see evento.SubscriberStore). One statement: the
// upsert's row is not visible to the statement's own snapshot, so it is
// added from RETURNING.
func (s *Store) AnnounceWorker(ctx context.Context, key, worker string, ttl time.Duration) ([]string, error) {
	if err := s.check(); err != nil {
		return nil, err
	}
	if err := storekit.CheckPresence(key, worker, ttl); err != nil {
		return nil, fmt.Errorf("postgres executor: %w", err)
	}
	rows, err := s.pool.Query(ctx, `WITH up AS (
	INSERT INTO `+s.schema+`.subscriber_workers (key, worker, expires_at)
	VALUES ($1, $2, now() + $3::bigint * interval '1 microsecond')
	ON CONFLICT (key, worker) DO UPDATE SET expires_at = EXCLUDED.expires_at
	RETURNING worker
), gone AS (
	DELETE FROM `+s.schema+`.subscriber_workers WHERE key = $1 AND worker <> $2 AND expires_at <= now()
)
SELECT worker FROM up
UNION
SELECT worker FROM `+s.schema+`.subscriber_workers WHERE key = $1 AND worker <> $2 AND expires_at > now()
ORDER BY 1`, []byte(key), []byte(worker), ttl.Microseconds())
	if err != nil {
		return nil, s.wrap("announce worker", err)
	}
	live, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (string, error) {
		var w []byte
		err := r.Scan(&w)
		return string(w), err
	})
	if err != nil {
		return nil, s.wrap("announce worker", err)
	}
	return live, nil
}

// WithdrawWorker removes worker's presence on key.
func (s *Store) WithdrawWorker(ctx context.Context, key, worker string) error {
	if err := s.check(); err != nil {
		return err
	}
	if err := storekit.CheckPresence(key, worker, 1); err != nil {
		return fmt.Errorf("postgres executor: %w", err)
	}
	_, err := s.pool.Exec(ctx, `DELETE FROM `+s.schema+`.subscriber_workers WHERE key = $1 AND worker = $2`, []byte(key), []byte(worker))
	return s.wrap("withdraw worker", err)
}
