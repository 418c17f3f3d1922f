package pebble

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	pdb "github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/evento-go/evento"
	"github.com/evento-go/evento/cursor"
	"github.com/evento-go/evento/executor"
	"github.com/evento-go/evento/executor/storekit"
)

func setup(t *testing.T, opts ...Option) *Store {
	t.Helper()
	s, err := OpenMemory(t.Context(), opts...)
	if err != nil {
		t.Fatalf("OpenMemory: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

func ev(typ, id string, v uint64, name, rk string) evento.Event {
	return evento.Event{AggregateType: typ, AggregateID: id, Version: v, Name: name, RoutingKey: rk, Data: []byte(fmt.Sprintf("%s/%s/%d", typ, id, v))}
}

func mustWrite(t *testing.T, s *Store, events ...evento.Event) []evento.Event {
	t.Helper()
	if err := s.Write(t.Context(), events); err != nil {
		t.Fatalf("Write: %v", err)
	}
	return events
}

func TestWriteAndReadBack(t *testing.T) {
	s := setup(t)
	meta := evento.Metadata{CorrelationID: "c", Actor: "me", Extra: map[string]string{"k": "v"}}
	in := []evento.Event{ev("T", "a", 1, "Created", "rk"), ev("T", "a", 2, "Renamed", "rk")}
	in[1].Metadata = meta
	mustWrite(t, s, in...)
	for i, e := range in {
		if e.Position.Seq != uint64(i+1) || e.Position.Tx != 0 {
			t.Errorf("event %d position %v, want %d", i, e.Position, i+1)
		}
		if e.Timestamp.Location() != time.UTC || !e.Timestamp.Equal(e.Timestamp.Truncate(time.Microsecond)) {
			t.Errorf("event %d timestamp %v not UTC micros", i, e.Timestamp)
		}
	}
	if in[1].ID.Compare(in[0].ID) <= 0 {
		t.Error("ULIDs do not increase")
	}
	got, err := s.ReadAggregate(t.Context(), "T", "a", 0, 0)
	if err != nil || len(got) != 2 {
		t.Fatalf("ReadAggregate = %v, %v", got, err)
	}
	for i := range got {
		if !got[i].Equal(&in[i]) {
			t.Errorf("ReadAggregate[%d] = %+v, want %+v", i, got[i], in[i])
		}
	}
	page, err := s.Read(t.Context(), evento.All())
	if err != nil || len(page.Events) != 2 || !page.Events[1].Equal(&in[1]) {
		t.Fatalf("Read(All) = %+v, %v", page, err)
	}
	if v, err := s.AggregateVersion(t.Context(), "T", "a"); err != nil || v != 2 {
		t.Errorf("AggregateVersion = %d, %v", v, err)
	}
	if v, err := s.AggregateVersion(t.Context(), "T", "none"); err != nil || v != 0 {
		t.Errorf("AggregateVersion(missing) = %d, %v", v, err)
	}
	if h, err := s.Head(t.Context()); err != nil || h.Seq != 2 {
		t.Errorf("Head = %v, %v", h, err)
	}
	part, err := s.ReadAggregate(t.Context(), "T", "a", 1, 1)
	if err != nil || len(part) != 1 || part[0].Version != 2 {
		t.Errorf("ReadAggregate(after 1, limit 1) = %v, %v", part, err)
	}
}

func TestVersionConflictFailsAlone(t *testing.T) {
	s := setup(t)
	mustWrite(t, s, ev("T", "a", 1, "X", ""))
	err := s.Write(t.Context(), []evento.Event{ev("T", "b", 1, "X", ""), ev("T", "a", 1, "X", "")})
	var vc *evento.VersionConflictError
	if !errors.As(err, &vc) || !errors.Is(err, evento.ErrVersionConflict) || vc.AggregateID != "a" || vc.Expected != 0 || vc.Actual != 1 {
		t.Fatalf("Write conflicting = %v, want conflict on a (0 vs 1)", err)
	}
	if v, _ := s.AggregateVersion(t.Context(), "T", "b"); v != 0 {
		t.Errorf("partial batch landed: b at version %d", v)
	}
	// Concurrent writers to one aggregate: exactly one wins per version.
	var wg sync.WaitGroup
	var mu sync.Mutex
	wins, conflicts := 0, 0
	for range 16 {
		wg.Go(func() {
			err := s.Write(context.Background(), []evento.Event{ev("T", "a", 2, "X", "")})
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				wins++
			case errors.Is(err, evento.ErrVersionConflict):
				conflicts++
			default:
				t.Errorf("Write: %v", err)
			}
		})
	}
	wg.Wait()
	if wins != 1 || conflicts != 15 {
		t.Errorf("wins %d conflicts %d, want 1 and 15", wins, conflicts)
	}
}

func TestInvalidInput(t *testing.T) {
	s := setup(t)
	if err := s.Write(t.Context(), nil); !errors.Is(err, evento.ErrInvalidEvent) {
		t.Errorf("Write(nil) = %v", err)
	}
	mustWrite(t, s, ev("T", "a", 1, "X", ""))
	for _, c := range []string{"garbage", storekit.EncodeCursor([16]byte{1}, evento.Position{Seq: 1}), storekit.EncodeCursor([16]byte{1}, evento.Position{Seq: 99}), storekit.EncodeCursor([16]byte{1}, evento.Position{Tx: 3, Seq: 1})} {
		if _, err := s.Read(t.Context(), evento.All().First(1, c)); !errors.Is(err, evento.ErrInvalidCursor) {
			t.Errorf("Read(after %q) = %v, want ErrInvalidCursor", c, err)
		}
		if _, err := s.Read(t.Context(), evento.All().Last(1, c)); !errors.Is(err, evento.ErrInvalidCursor) {
			t.Errorf("Read(before %q) = %v, want ErrInvalidCursor", c, err)
		}
	}
	if _, err := s.Read(t.Context(), evento.All().First(cursor.MaxPageSize+1, "")); !errors.Is(err, evento.ErrPageTooLarge) {
		t.Errorf("Read(oversized) = %v", err)
	}
	if _, err := s.Read(t.Context(), evento.Query{Filters: []evento.Filter{{AggregateID: "x"}}}); !errors.Is(err, evento.ErrInvalidQuery) {
		t.Errorf("Read(filter without type) = %v", err)
	}
}

// model is the brute-force reference for queries.
func modelRead(all []evento.Event, q evento.Query) evento.Page {
	var match []evento.Event
	for i := range all {
		if q.Matches(&all[i]) {
			match = append(match, all[i])
		}
	}
	limit := q.Args.Limit(0)
	posOf := func(c string) uint64 { _, p, _ := storekit.DecodeCursor(c); return p.Seq }
	if q.Args.IsBackward() {
		end := uint64(1 << 62)
		hasOther := false
		if q.Args.Before != "" {
			end = posOf(q.Args.Before)
		}
		var rows []evento.Event
		for i := len(match) - 1; i >= 0; i-- {
			if match[i].Position.Seq >= end {
				hasOther = q.Args.Before != ""
				continue
			}
			if len(rows) <= limit {
				rows = append(rows, match[i])
			}
		}
		return storekit.NewPage(rows, limit, true, hasOther)
	}
	start := uint64(0)
	if q.Args.After != "" {
		start = posOf(q.Args.After)
	}
	hasOther := false
	var rows []evento.Event
	for i := range match {
		if match[i].Position.Seq <= start {
			hasOther = true
			continue
		}
		if len(rows) <= limit {
			rows = append(rows, match[i])
		}
	}
	return storekit.NewPage(rows, limit, false, hasOther)
}

func samePage(a, b evento.Page) bool {
	if len(a.Events) != len(b.Events) || a.PageInfo != b.PageInfo {
		return false
	}
	for i := range a.Events {
		if !a.Events[i].Equal(&b.Events[i]) {
			return false
		}
	}
	return true
}

func TestQueriesAgainstModel(t *testing.T) {
	s := setup(t)
	r := rand.New(rand.NewPCG(7, 9))
	types := []string{"A", "B", "C\x00"}
	ids := []string{"1", "2", "3", "\x00"}
	names := []string{"x", "y", "z"}
	rks := []string{"", "r1", "r2"}
	versions := map[[2]string]uint64{}
	fixed := map[[2]string]string{} // routing key fixed by the first event
	var all []evento.Event
	for range 300 {
		n := 1 + r.IntN(3)
		var batch []evento.Event
		typ, id := types[r.IntN(len(types))], ids[r.IntN(len(ids))]
		k := [2]string{typ, id}
		rk := rks[r.IntN(len(rks))]
		if want, ok := fixed[k]; ok {
			rk = want
			if r.IntN(2) == 0 {
				rk = "" // inherit the stored key
			}
		}
		for range n {
			versions[k]++
			batch = append(batch, ev(typ, id, versions[k], names[r.IntN(len(names))], rk))
		}
		batch = mustWrite(t, s, batch...)
		if _, ok := fixed[k]; !ok {
			fixed[k] = rk
		}
		for _, e := range batch {
			if e.RoutingKey != fixed[k] {
				t.Fatalf("%s/%q v%d written with routing key %q, want the first event's %q", typ, id, e.Version, e.RoutingKey, fixed[k])
			}
		}
		all = append(all, batch...)
	}
	randFilter := func() evento.Filter {
		f := evento.Filter{AggregateType: types[r.IntN(len(types))]}
		if r.IntN(3) == 0 {
			f.AggregateID = ids[r.IntN(len(ids))]
		}
		if r.IntN(3) == 0 {
			f.Name = names[r.IntN(len(names))]
		}
		return f
	}
	for qi := range 300 {
		var q evento.Query
		for range r.IntN(4) {
			q = q.Or(randFilter())
		}
		switch r.IntN(3) {
		case 1:
			q = q.WithRouting(evento.NoRoutingKey())
		case 2:
			q = q.WithRouting(evento.RoutingKey(rks[1+r.IntN(2)]))
		}
		size := 1 + r.IntN(40)
		backward := r.IntN(2) == 1
		// Page through everything, comparing each page with the model.
		c := ""
		var seen []evento.Event
		for pages := 0; ; pages++ {
			if pages > len(all)+1 {
				t.Fatalf("query %d: too many pages: %+v backward=%v size=%d", qi, q, backward, size)
			}
			qq := q.First(size, c)
			if backward {
				qq = q.Last(size, c)
			}
			got, err := s.Read(t.Context(), qq)
			if err != nil {
				t.Fatalf("query %d %+v: %v", qi, qq, err)
			}
			want := modelRead(all, qq)
			if !samePage(got, want) {
				t.Fatalf("query %d %+v:\n got %d events %+v\nwant %d events %+v", qi, qq, len(got.Events), got.PageInfo, len(want.Events), want.PageInfo)
			}
			if backward {
				seen = append(slices.Clone(got.Events), seen...)
				if !got.PageInfo.HasPreviousPage {
					break
				}
				c = got.PageInfo.StartCursor
			} else {
				seen = append(seen, got.Events...)
				if !got.PageInfo.HasNextPage {
					break
				}
				c = got.PageInfo.EndCursor
			}
		}
		n := 0
		for i := range all {
			if q.Matches(&all[i]) {
				if n >= len(seen) || seen[n].Position != all[i].Position {
					t.Fatalf("query %d: paging missed or reordered events", qi)
				}
				n++
			}
		}
		if n != len(seen) {
			t.Fatalf("query %d: paging saw %d events, want %d", qi, len(seen), n)
		}
	}
	// Cursors from one query work in another (they name a global position).
	p, err := s.Read(t.Context(), evento.All().First(50, ""))
	if err != nil {
		t.Fatal(err)
	}
	q := evento.ByAggregate("A", "1").First(5, p.PageInfo.EndCursor)
	got, err := s.Read(t.Context(), q)
	if err != nil || !samePage(got, modelRead(all, q)) {
		t.Fatalf("cross-query cursor: %v", err)
	}
	ids2, err := s.AggregateIDs(t.Context(), "A", "", 0)
	if err != nil {
		t.Fatal(err)
	}
	var wantIDs []string
	for _, id := range []string{"\x00", "1", "2", "3"} {
		if versions[[2]string{"A", id}] > 0 {
			wantIDs = append(wantIDs, id)
		}
	}
	if !slices.Equal(ids2, wantIDs) {
		t.Errorf("AggregateIDs = %q, want %q", ids2, wantIDs)
	}
	if rest, err := s.AggregateIDs(t.Context(), "A", wantIDs[0], 2); err != nil || !slices.Equal(rest, wantIDs[1:3]) {
		t.Errorf("AggregateIDs(after %q, 2) = %q, %v", wantIDs[0], rest, err)
	}
}

func TestConcurrentWritersGlobalOrder(t *testing.T) {
	s := setup(t)
	const writers, each = 8, 50
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for v := uint64(1); v <= each; v++ {
				if err := s.Write(context.Background(), []evento.Event{ev("T", fmt.Sprint(w), v, "X", "")}); err != nil {
					t.Errorf("Write: %v", err)
					return
				}
			}
		})
	}
	// A tailing reader must see dense positions, never a gap filled later.
	var last uint64
	c := ""
	for last < writers*each {
		p, err := s.Read(t.Context(), evento.All().First(100, c))
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range p.Events {
			if e.Position.Seq != last+1 {
				t.Fatalf("tailing reader saw position %d after %d", e.Position.Seq, last)
			}
			last = e.Position.Seq
			c = e.Cursor()
		}
	}
	wg.Wait()
}

