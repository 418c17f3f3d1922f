package executortest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/evento-go/evento"
	"github.com/evento-go/evento/executor"
	"github.com/oklog/ulid/v2"
)

// StressEnv names the environment variable that sizes the stress test:
// unset for the default (CI) size, "long" for the long form, or a number N
// to multiply the default commits per writer by N. See the package doc.
const StressEnv = "EVENTO_STRESS"

// stressSize is how much the stress test writes.
type stressSize struct {
	label           string
	writers         int // goroutines in this process
	commits         int // per writer
	children        int // child processes (MultiProcess backends with Harness.DSN)
	childGoroutines int // writers per child
	childCommits    int // per child writer
}

func (s stressSize) String() string {
	return fmt.Sprintf("%s: %d writers × %d commits in this process, %d child processes × %d writers × %d commits",
		s.label, s.writers, s.commits, s.children, s.childGoroutines, s.childCommits)
}

// stressSizeFromEnv reads StressEnv, -short and the race detector.
func stressSizeFromEnv(t *testing.T) stressSize {
	s := stressSize{label: "default", writers: 32, commits: 60, children: 2, childGoroutines: 4, childCommits: 40}
	switch {
	case raceEnabled:
		s = stressSize{label: "race", writers: 32, commits: 20, children: 2, childGoroutines: 2, childCommits: 20}
	case testing.Short():
		s = stressSize{label: "short", writers: 32, commits: 15, children: 2, childGoroutines: 2, childCommits: 15}
	}
	switch v := strings.TrimSpace(os.Getenv(StressEnv)); v {
	case "":
	case "long":
		s = stressSize{label: "long", writers: 64, commits: 600, children: 6, childGoroutines: 8, childCommits: 300}
	default:
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			t.Fatalf("%s=%q: want \"long\" or a positive multiplier", StressEnv, v)
		}
		s.label = fmt.Sprintf("%s×%d", s.label, n)
		s.commits *= n
		s.childCommits *= n
	}
	return s
}

// stressShape is one query shape the tailing readers follow. q returns the
// query under a routing (the type+id shape picks an aggregate with the
// routing's key so that its expected set is not empty).
type stressShape struct {
	name string
	q    func(r evento.Routing) evento.Query
}

var stressShapes = []stressShape{
	{"All", func(evento.Routing) evento.Query { return evento.All() }},
	{"Type", func(evento.Routing) evento.Query { return evento.ByType(stressA) }},
	{"TypeID", func(r evento.Routing) evento.Query {
		if r.IsNone() {
			return evento.ByAggregate(stressA, "hot-none")
		}
		return evento.ByAggregate(stressA, "hot-k1")
	}},
	{"TypeName", func(evento.Routing) evento.Query { return evento.ByName(stressA, "N1") }},
	{"OrTypes", func(evento.Routing) evento.Query {
		return evento.ByType(stressA).Or(evento.Filter{AggregateType: stressB})
	}},
	{"OrMixed", func(evento.Routing) evento.Query {
		return evento.ByName(stressA, "N2").Or(
			evento.Filter{AggregateType: stressB, AggregateID: "hot-b"},
			evento.Filter{AggregateType: stressC, Name: "N3"},
			evento.Filter{AggregateType: stressA, AggregateID: "hot-none"})
	}},
}

var stressRoutings = []struct {
	name string
	r    evento.Routing
}{
	{"any", evento.AnyRouting()},
	{"nokey", evento.NoRoutingKey()},
	{"k1", evento.RoutingKey("k1")},
}

// RunStress runs the stress test alone (Run runs it as Events/Stress).
func RunStress(t *testing.T, h Harness) {
	t.Helper()
	parallel(t, h, "Stress", testStress)
}

