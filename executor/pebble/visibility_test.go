package pebble

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/evento-go/evento"
	"github.com/evento-go/evento/executor/storekit"
)

// visCounts counts what a reader saw that a Write had not yet returned.
type visCounts struct {
	aggAhead     atomic.Int64 // ReadAggregate events past Head taken after
	aggRefused   atomic.Int64 // their cursors refused by Read
	verAhead     atomic.Int64 // AggregateVersion results past Head taken after
	snapAhead    atomic.Int64 // LoadSnapshot cursors past Head taken after
	snapRefused  atomic.Int64 // their cursors refused by Read
	idsAhead     atomic.Int64 // AggregateIDs ids whose first event is past Head taken after
	observations atomic.Int64
}

func (c *visCounts) String() string {
	return fmt.Sprintf("ReadAggregate ahead=%d refused=%d, AggregateVersion ahead=%d, LoadSnapshot ahead=%d refused=%d, AggregateIDs ahead=%d (of %d observations)",
		c.aggAhead.Load(), c.aggRefused.Load(), c.verAhead.Load(), c.snapAhead.Load(), c.snapRefused.Load(), c.idsAhead.Load(), c.observations.Load())
}

func (c *visCounts) bad() int64 {
	return c.aggAhead.Load() + c.aggRefused.Load() + c.verAhead.Load() + c.snapAhead.Load() + c.snapRefused.Load() + c.idsAhead.Load()
}

// TestDurableVisibilityStress races 32 writers with durable commits on a
// real directory against readers of every aggregate read path, and checks
// that every event, version, snapshot and id a reader sees is at or below
// Head taken right after (so its Write could have returned), and that its
// cursor is one Read accepts.
func TestDurableVisibilityStress(t *testing.T) {
	const (
		writers   = 32
		perAgg    = 8 // events per aggregate before a writer starts a new one
		snapshots = "VisRev"
	)
	writes := 40
	if testing.Short() {
		writes = 15
	}
	ctx := context.Background()
	s, err := Open(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	}()

	aggID := func(w, n int) string { return fmt.Sprintf("w%02d-%03d", w, n) }
	var cur [writers]atomic.Int64 // index of the aggregate writer w appends to
	var writing sync.WaitGroup
	stop := make(chan struct{})
	errc := make(chan error, 64)
	fail := func(err error) {
		select {
		case errc <- err:
		default:
		}
	}
	for w := range writers {
		writing.Go(func() {
			for i := range writes {
				n := i / perAgg
				cur[w].Store(int64(n))
				e := []evento.Event{{AggregateType: "Vis", AggregateID: aggID(w, n), Version: uint64(i%perAgg) + 1, Name: "Tick", RoutingKey: fmt.Sprintf("rk%d", w%4), Data: []byte("0123456789")}}
				if err := s.Write(ctx, e); err != nil {
					fail(fmt.Errorf("writer %d: %w", w, err))
					return
				}
			}
		})
	}

	var c visCounts
	// checkCursor reads the page after cursor cur: Read must accept it.
	checkCursor := func(cur string) bool {
		_, err := s.Read(ctx, evento.All().First(1, cur))
		if err != nil && !errors.Is(err, evento.ErrInvalidCursor) {
			fail(fmt.Errorf("Read after cursor: %w", err))
		}
		return err == nil
	}
	type verObs struct {
		id   string
		v    uint64
		head uint64
	}
	type idsObs struct {
		ids  []string
		head uint64
	}
	var (
		obsMu   sync.Mutex
		verObss []verObs
		idsObss []idsObs
	)
	var reading sync.WaitGroup
	for r := range 4 {
		reading.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(r), 1))
			var vers []verObs
			var idss []idsObs
			defer func() {
				obsMu.Lock()
				verObss = append(verObss, vers...)
				idsObss = append(idsObss, idss...)
				obsMu.Unlock()
			}()
			for {
				select {
				case <-stop:
					return
				default:
				}
				w := rng.IntN(writers)
				id := aggID(w, int(cur[w].Load()))
				c.observations.Add(1)
				switch r % 4 {
				case 0: // ReadAggregate
					evs, err := s.ReadAggregate(ctx, "Vis", id, 0, 0)
					if err != nil {
						fail(err)
						return
					}
					h, _ := s.Head(ctx)
					for i := range evs {
						if evs[i].Position.Seq > h.Seq {
							c.aggAhead.Add(1)
						}
					}
					if len(evs) > 0 && !checkCursor(evs[len(evs)-1].Cursor()) {
						c.aggRefused.Add(1)
					}
				case 1: // AggregateVersion, checked against positions at the end
					v, err := s.AggregateVersion(ctx, "Vis", id)
					if err != nil {
						fail(err)
						return
					}
					h, _ := s.Head(ctx)
					if v > 0 {
						vers = append(vers, verObs{id: id, v: v, head: h.Seq})
					}
				case 2: // snapshot the newest event read, then load it back
					evs, err := s.ReadAggregate(ctx, "Vis", id, 0, 0)
					if err != nil {
						fail(err)
						return
					}
					if len(evs) > 0 {
						last := &evs[len(evs)-1]
						err := s.SaveSnapshot(ctx, evento.Snapshot{AggregateType: "Vis", AggregateID: id, Revision: snapshots, Version: last.Version, Cursor: last.Cursor(), EventTime: last.Timestamp, Data: []byte("state")})
						if err != nil {
							fail(err)
							return
						}
					}
					sn, err := s.LoadSnapshot(ctx, "Vis", snapshots, id, 0)
					if errors.Is(err, evento.ErrNotFound) {
						continue
					}
					if err != nil {
						fail(err)
						return
					}
					h, _ := s.Head(ctx)
					_, p, err := storekit.DecodeCursor(sn.Cursor)
					if err != nil {
						fail(err)
						return
					}
					if p.Seq > h.Seq {
						c.snapAhead.Add(1)
					}
					if !checkCursor(sn.Cursor) {
						c.snapRefused.Add(1)
					}
				case 3: // AggregateIDs, checked against first positions at the end
					ids, err := s.AggregateIDs(ctx, "Vis", fmt.Sprintf("w%02d", w), 4)
					if err != nil {
						fail(err)
						return
					}
					h, _ := s.Head(ctx)
					idss = append(idss, idsObs{ids: ids, head: h.Seq})
				}
			}
		})
	}
	writing.Wait()
	close(stop)
	reading.Wait()
	close(errc)
	for err := range errc {
		t.Fatal(err)
	}

	// Positions of every stored event, now that all writes returned.
	pos := map[string][]uint64{} // id -> position of version i+1
	for w := range writers {
		for n := 0; n*perAgg < writes; n++ {
			id := aggID(w, n)
			evs, err := s.ReadAggregate(ctx, "Vis", id, 0, 0)
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range evs {
				pos[id] = append(pos[id], e.Position.Seq)
			}
		}
	}
	for _, o := range verObss {
		if o.v > uint64(len(pos[o.id])) {
			t.Fatalf("AggregateVersion(%s) = %d, stored %d", o.id, o.v, len(pos[o.id]))
		}
		if pos[o.id][o.v-1] > o.head {
			c.verAhead.Add(1)
		}
	}
	for _, o := range idsObss {
		for _, id := range o.ids {
			if p := pos[id]; len(p) == 0 || p[0] > o.head {
				c.idsAhead.Add(1)
			}
		}
	}
	t.Logf("%d writers x %d durable writes, %d commits: %s", writers, writes, s.commits.Load(), &c)
	if c.bad() > 0 {
		t.Errorf("readers saw writes that had not returned: %s", &c)
	}
}

