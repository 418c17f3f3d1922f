package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/evento-go/evento"
	"github.com/evento-go/evento/executor/storekit"
	"github.com/oklog/ulid/v2"
)

// leaseRow is a subscriber's lease columns.
type leaseRow struct {
	holder  string
	token   int64
	expires sql.NullInt64
}

// now returns the lease clock's time, truncated to microseconds as stored.
func (s *Store) now() time.Time { return s.cfg.clock().UTC().Truncate(time.Microsecond) }

func (w *writeConn) lease(ctx context.Context, key string, partition uint32) (leaseRow, bool, error) {
	return leaseOf(ctx, w, key, partition)
}

func leaseOf(ctx context.Context, w ackExec, key string, partition uint32) (leaseRow, bool, error) {
	var r leaseRow
	err := w.queryRow(ctx, `SELECT holder, token, lease_expires_at FROM subscribers WHERE key = ? AND partition = ?`,
		[]any{blob(key), int64(partition)}, &r.holder, &r.token, &r.expires)
	if errors.Is(err, sql.ErrNoRows) {
		return r, false, nil
	}
	return r, err == nil, err
}

// live reports whether the lease row is held at now.
func (r *leaseRow) live(now time.Time) bool {
	return r.holder != "" && r.expires.Valid && r.expires.Int64 > now.UnixMicro()
}

// current reports whether l is the lease the row records and it has not
// expired at now.
func (r *leaseRow) current(l evento.Lease, now time.Time) bool {
	return r.holder == l.Holder && uint64(r.token) == l.Token && r.live(now)
}

// ClaimLease claims (key, partition) for holder for ttl. See
// evento.SubscriberStore.
func (s *Store) ClaimLease(ctx context.Context, key string, partition uint32, holder string, ttl time.Duration) (evento.Lease, error) {
	if err := s.check(ctx); err != nil {
		return evento.Lease{}, err
	}
	if err := storekit.CheckClaim(key, holder, ttl); err != nil {
		return evento.Lease{}, fmt.Errorf("sqlite executor: %w", err)
	}
	var out evento.Lease
	err := s.writeTx(ctx, "claim lease", func(w *writeConn) error {
		now := s.now()
		r, found, err := w.lease(ctx, key, partition)
		if err != nil {
			return s.txErr("claim lease", err)
		}
		if found && r.live(now) && r.holder != holder {
			return fmt.Errorf("sqlite executor: claim lease %q/%d: held by %q until %v: %w",
				key, partition, r.holder, fromMicros(r.expires).Format(time.RFC3339Nano), evento.ErrLeaseHeld)
		}
		exp := now.Add(ttl)
		token := r.token + 1
		if found {
			_, err = w.exec(ctx, `UPDATE subscribers SET holder = ?, token = ?, lease_expires_at = ?, updated_at = ? WHERE key = ? AND partition = ?`,
				blob(holder), token, exp.UnixMicro(), now.UnixMicro(), blob(key), int64(partition))
		} else {
			_, err = w.exec(ctx, `INSERT INTO subscribers (key, partition, cursor, holder, token, lease_expires_at, lag_events, lag_time, last_error, updated_at)
VALUES (?, ?, X'', ?, ?, ?, 0, 0, X'', ?)`,
				blob(key), int64(partition), blob(holder), token, exp.UnixMicro(), now.UnixMicro())
		}
		if err != nil {
			return s.txErr("claim lease", err)
		}
		out = evento.Lease{Key: key, Partition: partition, Holder: holder, Token: uint64(token), ExpiresAt: exp}
		return nil
	})
	return out, err
}

func leaseLost(op string, l evento.Lease) error {
	return fmt.Errorf("sqlite executor: %s %q/%d: lease of %q with token %d is not current: %w", op, l.Key, l.Partition, l.Holder, l.Token, evento.ErrLeaseLost)
}