// testStress is the global-order stress test: tens of writers (and, for a
// MultiProcess backend with Harness.DSN, child processes) commit batches
// over several aggregate types, names and routing keys, racing on shared
// aggregates, while one tailing reader per query shape and routing pages
// forward from its last cursor with small pages, and point readers race
// ReadAggregate and AggregateVersion against the writers. Every reader
// must end with exactly the committed events its query matches, in
// ascending position order; every event a point read returns must already
// be below Head and usable as a cursor.
func testStress(t *testing.T, h Harness) {
	size := stressSizeFromEnv(t)
	limit := 10 * time.Minute
	if size.label != "default" && size.label != "short" && size.label != "race" {
		limit = 55 * time.Minute
	}
	ctx, cancel := context.WithTimeout(t.Context(), limit)
	defer cancel()

	// Executors: over the DSN when the harness has one (children open the
	// same DSN), else over NewStore.
	var open OpenFunc
	dsn := ""
	if h.DSN != nil {
		dsn = h.DSN(t)
		open = func(ctx context.Context) (evento.Executor, error) { return executor.Open(ctx, dsn) }
	} else {
		if h.NewStore == nil {
			t.Fatal("executortest: Harness.NewStore is nil")
		}
		open = h.NewStore(t)
	}
	x := reopen(t, open)
	execs := []evento.Executor{x}
	caps := x.Capabilities()
	if caps.MultiProcess {
		execs = append(execs, reopen(t, open))
	}
	// Readers open the reader DSN when the harness has one.
	rexecs := execs
	if h.ReaderDSN != nil && dsn != "" {
		rdsn := h.ReaderDSN(t, dsn)
		ropen := func(ctx context.Context) (evento.Executor, error) { return executor.Open(ctx, rdsn) }
		rexecs = nil
		for range execs {
			rexecs = append(rexecs, reopen(t, ropen))
		}
		t.Logf("stress: readers open %s", executor.Redact(rdsn))
	}
	var children *stressChildren
	switch {
	case !caps.MultiProcess:
		size.children = 0
	case dsn == "":
		t.Logf("stress: %s is MultiProcess but the harness has no DSN: no child processes", caps.Name)
		size.children = 0
	case size.children > 0:
		children = startStressChildren(t, dsn, size.children, size.childGoroutines, size.childCommits)
	}
	t.Logf("stress[%s] size %s; %d executors", caps.Name, size, len(execs))

	faults := newStressFaults()
	done := make(chan struct{})

	// Tailing readers, spread over the executors.
	var readers []*stressReader
	var rwg sync.WaitGroup
	for i, sh := range stressShapes {
		for j, rt := range stressRoutings {
			n := len(readers)
			spin := rt.name == "any" && (sh.name == "All" || sh.name == "OrTypes")
			pageSize := 7 + (i*len(stressRoutings)+j)*11%44
			if spin {
				// Readers that keep up with the head, where the races are.
				pageSize = 50
			}
			r := &stressReader{
				shape: sh.name, routing: rt.name,
				q:        sh.q(rt.r).WithRouting(rt.r),
				pageSize: pageSize,
				x:        rexecs[n%len(rexecs)],
				// Two readers poll without waiting for a signal.
				spin:    spin,
				seenIDs: map[ulid.ULID]int{},
			}
			readers = append(readers, r)
			rwg.Go(func() { r.run(ctx, done) })
		}
	}
	// Point readers, one per executor.
	var pwg sync.WaitGroup
	var pointReads atomic.Int64
	for i, px := range rexecs {
		pwg.Go(func() { stressPointReader(ctx, px, i, done, faults, &pointReads) })
	}

	// Writers.
	var (
		mu      sync.Mutex
		commits []stressCommit
		lost    int
	)
	var wwg sync.WaitGroup
	start := make(chan struct{})
	for w := range size.writers {
		wwg.Go(func() {
			wr := newStressWriter(fmt.Sprintf("w%d", w), w, w%len(execs), execs[w%len(execs)])
			<-start
			for c := range size.commits {
				cm, err := wr.commit(ctx, c)
				if err != nil {
					t.Error(err)
					break
				}
				mu.Lock()
				commits = append(commits, cm)
				mu.Unlock()
			}
			mu.Lock()
			lost += wr.conflicts
			mu.Unlock()
		})
	}
	began := time.Now()
	close(start)
	if children != nil {
		children.start()
	}
	wwg.Wait()
	if children != nil {
		children.wait()
	}
	writeTime := time.Since(began)
	close(done)
	rwg.Wait()
	pwg.Wait()
	readTime := time.Since(began)

	// The model: every acknowledged event.
	model := map[ulid.ULID]evento.Event{}
	var all []evento.Event
	add := func(e evento.Event, who string) {
		if _, dup := model[e.ID]; dup {
			t.Errorf("two acknowledged events have ID %s (the second from %s: %s)", e.ID, who, describe(&e))
		}
		model[e.ID] = e
		all = append(all, e)
	}
	nCommits := len(commits)
	for _, c := range commits {
		for _, e := range c.batch {
			add(e, "writer "+c.writer)
		}
	}
	if children != nil {
		for _, p := range children.procs {
			for _, e := range p.events {
				add(e, fmt.Sprintf("child process %d", p.idx))
			}
			lost += p.conflicts
		}
	}
	slices.SortFunc(all, func(a, b evento.Event) int { return a.Position.Compare(b.Position) })
	for i := 1; i < len(all); i++ {
		if all[i-1].Position == all[i].Position {
			t.Errorf("two acknowledged events share position %s: %s and %s", all[i].Position, describe(&all[i-1]), describe(&all[i]))
		}
	}
	t.Logf("stress[%s]: %d in-process commits + %d child events, %d events acknowledged in %v (%d lost races retried); readers caught up after %v; %d point reads",
		caps.Name, nCommits, len(all)-countEvents(commits), len(all), writeTime.Round(time.Millisecond), lost, readTime.Round(time.Millisecond), pointReads.Load())

	checkStressVersions(t, execs[0], all)
	checkStressCommitOrder(t, commits)
	faults.report(t)

	// Each tailing reader against the model.
	for _, r := range readers {
		r.check(t, caps.Name, size, all, model)
	}
	if t.Failed() {
		return
	}
	if len(all) > 0 {
		wantHead(t, rexecs[len(rexecs)-1], all[len(all)-1].Position)
	}
}