// TestCommittedNotShownBeforeHead holds the committer after a group's
// batch committed (visible to Pebble iterators) and before it publishes
// the head: no read path shows the group, and every one shows it once the
// Write returned.
func TestCommittedNotShownBeforeHead(t *testing.T) {
	s := setup(t)
	ctx := t.Context()
	first := mustWrite(t, s, ev("H", "a", 1, "Created", "rk"))
	held, release := make(chan struct{}), make(chan struct{})
	s.testHookCommitted = func() {
		s.testHookCommitted = nil // committer goroutine only
		close(held)
		<-release
	}
	done := make(chan error, 1)
	go func() {
		done <- s.Write(context.Background(), []evento.Event{ev("H", "a", 2, "Renamed", ""), ev("H", "b", 1, "Created", "")})
	}()
	<-held
	// The batch is in Pebble: the committer's own view sees it.
	it, err := s.db.NewIter(nil)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for ok := it.SeekGE(eventKey(nil, 2)); ok && it.Key()[0] == tagEvent; ok = it.Next() {
		n++
	}
	it.Close()
	if n != 2 {
		t.Fatalf("the held group is not in Pebble (%d events past the first)", n)
	}
	check := func(wantEvents int, wantVersion uint64, wantIDs int) {
		t.Helper()
		if h, _ := s.Head(ctx); h.Seq != uint64(wantEvents) {
			t.Errorf("Head = %v, want %d", h, wantEvents)
		}
		if evs, err := s.ReadAggregate(ctx, "H", "a", 0, 0); err != nil || uint64(len(evs)) != wantVersion {
			t.Errorf("ReadAggregate = %d events, %v; want %d", len(evs), err, wantVersion)
		}
		if v, err := s.AggregateVersion(ctx, "H", "a"); err != nil || v != wantVersion {
			t.Errorf("AggregateVersion = %d, %v; want %d", v, err, wantVersion)
		}
		if ids, err := s.AggregateIDs(ctx, "H", "", 0); err != nil || len(ids) != wantIDs {
			t.Errorf("AggregateIDs = %v, %v; want %d ids", ids, err, wantIDs)
		}
		if p, err := s.Read(ctx, evento.All()); err != nil || len(p.Events) != wantEvents {
			t.Errorf("Read = %d events, %v; want %d", len(p.Events), err, wantEvents)
		}
		if p, err := s.Read(ctx, evento.ByAggregate("H", "a").First(10, first[0].Cursor())); err != nil || len(p.Events) != int(wantVersion)-1 {
			t.Errorf("Read after v1 = %d events, %v; want %d", len(p.Events), err, wantVersion-1)
		}
	}
	check(1, 1, 1)
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	check(3, 2, 2)
}
