package sqlite

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/evento-go/evento"
)

// The ordering tests tail query shapes while many writers commit, and
// count the committed events a tailing reader never saw. A reader that
// reads a page in several statements, each in its own WAL snapshot, can
// return position 12 without 11 (committed in between) and then move its
// cursor past 11 for good.
//
//	go test ./executor/sqlite/ -run 'TestOrdering' -count=1 -v
//	go test ./executor/sqlite/ -run 'TestOrdering' -count=1 -race

// orderShapes are the tailed queries: the OR shapes every subscription with
// two or more aggregate types builds, with every kind of routing, plus
// single-arm controls.
func orderShapes() map[string]evento.Query {
	ab := evento.ByType("A").Or(evento.Filter{AggregateType: "B"})
	return map[string]evento.Query{
		"A|B":                  ab,
		"A|B rk=r1":            ab.WithRouting(evento.RoutingKey("r1")),
		"A|B no-rk":            ab.WithRouting(evento.NoRoutingKey()),
		"A.Deposited|B":        evento.ByName("A", "Deposited").Or(evento.Filter{AggregateType: "B"}),
		"A.Deposited|B.Gone":   evento.ByName("A", "Deposited").Or(evento.Filter{AggregateType: "B", Name: "Gone"}),
		"A/w0-0|B/w1-0|C":      evento.ByAggregate("A", "w0-0").Or(evento.Filter{AggregateType: "B", AggregateID: "w1-0"}, evento.Filter{AggregateType: "C"}),
		"A|B|C rk=r2 (3 arms)": evento.ByType("A").Or(evento.Filter{AggregateType: "B"}, evento.Filter{AggregateType: "C", Name: "Gone"}).WithRouting(evento.RoutingKey("r2")),
		"all (1 arm)":          evento.All(),
		"A (1 arm)":            evento.ByType("A"),
	}
}

// orderWriter appends exactly n events for writer name: batches of 1 to 3 events,
// to its own aggregates of types A, B and C (no conflicts), every fourth
// batch spanning an A and a B aggregate at once. An aggregate's routing key
// is fixed by its id ("", r1 or r2). ack is called after each commit.
func orderWriter(ctx context.Context, s *Store, name string, n int, ack func([]evento.Event)) error {
	versions := map[string]uint64{}
	mk := func(typ, id string, k int) evento.Event {
		key := typ + "/" + id
		versions[key]++
		return evento.Event{AggregateType: typ, AggregateID: id, Version: versions[key],
			Name:       [...]string{"Deposited", "Gone"}[k%2],
			RoutingKey: routingOf(id),
			Data:       []byte(name)}
	}
	for i := 0; i < n; {
		var batch []evento.Event
		id := fmt.Sprintf("%s-%d", name, i%3)
		if i%4 == 3 && n-i >= 2 {
			batch = []evento.Event{mk("A", id, i), mk("B", id+"x", i+1)}
		} else {
			typ := [...]string{"A", "B", "C"}[i%3]
			for j := range min(1+i%3, n-i) {
				batch = append(batch, mk(typ, id, i+j))
			}
		}
		if err := s.Write(ctx, batch); err != nil {
			return fmt.Errorf("writer %s: %w", name, err)
		}
		if ack != nil {
			ack(batch)
		}
		i += len(batch)
	}
	return nil
}

// routingOf is the routing key of the aggregates with id: "", r1 or r2.
func routingOf(id string) string {
	n := 0
	for _, c := range []byte(id) {
		n += int(c)
	}
	return [...]string{"", "r1", "r2"}[n%3]
}

// tailResult is what one tailing reader saw.
type tailResult struct {
	seen      map[uint64]bool
	backwards int // events at or behind a position already passed
	foreign   int // events that do not match the query
	reads     int
	err       error
}