func countEvents(cs []stressCommit) int {
	n := 0
	for _, c := range cs {
		n += len(c.batch)
	}
	return n
}

// stressFaults collects the point readers' findings.
type stressFaults struct {
	mu    sync.Mutex
	count map[string]int
	first map[string][]string
}

func newStressFaults() *stressFaults {
	return &stressFaults{count: map[string]int{}, first: map[string][]string{}}
}

func (f *stressFaults) add(kind, msg string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.count[kind]++
	if len(f.first[kind]) < 5 {
		f.first[kind] = append(f.first[kind], msg)
	}
}

func (f *stressFaults) report(t *testing.T) {
	t.Helper()
	kinds := make([]string, 0, len(f.count))
	for k := range f.count {
		kinds = append(kinds, k)
	}
	sort.Strings(kinds)
	for _, k := range kinds {
		t.Errorf("point reads: %s: %d times; first:\n\t%s", k, f.count[k], strings.Join(f.first[k], "\n\t"))
	}
}

// stressPointReader races the point read paths against the writers until
// done: every event ReadAggregate returns, and the event at the version
// AggregateVersion reports, must be visible the way a committed event is:
// Head is at or past its position, and its cursor is a valid After.
func stressPointReader(ctx context.Context, x evento.Executor, n int, done <-chan struct{}, faults *stressFaults, reads *atomic.Int64) {
	aggs := slices.Clone(stressHot)
	for w := n; w < 8; w += 2 {
		aggs = append(aggs, newStressWriter(fmt.Sprintf("w%d", w), w, 0, nil).own[:3]...)
	}
	last := make([]uint64, len(aggs))
	visible := func(path string, e *evento.Event) {
		h, err := x.Head(ctx)
		if err != nil {
			faults.add("Head failed", fmt.Sprintf("Head() = %v", err))
			return
		}
		if h.Less(e.Position) {
			faults.add(path+" returned an event beyond Head",
				fmt.Sprintf("%s returned %s, then Head() = %s: the event was visible before its Write could return, or beyond the head readers page to (a cursor taken from it, e.g. a snapshot's, would skip events committed later below it)", path, describe(e), h))
		}
		if _, err := x.Read(ctx, evento.All().First(1, e.Cursor())); err != nil {
			kind := path + " returned an event whose cursor Read refuses"
			if !errors.Is(err, evento.ErrInvalidCursor) {
				kind = "Read after a point-read event failed"
			}
			faults.add(kind, fmt.Sprintf("%s returned %s, then Read(All().First(1, its cursor)) = %v", path, describe(e), err))
		}
	}
	for {
		select {
		case <-done:
			return
		case <-ctx.Done():
			return
		default:
		}
		for i := range aggs {
			a := &aggs[i]
			evs, err := x.ReadAggregate(ctx, a.typ, a.id, last[i], 0)
			reads.Add(1)
			if err != nil {
				if ctx.Err() == nil {
					faults.add("ReadAggregate failed", fmt.Sprintf("ReadAggregate(%s, %s, %d, 0) = %v", a.typ, a.id, last[i], err))
				}
				continue
			}
			for k := range evs {
				if want := last[i] + uint64(k) + 1; evs[k].Version != want {
					faults.add("ReadAggregate returned versions out of order",
						fmt.Sprintf("ReadAggregate(%s, %s, after %d) event %d is %s, want version %d", a.typ, a.id, last[i], k, describe(&evs[k]), want))
					evs = nil
					break
				}
			}
			if len(evs) > 0 {
				e := &evs[len(evs)-1]
				visible("ReadAggregate", e)
				last[i] = e.Version
			}
			v, err := x.AggregateVersion(ctx, a.typ, a.id)
			reads.Add(1)
			if err != nil {
				if ctx.Err() == nil {
					faults.add("AggregateVersion failed", fmt.Sprintf("AggregateVersion(%s, %s) = %v", a.typ, a.id, err))
				}
				continue
			}
			if v < last[i] {
				faults.add("AggregateVersion went back", fmt.Sprintf("AggregateVersion(%s, %s) = %d after ReadAggregate returned version %d", a.typ, a.id, v, last[i]))
				continue
			}
			if v == last[i] {
				continue
			}
			evs, err = x.ReadAggregate(ctx, a.typ, a.id, v-1, 1)
			reads.Add(1)
			if err != nil {
				if ctx.Err() == nil {
					faults.add("ReadAggregate failed", fmt.Sprintf("ReadAggregate(%s, %s, %d, 1) = %v", a.typ, a.id, v-1, err))
				}
				continue
			}
			if len(evs) != 1 || evs[0].Version != v {
				faults.add("AggregateVersion reported a version ReadAggregate does not return",
					fmt.Sprintf("AggregateVersion(%s, %s) = %d, then ReadAggregate(after %d, limit 1) returned:%s", a.typ, a.id, v, v-1, describeEvents(evs)))
				continue
			}
			visible("AggregateVersion", &evs[0])
			last[i] = v
		}
	}
}