func TestSubscriberLeases(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
	s := setup(t, WithClock(clock))
	ctx := t.Context()
	evs := mustWrite(t, s, ev("T", "a", 1, "X", ""), ev("T", "a", 2, "X", ""))
	l1, err := s.ClaimLease(ctx, "sub", 0, "w1", time.Minute)
	if err != nil || l1.Token != 1 {
		t.Fatalf("ClaimLease = %+v, %v", l1, err)
	}
	if _, err := s.ClaimLease(ctx, "sub", 0, "w2", time.Minute); !errors.Is(err, evento.ErrLeaseHeld) {
		t.Fatalf("ClaimLease by w2 = %v, want ErrLeaseHeld", err)
	}
	if err := s.Acknowledge(ctx, l1, evento.Ack{Cursor: evs[0].Cursor(), Lag: evento.Lag{Events: 1}}); err != nil {
		t.Fatalf("Acknowledge: %v", err)
	}
	advance(2 * time.Minute)
	if err := s.Acknowledge(ctx, l1, evento.Ack{Cursor: evs[1].Cursor()}); !errors.Is(err, evento.ErrLeaseLost) {
		t.Fatalf("Acknowledge after expiry = %v, want ErrLeaseLost", err)
	}
	l2, err := s.ClaimLease(ctx, "sub", 0, "w2", time.Minute)
	if err != nil || l2.Token != 2 {
		t.Fatalf("ClaimLease after expiry = %+v, %v", l2, err)
	}
	st, err := s.Subscriber(ctx, "sub", 0)
	if err != nil || st.Cursor != evs[0].Cursor() || st.Holder != "w2" || st.Token != 2 || st.Lag.Events != 1 {
		t.Fatalf("Subscriber = %+v, %v", st, err)
	}
	park := evento.ParkedEvent{Event: evs[1], Error: "boom", Attempts: 3}
	if err := s.Acknowledge(ctx, l2, evento.Ack{Cursor: evs[1].Cursor(), LastError: "boom", Park: []evento.ParkedEvent{park}}); err != nil {
		t.Fatal(err)
	}
	if err := s.Acknowledge(ctx, l2, evento.Ack{Park: []evento.ParkedEvent{park}}); err != nil {
		t.Fatal(err)
	}
	parked, err := s.ParkedEvents(ctx, "sub")
	if err != nil || len(parked) != 1 || !parked[0].Event.Equal(&evs[1]) || parked[0].Error != "boom" || parked[0].Attempts != 3 || parked[0].ParkedAt.IsZero() {
		t.Fatalf("ParkedEvents = %+v, %v", parked, err)
	}
	if st, _ := s.Subscriber(ctx, "sub", 0); st.Parked != 1 || st.Cursor != evs[1].Cursor() {
		t.Errorf("Subscriber after park = %+v", st)
	}
	if err := s.DeleteParked(ctx, "sub", 0, evs[1].ID); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteParked(ctx, "sub", 0, evs[1].ID); !errors.Is(err, evento.ErrNotFound) {
		t.Errorf("DeleteParked twice = %v", err)
	}
	if err := s.ResetSubscriber(ctx, "sub", 0, ""); err != nil {
		t.Fatal(err)
	}
	if err := s.Acknowledge(ctx, l2, evento.Ack{}); !errors.Is(err, evento.ErrLeaseLost) {
		t.Errorf("Acknowledge after reset = %v, want ErrLeaseLost", err)
	}
	l3, err := s.ClaimLease(ctx, "sub", 0, "w3", time.Minute)
	if err != nil || l3.Token <= l2.Token {
		t.Fatalf("ClaimLease after reset = %+v, %v", l3, err)
	}
	if _, err := s.RenewLease(ctx, l2, time.Minute); !errors.Is(err, evento.ErrLeaseLost) {
		t.Errorf("RenewLease stale = %v", err)
	}
	if l3b, err := s.RenewLease(ctx, l3, time.Hour); err != nil || !l3b.ExpiresAt.Equal(now.Add(time.Hour)) {
		t.Errorf("RenewLease = %+v, %v", l3b, err)
	}
	if err := s.ReleaseLease(ctx, l3); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ClaimLease(ctx, "sub", 1, "w1", time.Minute); err != nil {
		t.Fatal(err)
	}
	all, err := s.Subscribers(ctx)
	if err != nil || len(all) != 2 || all[0].Partition != 0 || all[1].Partition != 1 || all[0].Holder != "" {
		t.Fatalf("Subscribers = %+v, %v", all, err)
	}
	if _, err := s.Subscriber(ctx, "nope", 0); !errors.Is(err, evento.ErrNotFound) {
		t.Errorf("Subscriber(missing) = %v", err)
	}
}