// tail reads q forward page by page from the start until done is closed
// and a read started after that finds no further page.
func tail(ctx context.Context, s *Store, q evento.Query, page int, done <-chan struct{}) tailResult {
	r := tailResult{seen: map[uint64]bool{}}
	after := ""
	var last uint64
	for {
		finished := false
		select {
		case <-done:
			finished = true
		default:
		}
		p, err := s.Read(ctx, q.First(page, after))
		if err != nil {
			r.err = err
			return r
		}
		r.reads++
		for i := range p.Events {
			e := &p.Events[i]
			if e.Position.Seq <= last {
				r.backwards++
			}
			last = max(last, e.Position.Seq)
			if !q.Matches(e) {
				r.foreign++
			}
			r.seen[e.Position.Seq] = true
		}
		if len(p.Events) > 0 {
			after = p.PageInfo.EndCursor
		}
		if finished && !p.PageInfo.HasNextPage {
			return r
		}
	}
}

// orderRun tails every shape with readers on rs while write runs, then
// checks each reader against the final log read from check. It returns the
// total missed count.
func orderRun(t *testing.T, rs *Store, check *Store, readersPerShape, page int, write func() error) int {
	t.Helper()
	ctx := context.Background()
	shapes := orderShapes()
	done := make(chan struct{})
	type res struct {
		shape string
		r     tailResult
	}
	results := make(chan res, len(shapes)*readersPerShape)
	var wg sync.WaitGroup
	for name, q := range shapes {
		for range readersPerShape {
			wg.Add(1)
			go func() {
				defer wg.Done()
				results <- res{name, tail(ctx, rs, q, page, done)}
			}()
		}
	}
	start := time.Now()
	werr := write()
	close(done)
	wg.Wait()
	close(results)
	if werr != nil {
		t.Fatal(werr)
	}
	all := checkLog(t, check, nil)
	t.Logf("%d events committed in %v", len(all), time.Since(start).Round(time.Millisecond))
	total := 0
	for r := range results {
		if r.r.err != nil {
			t.Errorf("%s: read: %v", r.shape, r.r.err)
			continue
		}
		q := shapes[r.shape]
		want, missed := 0, 0
		for i := range all {
			if q.Matches(&all[i]) {
				want++
				if !r.r.seen[all[i].Position.Seq] {
					missed++
				}
			}
		}
		total += missed
		t.Logf("%-22s reads %5d  committed %5d  missed %4d  behind-cursor %d  foreign %d", r.shape, r.r.reads, want, missed, r.r.backwards, r.r.foreign)
		if missed > 0 || r.r.backwards > 0 || r.r.foreign > 0 || len(r.r.seen) != want {
			t.Errorf("%s: a tailing reader missed %d of %d committed events (saw %d; %d behind its cursor, %d not matching)",
				r.shape, missed, want, len(r.r.seen), r.r.backwards, r.r.foreign)
		}
	}
	return total
}

// TestOrderingTailInProcess: writers and tailing readers on one Store, and
// on two Stores over one file, under each synchronous setting.
func TestOrderingTailInProcess(t *testing.T) {
	for _, c := range []struct {
		mode   string
		stores int
	}{{"full", 1}, {"normal", 1}, {"normal", 2}, {"off", 1}, {"off", 2}} {
		mode, stores := c.mode, c.stores
		writers, per := 8, 400
		if mode == "full" { // an fsync per commit
			per = 100
		}
		if testing.Short() || raceEnabled {
			per /= 4
		}
		t.Run(fmt.Sprintf("%s/stores=%d", mode, stores), func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "order.db")
			ws, err := Open(t.Context(), path, WithSynchronous(mode), WithBusyTimeout(30*time.Second))
			if err != nil {
				t.Fatal(err)
			}
			defer ws.Close()
			rs := ws
			if stores == 2 {
				if rs, err = Open(t.Context(), path, WithSynchronous(mode), WithBusyTimeout(30*time.Second)); err != nil {
					t.Fatal(err)
				}
				defer rs.Close()
			}
			missed := orderRun(t, rs, ws, 1, 10, func() error {
				return runWriters(t.Context(), ws, "w", writers, per)
			})
			t.Logf("missed in total: %d", missed)
		})
	}
}