// stressReader tails one query shape under one routing.
type stressReader struct {
	shape, routing string
	q              evento.Query
	pageSize       int
	x              evento.Executor
	spin           bool

	seen       []evento.Event
	seenIDs    map[ulid.ULID]int
	seen2      int // duplicates
	pages      []stressPage
	violations []string
	nViolation int
	err        error
	reads      int
}

// stressPage is one non-empty page of a walk.
type stressPage struct {
	n           int
	after       evento.Position // the position of the After cursor (zero: start)
	first, last evento.Position
	at          time.Duration
}

func (r *stressReader) violate(format string, a ...any) {
	r.nViolation++
	if len(r.violations) < 5 {
		r.violations = append(r.violations, fmt.Sprintf(format, a...))
	}
}

func (r *stressReader) run(ctx context.Context, done <-chan struct{}) {
	if r.seenIDs == nil {
		r.seenIDs = map[ulid.ULID]int{}
	}
	notify := r.x.Notify(ctx)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	began := time.Now()
	after := ""
	var lastPos evento.Position
	empty := 0
	for {
		// Read done before the page: a page read after every writer
		// finished that has no next page ends the walk.
		finished := false
		select {
		case <-done:
			finished = true
		default:
		}
		page, err := r.x.Read(ctx, r.q.First(r.pageSize, after))
		r.reads++
		if err != nil {
			r.err = fmt.Errorf("%s = %w", describeQuery(r.q.First(r.pageSize, after)), err)
			return
		}
		if n := len(page.Events); n > 0 {
			empty = 0
			r.pages = append(r.pages, stressPage{n: n, after: lastPos, first: page.Events[0].Position, last: page.Events[n-1].Position, at: time.Since(began)})
			for i := range page.Events {
				e := page.Events[i]
				if !lastPos.Less(e.Position) {
					r.violate("page after %s holds %s at or behind the last position seen %s: an event appeared behind a passed cursor (or positions do not ascend)",
						describeCursor(after), describe(&e), lastPos)
				}
				if !r.q.Matches(&e) {
					r.violate("page after %s holds %s, which the query does not match", describeCursor(after), describe(&e))
				}
				if _, dup := r.seenIDs[e.ID]; dup {
					r.seen2++
					r.violate("saw %s twice", describe(&e))
					continue
				}
				r.seenIDs[e.ID] = len(r.seen)
				r.seen = append(r.seen, e)
				lastPos = e.Position
			}
			if page.PageInfo.EndCursor != page.Events[n-1].Cursor() {
				r.violate("page after %s: EndCursor %s is not the last event's cursor %s", describeCursor(after), describeCursor(page.PageInfo.EndCursor), describeCursor(page.Events[n-1].Cursor()))
			}
			after = page.PageInfo.EndCursor
		} else if page.PageInfo.HasNextPage {
			if empty++; empty > 100 {
				r.err = fmt.Errorf("%s: 100 empty pages in a row with HasNextPage=true", describeQuery(r.q.First(r.pageSize, after)))
				return
			}
		}
		if page.PageInfo.HasNextPage {
			continue
		}
		if finished {
			return
		}
		if r.spin {
			continue
		}
		select {
		case <-notify:
		case <-tick.C:
		case <-done:
		case <-ctx.Done():
			r.err = fmt.Errorf("%s: %w before the walk ended", describeQuery(r.q), ctx.Err())
			return
		}
	}
}