// RenewLease extends a current lease by ttl from now.
func (s *Store) RenewLease(ctx context.Context, l evento.Lease, ttl time.Duration) (evento.Lease, error) {
	if err := s.check(ctx); err != nil {
		return evento.Lease{}, err
	}
	if err := storekit.CheckRenew(l, ttl); err != nil {
		return evento.Lease{}, fmt.Errorf("sqlite executor: %w", err)
	}
	out := l
	err := s.writeTx(ctx, "renew lease", func(w *writeConn) error {
		now := s.now()
		r, found, err := w.lease(ctx, l.Key, l.Partition)
		if err != nil {
			return s.txErr("renew lease", err)
		}
		if !found || !r.current(l, now) {
			return leaseLost("renew lease", l)
		}
		exp := now.Add(ttl)
		if _, err := w.exec(ctx, `UPDATE subscribers SET lease_expires_at = ?, updated_at = ? WHERE key = ? AND partition = ?`,
			exp.UnixMicro(), now.UnixMicro(), blob(l.Key), int64(l.Partition)); err != nil {
			return s.txErr("renew lease", err)
		}
		out.ExpiresAt = exp
		return nil
	})
	return out, err
}

// ReleaseLease gives a current lease up.
func (s *Store) ReleaseLease(ctx context.Context, l evento.Lease) error {
	if err := s.check(ctx); err != nil {
		return err
	}
	return s.writeTx(ctx, "release lease", func(w *writeConn) error {
		now := s.now()
		r, found, err := w.lease(ctx, l.Key, l.Partition)
		if err != nil {
			return s.txErr("release lease", err)
		}
		if !found || !r.current(l, now) {
			return leaseLost("release lease", l)
		}
		if _, err := w.exec(ctx, `UPDATE subscribers SET holder = X'', lease_expires_at = NULL, updated_at = ? WHERE key = ? AND partition = ?`,
			now.UnixMicro(), blob(l.Key), int64(l.Partition)); err != nil {
			return s.txErr("release lease", err)
		}
		return nil
	})
}

// Acknowledge records a after checking l in the same transaction.
func (s *Store) Acknowledge(ctx context.Context, l evento.Lease, a evento.Ack) error {
	if err := s.check(ctx); err != nil {
		return err
	}
	ack, err := prepareAck(a)
	if err != nil {
		return err
	}
	return s.writeTx(ctx, "acknowledge", func(w *writeConn) error { return s.ackIn(ctx, w, l, ack) })
}

// preparedAck is an Ack checked and encoded outside the transaction.
type preparedAck struct {
	a     evento.Ack
	metas [][]byte // encoded metadata of a.Park
}

func prepareAck(a evento.Ack) (preparedAck, error) {
	if a.Cursor != "" {
		if _, _, err := storekit.DecodeCursor(a.Cursor); err != nil {
			return preparedAck{}, fmt.Errorf("sqlite executor: acknowledge: %w", err)
		}
	}
	p := preparedAck{a: a, metas: make([][]byte, len(a.Park))}
	for i := range a.Park {
		m, err := storekit.EncodeMetadata(a.Park[i].Event.Metadata)
		if err != nil {
			return preparedAck{}, fmt.Errorf("sqlite executor: acknowledge: parked event %d: %w", i, err)
		}
		p.metas[i] = m
	}
	return p, nil
}