// runWriters runs n concurrent orderWriters named prefix0..prefixN-1.
func runWriters(ctx context.Context, s *Store, prefix string, n, per int) error {
	var wg sync.WaitGroup
	errs := make([]error, n)
	for w := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[w] = orderWriter(ctx, s, fmt.Sprintf("%s%d", prefix, w), per, nil)
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

const (
	childWritersEnv = "EVENTO_SQLITE_CHILD_WRITERS"
	childSyncEnv    = "EVENTO_SQLITE_CHILD_SYNC"
)

// runOrderingChild is the "ordering" child role: childWritersEnv
// goroutines, each an orderWriter of n events, printing an ack line per
// event.
func runOrderingChild(s *Store, name string, n int) int {
	writers, _ := strconv.Atoi(os.Getenv(childWritersEnv))
	var mu sync.Mutex
	out := bufio.NewWriter(os.Stdout)
	ack := func(es []evento.Event) {
		mu.Lock()
		defer mu.Unlock()
		for _, e := range es {
			fmt.Fprintf(out, "ack %s %s %d %d %s\n", e.AggregateType, e.AggregateID, e.Version, e.Position.Seq, e.ID)
		}
		out.Flush()
	}
	var wg sync.WaitGroup
	var failed atomic.Bool
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := orderWriter(context.Background(), s, fmt.Sprintf("%s.%d", name, w), n, ack); err != nil {
				fmt.Fprintln(os.Stderr, "child write:", err)
				failed.Store(true)
			}
		}()
	}
	wg.Wait()
	if failed.Load() {
		return 3
	}
	return 0
}

// TestOrderingTailMultiProcess: two child processes with 12 writers each
// and 8 in-process writers (32 writers, three OS processes, three Stores)
// commit to one file while readers in the test process tail every shape.
// Every acknowledged event must be stored as acknowledged, and no reader
// may miss a committed event.
func TestOrderingTailMultiProcess(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process test skipped in -short mode")
	}
	const procs, childWriters, localWriters = 2, 12, 8
	for _, mode := range []string{"full", "normal"} {
		per := 200
		if mode == "full" { // an fsync per commit
			per = 60
		}
		if raceEnabled {
			per /= 3
		}
		t.Run(mode, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "order.db")
			opts := []Option{WithSynchronous(mode), WithBusyTimeout(30 * time.Second)}
			ws, err := Open(t.Context(), path, opts...)
			if err != nil {
				t.Fatal(err)
			}
			defer ws.Close()
			rs, err := Open(t.Context(), path, opts...)
			if err != nil {
				t.Fatal(err)
			}
			defer rs.Close()
			var acks []acked
			missed := orderRun(t, rs, ws, 1, 10, func() error {
				var wg sync.WaitGroup
				results := make([][]acked, procs)
				errs := make([]error, procs+1)
				for i := range procs {
					cmd := childCmd(t, "ordering", path, fmt.Sprintf("p%d", i), per)
					cmd.Env = append(cmd.Env, childWritersEnv+"="+strconv.Itoa(childWriters), childSyncEnv+"="+mode)
					out, err := cmd.StdoutPipe()
					if err != nil {
						return err
					}
					if err := cmd.Start(); err != nil {
						return err
					}
					wg.Add(1)
					go func() {
						defer wg.Done()
						results[i] = parseAcks(t, out)
						errs[i] = cmd.Wait()
					}()
				}
				errs[procs] = runWriters(context.Background(), ws, "local", localWriters, per)
				wg.Wait()
				for i := range procs {
					if errs[i] != nil {
						return fmt.Errorf("child %d: %w", i, errs[i])
					}
					if len(results[i]) != childWriters*per {
						return fmt.Errorf("child %d acknowledged %d events, want %d", i, len(results[i]), childWriters*per)
					}
					acks = append(acks, results[i]...)
				}
				return errs[procs]
			})
			checkLog(t, ws, acks)
			t.Logf("missed in total: %d (%d acknowledged by children)", missed, len(acks))
		})
	}
}