// check compares the reader's walk with the model and logs its result
// line.
func (r *stressReader) check(t *testing.T, backend string, size stressSize, all []evento.Event, model map[ulid.ULID]evento.Event) {
	t.Helper()
	name := r.shape + "/" + r.routing
	if r.err != nil {
		t.Errorf("stress reader %s: %v", name, r.err)
		return
	}
	var want []evento.Event
	for i := range all {
		if r.q.Matches(&all[i]) {
			want = append(want, all[i])
		}
	}
	var missing []evento.Event
	for i := range want {
		if _, ok := r.seenIDs[want[i].ID]; !ok {
			missing = append(missing, want[i])
		}
	}
	extra := 0
	for i := range r.seen {
		e := &r.seen[i]
		m, ok := model[e.ID]
		if !ok {
			extra++
			r.violate("saw %s, which no Write acknowledged", describe(e))
			continue
		}
		if d := eventDiff(&m, e); d != "" {
			r.violate("saw %s differently from what Write returned: %s", describe(&m), d)
		}
	}
	t.Logf("stress[%s] %-8s %-6s page %2d: expected %5d, seen %5d, missed %4d, extra %d, duplicates %d, %d reads, %d pages",
		backend, r.shape, r.routing, r.pageSize, len(want), len(r.seen), len(missing), extra, r.seen2, r.reads, len(r.pages))
	if r.nViolation > 0 {
		t.Errorf("stress reader %s (%s): %d violations; first:\n\t%s", name, describeQuery(r.q), r.nViolation, strings.Join(r.violations, "\n\t"))
	}
	if len(missing) == 0 {
		return
	}
	var b strings.Builder
	fmt.Fprintf(&b, "stress reader %s (%s, pages of %d) missed %d of the %d committed events it matches (%s; %d events acknowledged in all); first missing:",
		name, describeQuery(r.q), r.pageSize, len(missing), len(want), size, len(all))
	for i := range missing {
		if i == 5 {
			fmt.Fprintf(&b, "\n\t… and %d more", len(missing)-i)
			break
		}
		e := &missing[i]
		culprit := "no page passed it"
		for k, p := range r.pages {
			if e.Position.Less(p.first) {
				culprit = fmt.Sprintf("jumped over by page %d (read %v into the run): after %s it returned %d events at [%s … %s]", k, p.at.Round(time.Millisecond), p.after, p.n, p.first, p.last)
				break
			}
		}
		fmt.Fprintf(&b, "\n\t%s: %s", describe(e), culprit)
	}
	// Is it missing from the store, or did the walk skip it?
	final := readAll(t, r.x, r.q)
	ids := map[ulid.ULID]bool{}
	for i := range final {
		ids[final[i].ID] = true
	}
	inStore := 0
	for i := range missing {
		if ids[missing[i].ID] {
			inStore++
		}
	}
	fmt.Fprintf(&b, "\n\ta fresh read of the shape now returns %d events and holds %d of the %d missed: they appeared behind the reader's cursor", len(final), inStore, len(missing))
	t.Error(b.String())
}

