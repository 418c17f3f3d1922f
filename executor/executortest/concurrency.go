package executortest

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/evento-go/evento"
	"github.com/oklog/ulid/v2"
)

func runConcurrency(t *testing.T, h Harness) {
	parallel(t, h, "RaceOneAggregate", testRaceOneAggregate)
	parallel(t, h, "TailingReader", testTailingReader)
}

// testRaceOneAggregate has N goroutines race to append each next version
// of one aggregate: exactly one wins each version, every loser gets the
// typed conflict, and the history has no gaps and no duplicates.
func testRaceOneAggregate(t *testing.T, h Harness) {
	const (
		writers = 8
		rounds  = 15
	)
	x, _ := openStore(t, h)
	winners := make([]int, 0, rounds)
	for round := 1; round <= rounds; round++ {
		v := uint64(round)
		start := make(chan struct{})
		errs := make([]error, writers)
		var wg sync.WaitGroup
		for w := range writers {
			wg.Go(func() {
				e := withData(ev("race/A", "one", v, "Raced"), []byte(fmt.Sprintf("writer %d", w)))
				<-start
				errs[w] = x.Write(t.Context(), []evento.Event{e})
			})
		}
		close(start)
		wg.Wait()
		winner := -1
		for w, err := range errs {
			if err == nil {
				if winner >= 0 {
					t.Errorf("round %d: writers %d and %d both wrote version %d", round, winner, w, v)
				}
				winner = w
				continue
			}
			var ce *evento.VersionConflictError
			if !errors.As(err, &ce) || !errors.Is(err, evento.ErrVersionConflict) {
				t.Errorf("round %d: writer %d lost the race for version %d with %v (%T), want a *evento.VersionConflictError", round, w, v, err, err)
				continue
			}
			if ce.AggregateType != "race/A" || ce.AggregateID != "one" || ce.Expected != v-1 || ce.Actual != v {
				t.Errorf("round %d: writer %d got VersionConflictError{%q, %q, Expected: %d, Actual: %d}, want {\"race/A\", \"one\", Expected: %d, Actual: %d}",
					round, w, ce.AggregateType, ce.AggregateID, ce.Expected, ce.Actual, v-1, v)
			}
		}
		if winner < 0 {
			t.Fatalf("round %d: no writer of %d wrote version %d; errors: %v", round, writers, v, errs)
		}
		winners = append(winners, winner)
	}
	wantVersion(t, x, "race/A", "one", rounds)
	got, err := x.ReadAggregate(t.Context(), "race/A", "one", 0, 0)
	noErr(t, err, `ReadAggregate("race/A", "one", 0, 0)`)
	if len(got) != rounds {
		t.Fatalf("ReadAggregate after %d rounds returned %d events, want %d:%s", rounds, len(got), rounds, describeEvents(got))
	}
	for i := range got {
		if got[i].Version != uint64(i+1) {
			t.Errorf("event %d has version %d, want %d (no gaps, no duplicates)", i, got[i].Version, i+1)
		}
		if want := fmt.Sprintf("writer %d", winners[i]); string(got[i].Data) != want {
			t.Errorf("version %d holds data %q, want %q (the writer whose Write succeeded)", i+1, got[i].Data, want)
		}
		if i > 0 && !got[i-1].Position.Less(got[i].Position) {
			t.Errorf("version %d at position %s is not after version %d at %s", i+1, got[i].Position, i, got[i-1].Position)
		}
	}
	all := readAll(t, x, evento.All())
	checkEvents(t, "Read(All) after the race", all, got)
}

