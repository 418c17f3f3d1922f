package subscription

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/evento-go/evento"
	"github.com/evento-go/evento/cursor"
	"github.com/evento-go/evento/executor/storekit"
)

// StatusCountCap is the most events Status reads per subscriber to count
// its pending events exactly; past it the count is an estimate.
var StatusCountCap = 10_000

// SubscriberStatus is a subscriber's stored state with its lag computed
// when asked.
type SubscriberStatus struct {
	evento.SubscriberState
	// Position is the position of the stored cursor (zero at the start).
	Position evento.Position
	// Selection is the stored selection, nil when none is recorded (a
	// subscriber no worker has started since it was created or reset) or
	// it does not decode.
	Selection *Selection
	// Pending is the number of events after the cursor that this
	// subscriber (its selection, its partition) still has to process.
	Pending uint64
	// PendingExact says whether Pending was counted by reading those
	// events (up to StatusCountCap); otherwise it is an estimate from
	// positions: the rate of matching events in what was read applied to
	// the distance to the head, or, without a stored selection, the
	// distance to the head over every event (exact for single-sequence
	// backends, Pebble and SQLite, when nothing was read).
	PendingExact bool
	// SinceAck is the time since the last acknowledgement (by this
	// process's clock against the store's AckedAt), 0 if there was none.
	SinceAck time.Duration
	// OldestPending is the timestamp of the first event this subscriber
	// still has to process (zero when none, or when no selection is
	// recorded): the age of its backlog, for lag in time.
	OldestPending time.Time
}

// MarshalText makes a Selection print as its String in JSON.
func (s Selection) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// Status returns every subscriber (each key and partition), or those of
// the given keys, with its stored state — cursor, lease holder, expiry and
// token, last error, parked count, last update and acknowledgement — and
// its lag computed now from the store: the events of its own stored
// selection (types, routing, partition) after its cursor, counted by
// reading them up to StatusCountCap (exact) or estimated past it. For the
// CLI and health checks; each subscriber costs up to StatusCountCap events
// read.
func Status(ctx context.Context, exec evento.Executor, keys ...string) ([]SubscriberStatus, error) {
	subs, err := exec.Subscribers(ctx)
	if err != nil {
		return nil, fmt.Errorf("subscription: status: %w", err)
	}
	var head evento.Position
	haveHead := false
	out := make([]SubscriberStatus, 0, len(subs))
	for _, s := range subs {
		if len(keys) > 0 && !slices.Contains(keys, s.Key) {
			continue
		}
		st := SubscriberStatus{SubscriberState: s}
		if !s.AckedAt.IsZero() {
			st.SinceAck = max(time.Since(s.AckedAt), 0)
		}
		if s.Cursor != "" {
			if _, pos, err := storekit.DecodeCursor(s.Cursor); err == nil {
				st.Position = pos
			}
		}
		if !haveHead {
			if head, err = exec.Head(ctx); err != nil {
				return nil, fmt.Errorf("subscription: status: head: %w", err)
			}
			haveHead = true
		}
		if len(s.Selection) > 0 {
			if sel, err := decodeSelection(s.Selection); err == nil {
				st.Selection = &sel
			}
		}
		if err := st.countPending(ctx, exec, head); err != nil {
			return nil, fmt.Errorf("subscription: status of %q partition %d: %w", s.Key, s.Partition, err)
		}
		out = append(out, st)
	}
	return out, nil
}

// countPending fills Pending and PendingExact.
func (st *SubscriberStatus) countPending(ctx context.Context, exec evento.Executor, head evento.Position) error {
	if st.Selection == nil {
		st.Pending = lagEvents(head, st.Position)
		return nil
	}
	q := st.Selection.Query()
	n := st.Selection.Partitions
	after, read := st.Cursor, 0
	var last evento.Position
	for read < StatusCountCap {
		q.Args = cursor.Forward(min(cursor.MaxPageSize, StatusCountCap-read), after)
		page, err := exec.Read(ctx, q)
		if err != nil {
			return err
		}
		for i := range page.Events {
			e := &page.Events[i]
			if n <= 1 || PartitionOf(e.AggregateID, n) == st.Partition {
				if st.Pending == 0 {
					st.OldestPending = e.Timestamp
				}
				st.Pending++
			}
		}
		read += len(page.Events)
		if len(page.Events) > 0 {
			last = page.Events[len(page.Events)-1].Position
			after = page.Events[len(page.Events)-1].Cursor()
		}
		if !page.PageInfo.HasNextPage || len(page.Events) == 0 {
			st.PendingExact = true
			return nil
		}
	}
	// Past the cap: apply the rate of matching events per position step
	// in what was read to the rest of the distance to the head.
	if span := lagEvents(last, st.Position); span > 0 {
		st.Pending += uint64(float64(lagEvents(head, last)) * float64(st.Pending) / float64(span))
	}
	return nil
}