// checkStressVersions checks that every aggregate's acknowledged events
// have versions 1..n, once each, and that the store reports version n.
func checkStressVersions(t *testing.T, x evento.Executor, all []evento.Event) {
	t.Helper()
	byAgg := map[evento.AggregateRef][]uint64{}
	keys := map[evento.AggregateRef]string{}
	for i := range all {
		e := &all[i]
		ref := evento.AggregateRef{Type: e.AggregateType, ID: e.AggregateID}
		byAgg[ref] = append(byAgg[ref], e.Version)
		if k, ok := keys[ref]; ok && k != e.RoutingKey {
			t.Errorf("aggregate %s/%s has events with routing keys %q and %q", ref.Type, ref.ID, k, e.RoutingKey)
		}
		keys[ref] = e.RoutingKey
	}
	bad := 0
	for ref, vs := range byAgg {
		slices.Sort(vs)
		for i, v := range vs {
			if v != uint64(i+1) && bad < 10 {
				bad++
				t.Errorf("aggregate %s/%s: acknowledged versions %v, want 1..%d once each", ref.Type, ref.ID, vs, len(vs))
				break
			}
		}
		if ref.ID == "hot-k1" || ref.ID == "hot-none" || ref.ID == "hot-b" {
			wantVersion(t, x, ref.Type, ref.ID, uint64(len(vs)))
		}
	}
}

// checkStressCommitOrder checks that positions agree with commit order:
// when one Write returned before another started, its events have the
// smaller positions.
func checkStressCommitOrder(t *testing.T, commits []stressCommit) {
	t.Helper()
	byEnd := slices.Clone(commits)
	slices.SortFunc(byEnd, func(a, b stressCommit) int { return a.end.Compare(b.end) })
	// maxUpTo[i] is the index of the commit with the largest last position
	// among byEnd[:i+1].
	maxUpTo := make([]int, len(byEnd))
	for i := range byEnd {
		maxUpTo[i] = i
		if i > 0 {
			j := maxUpTo[i-1]
			if byEnd[i].batch[len(byEnd[i].batch)-1].Position.Less(byEnd[j].batch[len(byEnd[j].batch)-1].Position) {
				maxUpTo[i] = j
			}
		}
	}
	reported := 0
	for _, b := range commits {
		// Commits that returned before b started.
		n := sort.Search(len(byEnd), func(i int) bool { return !byEnd[i].end.Before(b.start) })
		if n == 0 {
			continue
		}
		a := byEnd[maxUpTo[n-1]]
		la, fb := &a.batch[len(a.batch)-1], &b.batch[0]
		if !la.Position.Less(fb.Position) {
			if reported++; reported <= 10 {
				t.Errorf("positions disagree with commit order: Write of %s (writer %s) returned before Write of %s (writer %s) started, but they got positions %s and %s",
					describe(la), a.writer, describe(fb), b.writer, la.Position, fb.Position)
			}
		}
	}
}