// testTailingReader runs concurrent writers on different aggregates while a
// reader pages forward from its last cursor: no event may appear behind a
// cursor the reader has passed, and the reader sees every committed event
// exactly once, in ascending position order. With Capabilities.MultiProcess
// the writers share two executors over the store.
func testTailingReader(t *testing.T, h Harness) {
	const (
		writers = 8
		commits = 20 // per writer
	)
	x, open := openStore(t, h)
	// A backend that several processes may share runs the writers over two
	// executors and the reader on the second.
	execs := []evento.Executor{x}
	reader := x
	if x.Capabilities().MultiProcess {
		y := reopen(t, open)
		execs = append(execs, y)
		reader = y
	}
	// A commit's call interval, to check order between commits where one
	// returned before the other started.
	type commit struct {
		exec       int
		start, end time.Time
		batch      []evento.Event
	}
	var (
		mu        sync.Mutex
		committed = map[ulid.ULID]evento.Event{}
		commitLog []commit
	)
	done := make(chan struct{})
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			version := uint64(0)
			for c := range commits {
				// Batches of 1 to 3 events over one or two aggregates.
				var batch []evento.Event
				n := 1 + (w+c)%3
				for range n {
					version++
					batch = append(batch, ev("tail/W", fmt.Sprintf("w%d", w), version, "Tick"))
				}
				if c%4 == 0 {
					batch = append(batch, ev("tail/V", fmt.Sprintf("w%d-c%d", w, c), 1, "Side"))
				}
				start := time.Now()
				if err := execs[w%len(execs)].Write(t.Context(), batch); err != nil {
					t.Errorf("writer %d commit %d: Write(%s) = %v, want success", w, c, describeBatch(batch), err)
					return
				}
				end := time.Now()
				mu.Lock()
				for _, e := range batch {
					committed[e.ID] = e
				}
				commitLog = append(commitLog, commit{w % len(execs), start, end, batch})
				mu.Unlock()
			}
		})
	}
	go func() { wg.Wait(); close(done) }()

	type pageLog struct {
		after string
		first evento.Position
		n     int
	}
	var (
		seen    []evento.Event
		seenIDs = map[ulid.ULID]int{}
		lastPos evento.Position
		after   string
		pages   []pageLog
	)
	finished := false
	deadline := time.Now().Add(2 * time.Minute)
	poll := time.NewTicker(time.Millisecond)
	defer poll.Stop()
	for {
		if time.Now().After(deadline) {
			t.Fatalf("tailing reader did not catch up within 2 minutes (seen %d events)", len(seen))
		}
		// Read done before the page: a page read after every writer
		// finished that comes back with no next page ends the walk.
		select {
		case <-done:
			finished = true
		default:
		}
		page, err := reader.Read(t.Context(), evento.All().First(50, after))
		if err != nil {
			t.Fatalf("tailing reader: Read(after=%s) = %v", describeCursor(after), err)
		}
		if len(page.Events) > 0 {
			pages = append(pages, pageLog{after, page.Events[0].Position, len(page.Events)})
			if !lastPos.Less(page.Events[0].Position) {
				t.Errorf("tailing reader: page after %s starts at position %s, not after the last position seen %s: an event appeared behind a passed cursor", describeCursor(after), page.Events[0].Position, lastPos)
			}
			for i := range page.Events {
				e := page.Events[i]
				if j, dup := seenIDs[e.ID]; dup {
					t.Errorf("tailing reader saw %s twice (first as event %d of the walk)", describe(&e), j)
				}
				if i > 0 && !page.Events[i-1].Position.Less(e.Position) {
					t.Errorf("tailing reader: page has %s after %s, want ascending positions", describe(&e), describe(&page.Events[i-1]))
				}
				seenIDs[e.ID] = len(seen)
				seen = append(seen, e)
			}
			lastPos = page.Events[len(page.Events)-1].Position
			after = page.PageInfo.EndCursor
		}
		if page.PageInfo.HasNextPage {
			continue
		}
		if finished {
			break
		}
		select {
		case <-poll.C:
		case <-done:
		}
	}
	if t.Failed() {
		return
	}
	mu.Lock()
	defer mu.Unlock()
	if len(seen) != len(committed) {
		t.Errorf("tailing reader saw %d events, want the %d committed", len(seen), len(committed))
	}
	var missing []evento.Event
	for id, e := range committed {
		j, ok := seenIDs[id]
		if !ok {
			missing = append(missing, e)
			continue
		}
		if d := eventDiff(&e, &seen[j]); d != "" {
			t.Errorf("tailing reader saw %s differently from what Write returned: %s", describe(&e), d)
		}
	}
	slices.SortFunc(missing, func(a, b evento.Event) int { return a.Position.Compare(b.Position) })
	for i := range missing {
		e := &missing[i]
		// Find the page that jumped over it.
		culprit := "no page passed it"
		for _, p := range pages {
			if e.Position.Less(p.first) {
				culprit = fmt.Sprintf("the reader had already read past it: the page read after %s started at %s", describeCursor(p.after), p.first)
				break
			}
		}
		t.Errorf("tailing reader never saw committed %s (%s)", describe(e), culprit)
		if i == 10 {
			t.Errorf("… and %d more missing", len(missing)-i-1)
			break
		}
	}
	// Positions and IDs increase with commit order: when one Write returned
	// before another started, its events have smaller positions and, on the
	// same executor, smaller IDs. (Overlapping commits have no order of their
	// own: Position defines it. IDs from different executors come from
	// different ULID sources.)
	reported := 0
	for i := range commitLog {
		for j := range commitLog {
			a, b := &commitLog[i], &commitLog[j]
			if !a.end.Before(b.start) || reported >= 10 {
				continue
			}
			la, fb := &a.batch[len(a.batch)-1], &b.batch[0]
			if !la.Position.Less(fb.Position) {
				reported++
				t.Errorf("positions disagree with commit order: Write of %s returned before Write of %s started, but they got positions %s and %s", describe(la), describe(fb), la.Position, fb.Position)
			}
			if a.exec == b.exec && la.ID.Compare(fb.ID) >= 0 {
				reported++
				t.Errorf("IDs disagree with commit order on one executor: Write of %s returned before Write of %s started, but they got IDs %s and %s", describe(la), describe(fb), la.ID, fb.ID)
			}
		}
	}
	h0, err := reader.Head(t.Context())
	noErr(t, err, "Head after the writers finished")
	if len(seen) > 0 && h0 != seen[len(seen)-1].Position {
		t.Errorf("Head() after the writers finished = %s, want the last event's position %s", h0, seen[len(seen)-1].Position)
	}
	// The log itself must hold every committed event once.
	log := readAll(t, reader, evento.All())
	if len(log) != len(committed) {
		t.Errorf("Read(All) after the writers finished returned %d events, want the %d committed", len(log), len(committed))
	}
}