func TestSnapshots(t *testing.T) {
	s := setup(t)
	ctx := t.Context()
	for _, v := range []uint64{5, 10, 15} {
		if err := s.SaveSnapshot(ctx, evento.Snapshot{AggregateType: "T", AggregateID: "a", Revision: "r1", Version: v, Data: []byte{byte(v)}}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.SaveSnapshot(ctx, evento.Snapshot{AggregateType: "T", AggregateID: "a", Revision: "r0", Version: 20}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ max, want uint64 }{{0, 15}, {14, 10}, {15, 15}, {5, 5}} {
		sn, err := s.LoadSnapshot(ctx, "T", "r1", "a", tc.max)
		if err != nil || sn.Version != tc.want || sn.Data[0] != byte(tc.want) {
			t.Errorf("LoadSnapshot(max %d) = %+v, %v; want version %d", tc.max, sn, err, tc.want)
		}
	}
	if _, err := s.LoadSnapshot(ctx, "T", "r1", "a", 4); !errors.Is(err, evento.ErrNotFound) {
		t.Errorf("LoadSnapshot(max 4) = %v", err)
	}
	if err := s.PruneSnapshots(ctx, "T", "r1", "a", 1); err != nil {
		t.Fatal(err)
	}
	if _, err := s.LoadSnapshot(ctx, "T", "r0", "a", 0); !errors.Is(err, evento.ErrNotFound) {
		t.Errorf("other revision survived prune: %v", err)
	}
	if sn, err := s.LoadSnapshot(ctx, "T", "r1", "a", 14); !errors.Is(err, evento.ErrNotFound) {
		t.Errorf("old snapshot survived prune: %+v %v", sn, err)
	}
	if sn, err := s.LoadSnapshot(ctx, "T", "r1", "a", 0); err != nil || sn.Version != 15 {
		t.Errorf("newest snapshot lost by prune: %+v %v", sn, err)
	}
}

func TestNotifyAndClose(t *testing.T) {
	s, err := OpenMemory(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	ch := s.Notify(ctx)
	ch2 := s.Notify(t.Context())
	mustWrite(t, s, ev("T", "a", 1, "X", ""))
	select {
	case <-ch:
	case <-time.After(10 * time.Second):
		t.Fatal("no notification after a commit")
	}
	cancel()
	deadline := time.After(10 * time.Second)
	for open := true; open; {
		select {
		case _, open = <-ch:
		case <-deadline:
			t.Fatal("Notify channel not closed after ctx cancel")
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	for open := true; open; {
		select {
		case _, open = <-ch2:
		case <-time.After(10 * time.Second):
			t.Fatal("Notify channel not closed by Close")
		}
	}
	if err := s.Write(t.Context(), []evento.Event{ev("T", "a", 2, "X", "")}); !errors.Is(err, evento.ErrClosed) {
		t.Errorf("Write after Close = %v", err)
	}
	if _, err := s.Read(t.Context(), evento.All()); !errors.Is(err, evento.ErrClosed) {
		t.Errorf("Read after Close = %v", err)
	}
	if _, ok := <-s.Notify(t.Context()); ok {
		t.Error("Notify after Close returned an open channel")
	}
}

func TestWriteCancelledBeforeCommitDoesNotLand(t *testing.T) {
	s := setup(t)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := s.Write(ctx, []evento.Event{ev("T", "a", 1, "X", "")}); !errors.Is(err, context.Canceled) {
		t.Fatalf("Write(cancelled) = %v", err)
	}
	if v, _ := s.AggregateVersion(t.Context(), "T", "a"); v != 0 {
		t.Errorf("cancelled write landed")
	}
}

func TestReopenKeepsData(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(t.Context(), dir)
	if err != nil {
		t.Fatal(err)
	}
	mustWrite(t, s, ev("T", "a", 1, "X", ""), ev("T", "a", 2, "X", ""))
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	x, err := executor.Open(t.Context(), "pebble:"+dir)
	if err != nil {
		t.Fatal(err)
	}
	defer x.Close()
	if h, _ := x.Head(t.Context()); h.Seq != 2 {
		t.Errorf("Head after reopen = %v", h)
	}
	if err := x.Write(t.Context(), []evento.Event{ev("T", "a", 2, "X", "")}); !errors.Is(err, evento.ErrVersionConflict) {
		t.Errorf("conflict after reopen = %v", err)
	}
	e := []evento.Event{ev("T", "a", 3, "X", "")}
	if err := x.Write(t.Context(), e); err != nil || e[0].Position.Seq != 3 {
		t.Errorf("Write after reopen = %v at %v", err, e[0].Position)
	}
}

func TestDSN(t *testing.T) {
	for _, dsn := range []string{"pebble::memory:", "pebble::memory:?sync=false&max_page=10", "PEBBLE::memory:"} {
		x, err := executor.Open(t.Context(), dsn)
		if err != nil {
			t.Errorf("Open(%q) = %v", dsn, err)
			continue
		}
		if x.Capabilities().Name != "pebble" {
			t.Errorf("Capabilities = %+v", x.Capabilities())
		}
		x.Close()
	}
	for _, dsn := range []string{"pebble:", "pebble::memory:?bogus=1", "pebble::memory:?sync=maybe"} {
		if _, err := executor.Open(t.Context(), dsn); !errors.Is(err, executor.ErrInvalidDSN) {
			t.Errorf("Open(%q) = %v, want ErrInvalidDSN", dsn, err)
		}
	}
	_, err := executor.Open(t.Context(), "pebble::memory:?bogus=1")
	if err == nil || !strings.Contains(err.Error(), "bogus") {
		t.Errorf("unknown option error %v does not name the option", err)
	}
	rel := "pebble:" + t.TempDir() + "/rel?sync=false"
	x, err := executor.Open(t.Context(), rel)
	if err != nil {
		t.Fatal(err)
	}
	x.Close()
}

func TestIDsIncreaseAcrossRestartWhenClockGoesBack(t *testing.T) {
	dir := t.TempDir()
	late := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	s, err := Open(t.Context(), dir, WithClock(func() time.Time { return late }))
	if err != nil {
		t.Fatal(err)
	}
	first := mustWrite(t, s, ev("T", "a", 1, "X", ""))
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err = Open(t.Context(), dir, WithClock(func() time.Time { return late.Add(-time.Hour) }))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	second := mustWrite(t, s, ev("T", "a", 2, "X", ""))
	if second[0].ID.Compare(first[0].ID) <= 0 {
		t.Errorf("ID %s after restart is not above %s", second[0].ID, first[0].ID)
	}
}

// TestReadCostFlat checks that every query shape reads O(page) index
// entries: the count stays the same when unrelated events grow 100x.
func TestReadCostFlat(t *testing.T) {
	shapes := map[string]evento.Query{
		"All":              evento.All(),
		"AllRouting":       evento.All().WithRouting(evento.RoutingKey("hot")),
		"AllNoKey":         evento.All().WithRouting(evento.NoRoutingKey()),
		"Type":             evento.ByType("Hot"),
		"TypeRouting":      evento.ByType("Hot").WithRouting(evento.RoutingKey("hot")),
		"TypeName":         evento.ByName("Hot", "Fired"),
		"TypeNameRouting":  evento.ByName("Hot", "Fired").WithRouting(evento.RoutingKey("hot")),
		"TypeID":           evento.ByAggregate("Hot", "h1"),
		"TypeIDRouting":    evento.ByAggregate("Hot", "h1").WithRouting(evento.RoutingKey("hot")),
		"Or":               evento.ByName("Hot", "Fired").Or(evento.Filter{AggregateType: "Warm"}),
		"OrRouting":        evento.ByType("Hot").Or(evento.Filter{AggregateType: "Warm"}).WithRouting(evento.RoutingKey("hot")),
		"TypeNoKeyRouting": evento.ByType("Warm").WithRouting(evento.NoRoutingKey()),
	}
	cost := func(unrelated int) map[string]uint64 {
		s := setup(t, WithSync(false))
		var hv, wv uint64
		noise := 0
		for range 40 {
			hv++
			wv++
			mustWrite(t, s, ev("Hot", "h1", hv, "Fired", "hot"))
			mustWrite(t, s, ev("Warm", "w1", wv, "Fired", ""))
			var batch []evento.Event
			for range unrelated / 40 {
				noise++
				batch = append(batch, ev("Cold", fmt.Sprint("c", noise), 1, "Other", "cold"))
			}
			if len(batch) > 0 {
				mustWrite(t, s, batch...)
			}
		}
		out := map[string]uint64{}
		for name, q := range shapes {
			if name == "All" {
				continue // reads every event by definition
			}
			before := s.entriesRead.Load()
			p, err := s.Read(t.Context(), q.First(10, ""))
			if err != nil || len(p.Events) != 10 {
				t.Fatalf("%s: %d events, %v", name, len(p.Events), err)
			}
			p, err = s.Read(t.Context(), q.First(10, p.PageInfo.EndCursor))
			if err != nil || len(p.Events) != 10 {
				t.Fatalf("%s page 2: %d events, %v", name, len(p.Events), err)
			}
			p, err = s.Read(t.Context(), q.Last(10, p.PageInfo.StartCursor))
			if err != nil || len(p.Events) != 10 {
				t.Fatalf("%s backward: %d events, %v", name, len(p.Events), err)
			}
			out[name] = s.entriesRead.Load() - before
		}
		return out
	}
	small, big := cost(40), cost(4000)
	for name, n := range small {
		if big[name] != n {
			t.Errorf("%s: read %d entries with 40 unrelated events, %d with 4000", name, n, big[name])
		}
		if n == 0 || n > 3*(11+4)*2 {
			t.Errorf("%s: read %d entries for three pages of 10", name, n)
		}
	}
}

// TestCloseDuringWrites closes the store under concurrent writers: every
// write either succeeds and is in the reopened store, or fails with
// ErrClosed and is not.
func TestCloseDuringWrites(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(t.Context(), dir, WithSync(false))
	if err != nil {
		t.Fatal(err)
	}
	const writers = 8
	acked := make([]uint64, writers)
	started := make(chan struct{}, writers)
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for v := uint64(1); ; v++ {
				err := s.Write(context.Background(), []evento.Event{ev("T", fmt.Sprint(w), v, "X", "")})
				if errors.Is(err, evento.ErrClosed) {
					return
				}
				if err != nil {
					t.Errorf("Write: %v", err)
					return
				}
				acked[w] = v
				if v == 5 {
					started <- struct{}{}
				}
			}
		})
	}
	for range writers {
		<-started
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	s, err = Open(t.Context(), dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for w, want := range acked {
		if v, err := s.AggregateVersion(t.Context(), "T", fmt.Sprint(w)); err != nil || v != want {
			t.Errorf("writer %d: version %d after reopen (%v), %d acknowledged", w, v, err, want)
		}
	}
}

func TestNewLeavesDBToCaller(t *testing.T) {
	db, err := pdb.Open("", &pdb.Options{FS: vfs.NewMem()})
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(db)
	if err != nil {
		t.Fatal(err)
	}
	mustWrite(t, s, ev("T", "a", 1, "X", ""))
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	// The db is still open: a new Store over it sees the data.
	s, err = New(db)
	if err != nil {
		t.Fatalf("New over the still-open db: %v", err)
	}
	if v, err := s.AggregateVersion(t.Context(), "T", "a"); err != nil || v != 1 {
		t.Errorf("AggregateVersion = %d, %v", v, err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatalf("db.Close after Store.Close: %v", err)
	}
	if _, err := New(nil); err == nil {
		t.Error("New(nil) succeeded")
	}
}

func TestSchemaTooNew(t *testing.T) {
	db, err := pdb.Open("", &pdb.Options{FS: vfs.NewMem()})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.Set([]byte{tagSchema}, []byte{schemaVersion + 1}, pdb.Sync); err != nil {
		t.Fatal(err)
	}
	if _, err := New(db); !errors.Is(err, evento.ErrSchemaTooNew) {
		t.Errorf("New over a newer schema = %v, want ErrSchemaTooNew", err)
	}
}