// ackIn is the acknowledgement rule, for Acknowledge and AcknowledgeTx:
// inside the caller's write transaction, check that l is current (holder,
// token, expiry by the lease clock) and record the ack.
func (s *Store) ackIn(ctx context.Context, w ackExec, l evento.Lease, p preparedAck) error {
	a := p.a
	lagEvents := a.Lag.Events
	if lagEvents > math.MaxInt64 {
		lagEvents = math.MaxInt64
	}
	now := s.now()
	r, found, err := leaseOf(ctx, w, l.Key, l.Partition)
	if err != nil {
		return s.txErr("acknowledge", err)
	}
	if !found || !r.current(l, now) {
		return leaseLost("acknowledge", l)
	}
	if a.Cursor != "" {
		_, err = w.exec(ctx, `UPDATE subscribers SET cursor = ?, lag_events = ?, lag_time = ?, last_error = ?, updated_at = ?5, acked_at = ?5 WHERE key = ?6 AND partition = ?7`,
			blob(a.Cursor), int64(lagEvents), int64(a.Lag.Time), blob(a.LastError), now.UnixMicro(), blob(l.Key), int64(l.Partition))
	} else {
		_, err = w.exec(ctx, `UPDATE subscribers SET lag_events = ?, lag_time = ?, last_error = ?, updated_at = ?4, acked_at = ?4 WHERE key = ?5 AND partition = ?6`,
			int64(lagEvents), int64(a.Lag.Time), blob(a.LastError), now.UnixMicro(), blob(l.Key), int64(l.Partition))
	}
	if err != nil {
		return s.txErr("acknowledge", err)
	}
	for i := range a.Park {
		p, meta := &a.Park[i], p.metas[i]
		key, part := p.Key, p.Partition
		if key == "" {
			key, part = l.Key, l.Partition
		}
		parkedAt := p.ParkedAt
		if parkedAt.IsZero() {
			parkedAt = now
		}
		e := &p.Event
		if _, err := w.exec(ctx, `INSERT OR REPLACE INTO parked_events
(key, partition, event_id, pos_tx, pos_seq, aggregate_type, aggregate_id, version, name, routing_key, data, metadata, timestamp, error, attempts, parked_at)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			blob(key), int64(part), e.ID[:], int64(e.Position.Tx), int64(e.Position.Seq),
			blob(e.AggregateType), blob(e.AggregateID), int64(e.Version), blob(e.Name), blob(e.RoutingKey),
			e.Data, meta, micros(e.Timestamp), blob(p.Error), int64(p.Attempts), micros(parkedAt)); err != nil {
			return s.txErr("acknowledge: park", err)
		}
	}
	return nil
}

const subscriberCols = `s.key, s.partition, s.cursor, s.holder, s.token, s.lease_expires_at, s.lag_events, s.lag_time, s.last_error, s.updated_at,
(SELECT count(*) FROM parked_events p WHERE p.key = s.key AND p.partition = s.partition), s.acked_at, s.selection`

func scanSubscriber(sc interface{ Scan(...any) error }) (evento.SubscriberState, error) {
	var st evento.SubscriberState
	var part, token, lagEvents, lagTime int64
	var expires, updated, acked sql.NullInt64
	var parked int64
	if err := sc.Scan(&st.Key, &part, &st.Cursor, &st.Holder, &token, &expires, &lagEvents, &lagTime, &st.LastError, &updated, &parked, &acked, &st.Selection); err != nil {
		return st, err
	}
	st.AckedAt = fromMicros(acked)
	if len(st.Selection) == 0 {
		st.Selection = nil
	}
	st.Partition = uint32(part)
	st.Token = uint64(token)
	st.LeaseExpiresAt = fromMicros(expires)
	st.Lag = evento.Lag{Events: uint64(lagEvents), Time: time.Duration(lagTime)}
	st.UpdatedAt = fromMicros(updated)
	st.Parked = int(parked)
	return st, nil
}

// Subscriber returns one subscriber's state, or ErrNotFound.
func (s *Store) Subscriber(ctx context.Context, key string, partition uint32) (evento.SubscriberState, error) {
	if err := s.check(ctx); err != nil {
		return evento.SubscriberState{}, err
	}
	st, err := s.stmt(ctx, `SELECT `+subscriberCols+` FROM subscribers s WHERE s.key = ? AND s.partition = ?`)
	if err != nil {
		return evento.SubscriberState{}, s.wrap("subscriber", err)
	}
	out, err := scanSubscriber(st.QueryRowContext(ctx, blob(key), int64(partition)))
	if errors.Is(err, sql.ErrNoRows) {
		return evento.SubscriberState{}, fmt.Errorf("sqlite executor: subscriber %q/%d: %w", key, partition, evento.ErrNotFound)
	}
	if err != nil {
		return evento.SubscriberState{}, s.wrap("subscriber", err)
	}
	return out, nil
}

// Subscribers returns every subscriber's state, ordered by key and
// partition.
func (s *Store) Subscribers(ctx context.Context) ([]evento.SubscriberState, error) {
	if err := s.check(ctx); err != nil {
		return nil, err
	}
	rows, err := s.query(ctx, `SELECT `+subscriberCols+` FROM subscribers s ORDER BY s.key, s.partition`)
	if err != nil {
		return nil, s.wrap("subscribers", err)
	}
	defer rows.Close()
	out := []evento.SubscriberState{}
	for rows.Next() {
		st, err := scanSubscriber(rows)
		if err != nil {
			return nil, s.wrap("subscribers", err)
		}
		out = append(out, st)
	}
	if err := rows.Err(); err != nil {
		return nil, s.wrap("subscribers", err)
	}
	return out, nil
}

// ParkedEvents returns the parked events of a subscription key, in global
// order.
func (s *Store) ParkedEvents(ctx context.Context, key string) ([]evento.ParkedEvent, error) {
	if err := s.check(ctx); err != nil {
		return nil, err
	}
	rows, err := s.query(ctx, `SELECT key, partition, event_id, pos_tx, pos_seq, aggregate_type, aggregate_id, version, name, routing_key,
data, metadata, timestamp, error, attempts, parked_at FROM parked_events WHERE key = ? ORDER BY pos_tx, pos_seq, partition`, blob(key))
	if err != nil {
		return nil, s.wrap("parked events", err)
	}
	defer rows.Close()
	out := []evento.ParkedEvent{}
	for rows.Next() {
		var p evento.ParkedEvent
		var part, tx, seq, version, attempts int64
		var id, meta []byte
		var ts, parkedAt sql.NullInt64
		e := &p.Event
		if err := rows.Scan(&p.Key, &part, &id, &tx, &seq, &e.AggregateType, &e.AggregateID, &version, &e.Name, &e.RoutingKey,
			&e.Data, &meta, &ts, &p.Error, &attempts, &parkedAt); err != nil {
			return nil, s.wrap("parked events", err)
		}
		copy(e.ID[:], id)
		p.Partition = uint32(part)
		e.Position = evento.Position{Tx: uint64(tx), Seq: uint64(seq)}
		e.Version = uint64(version)
		if e.Metadata, err = storekit.DecodeMetadata(meta); err != nil {
			return nil, s.wrap("parked events", err)
		}
		e.Timestamp = fromMicros(ts)
		p.Attempts = int(attempts)
		p.ParkedAt = fromMicros(parkedAt)
		out = append(out, p)
	}
	if err := rows.Err(); err != nil {
		return nil, s.wrap("parked events", err)
	}
	return out, nil
}

// DeleteParked removes a parked event, or returns ErrNotFound.
func (s *Store) DeleteParked(ctx context.Context, key string, partition uint32, eventID ulid.ULID) error {
	if err := s.check(ctx); err != nil {
		return err
	}
	return s.writeTx(ctx, "delete parked", func(w *writeConn) error {
		res, err := w.exec(ctx, `DELETE FROM parked_events WHERE key = ? AND partition = ? AND event_id = ?`, blob(key), int64(partition), eventID[:])
		if err != nil {
			return s.txErr("delete parked", err)
		}
		n, err := res.RowsAffected()
		if err != nil {
			return s.txErr("delete parked", err)
		}
		if n == 0 {
			return fmt.Errorf("sqlite executor: parked event %s of %q/%d: %w", eventID, key, partition, evento.ErrNotFound)
		}
		return nil
	})
}

// ResetSubscriber sets a subscriber's cursor (creating the subscriber if
// needed), revokes its lease and bumps its token, so the holder's next
// acknowledgement fails with ErrLeaseLost.
func (s *Store) ResetSubscriber(ctx context.Context, key string, partition uint32, cursor string) error {
	if err := s.check(ctx); err != nil {
		return err
	}
	if cursor != "" {
		if _, _, err := storekit.DecodeCursor(cursor); err != nil {
			return fmt.Errorf("sqlite executor: reset subscriber: %w", err)
		}
	}
	return s.writeTx(ctx, "reset subscriber", func(w *writeConn) error {
		now := s.now()
		if _, err := w.exec(ctx, `INSERT INTO subscribers (key, partition, cursor, holder, token, lease_expires_at, lag_events, lag_time, last_error, updated_at)
VALUES (?1, ?2, ?3, X'', 1, NULL, 0, 0, X'', ?4)
ON CONFLICT (key, partition) DO UPDATE SET cursor = ?3, holder = X'', token = token + 1, lease_expires_at = NULL, selection = NULL, updated_at = ?4`,
			blob(key), int64(partition), blob(cursor), now.UnixMicro()); err != nil {
			return s.txErr("reset subscriber", err)
		}
		return nil
	})
}

// DeleteSubscriber removes a subscriber and its parked events (see
// evento.SubscriberStore), or returns ErrNotFound.
func (s *Store) DeleteSubscriber(ctx context.Context, key string, partition uint32) error {
	if err := s.check(ctx); err != nil {
		return err
	}
	return s.writeTx(ctx, "delete subscriber", func(w *writeConn) error {
		res, err := w.exec(ctx, `DELETE FROM subscribers WHERE key = ? AND partition = ?`, blob(key), int64(partition))
		if err != nil {
			return s.txErr("delete subscriber", err)
		}
		n, err := res.RowsAffected()
		if err != nil {
			return s.txErr("delete subscriber", err)
		}
		if n == 0 {
			return fmt.Errorf("sqlite executor: subscriber %q/%d: %w", key, partition, evento.ErrNotFound)
		}
		if _, err := w.exec(ctx, `DELETE FROM parked_events WHERE key = ? AND partition = ?`, blob(key), int64(partition)); err != nil {
			return s.txErr("delete subscriber", err)
		}
		return nil
	})
}

// RecordSelection records sel as the selection of (key, partition) unless
// one is recorded, and returns the recorded one (see
// evento.SubscriberStore).
func (s *Store) RecordSelection(ctx context.Context, key string, partition uint32, sel []byte) ([]byte, error) {
	if err := s.check(ctx); err != nil {
		return nil, err
	}
	if err := storekit.CheckSelection(key, sel); err != nil {
		return nil, fmt.Errorf("sqlite executor: %w", err)
	}
	var out []byte
	err := s.writeTx(ctx, "record selection", func(w *writeConn) error {
		now := s.now()
		if _, err := w.exec(ctx, `INSERT INTO subscribers (key, partition, cursor, holder, token, lease_expires_at, lag_events, lag_time, last_error, updated_at, selection)
VALUES (?1, ?2, X'', X'', 0, NULL, 0, 0, X'', ?3, ?4)
ON CONFLICT (key, partition) DO UPDATE SET selection = ?4, updated_at = ?3 WHERE selection IS NULL OR length(selection) = 0`,
			blob(key), int64(partition), now.UnixMicro(), sel); err != nil {
			return s.txErr("record selection", err)
		}
		if err := w.queryRow(ctx, `SELECT selection FROM subscribers WHERE key = ? AND partition = ?`,
			[]any{blob(key), int64(partition)}, &out); err != nil {
			return s.txErr("record selection", err)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// AnnounceWorker records worker's presence on key until ttl from now (the
// lease clock), deletes the expired presences of key and returns the live
// workers in byte order (see evento.SubscriberStore).
func (s *Store) AnnounceWorker(ctx context.Context, key, worker string, ttl time.Duration) ([]string, error) {
	if err := s.check(ctx); err != nil {
		return nil, err
	}
	if err := storekit.CheckPresence(key, worker, ttl); err != nil {
		return nil, fmt.Errorf("sqlite executor: %w", err)
	}
	var live []string
	err := s.writeTx(ctx, "announce worker", func(w *writeConn) error {
		now := s.now()
		if _, err := w.exec(ctx, `INSERT INTO subscriber_workers (key, worker, expires_at) VALUES (?1, ?2, ?3)
ON CONFLICT (key, worker) DO UPDATE SET expires_at = ?3`, blob(key), blob(worker), now.Add(ttl).UnixMicro()); err != nil {
			return s.txErr("announce worker", err)
		}
		if _, err := w.exec(ctx, `DELETE FROM subscriber_workers WHERE key = ? AND expires_at <= ?`, blob(key), now.UnixMicro()); err != nil {
			return s.txErr("announce worker", err)
		}
		rows, err := w.query(ctx, `SELECT worker FROM subscriber_workers WHERE key = ? ORDER BY worker`, blob(key))
		if err != nil {
			return s.txErr("announce worker", err)
		}
		defer rows.Close()
		live = live[:0]
		for rows.Next() {
			var name string
			if err := rows.Scan(&name); err != nil {
				return s.txErr("announce worker", err)
			}
			live = append(live, name)
		}
		if err := rows.Err(); err != nil {
			return s.txErr("announce worker", err)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return live, nil
}

// WithdrawWorker removes worker's presence on key.
func (s *Store) WithdrawWorker(ctx context.Context, key, worker string) error {
	if err := s.check(ctx); err != nil {
		return err
	}
	if err := storekit.CheckPresence(key, worker, 1); err != nil {
		return fmt.Errorf("sqlite executor: %w", err)
	}
	return s.writeTx(ctx, "withdraw worker", func(w *writeConn) error {
		if _, err := w.exec(ctx, `DELETE FROM subscriber_workers WHERE key = ? AND worker = ?`, blob(key), blob(worker)); err != nil {
			return s.txErr("withdraw worker", err)
		}
		return nil
	})
}
