package postgres_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/evento-go/evento"
	"github.com/evento-go/evento/executor/executortest"
	"github.com/evento-go/evento/executor/postgres"
	"github.com/evento-go/evento/executor/postgres/postgrestest"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/oklog/ulid/v2"
)

// The ordering stress test: many writers in two executors of this process
// and in child processes append to one schema while tailing readers of
// several query shapes follow the log. Every reader must end up having seen
// every committed event that matches its query, in increasing position
// order, each once. Sizes can be raised with EVENTO_STRESS_WRITERS (per
// executor), EVENTO_STRESS_COMMITS (per writer), EVENTO_STRESS_CHILDREN and
// EVENTO_STRESS_ROUNDS.

// Child roles (see runChild): childEnv+"_ROLE".
const (
	roleOrdering = "ordering"
)

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// stressPlan is one writer's deterministic workload.
type stressPlan struct {
	prefix  string // unique per writer across processes
	commits int
}

// batch returns the events of commit i, given the versions written so far
// (updated). Commits write 1 to 3 events to one of three aggregates (types A
// and B, names E1 and E2, routing key r1 for some), and every fifth commit
// also appends to a second aggregate.
func (p stressPlan) batch(i int, versions map[string]uint64) []evento.Event {
	var out []evento.Event
	add := func(k, n int) {
		typ := []string{"A", "B", "A"}[k]
		id := fmt.Sprintf("%s-%d", p.prefix, k)
		for j := range n {
			versions[id]++
			e := evento.Event{AggregateType: typ, AggregateID: id, Version: versions[id],
				Name: []string{"E1", "E2"}[(i+j)%2], Data: []byte{byte(i)}}
			if k == 2 {
				e.RoutingKey = "r1"
			}
			out = append(out, e)
		}
	}
	k := i % 3
	add(k, 1+(i+len(p.prefix))%3)
	if i%5 == 0 {
		add((k+1)%3, 1)
	}
	return out
}

// events is how many events the plan writes.
func (p stressPlan) events() int {
	n, v := 0, map[string]uint64{}
	for i := range p.commits {
		n += len(p.batch(i, v))
	}
	return n
}

// run writes the plan's commits to s.
func (p stressPlan) run(ctx context.Context, s evento.EventStore) error {
	v := map[string]uint64{}
	for i := range p.commits {
		b := p.batch(i, v)
		if err := s.Write(ctx, b); err != nil {
			return fmt.Errorf("writer %s commit %d: %w", p.prefix, i, err)
		}
	}
	return nil
}

// openIsolated opens a store on dsn's schema over a pool whose sessions
// default to the transaction isolation iso ("" for the server's default),
// as a database or role default would. It does not depend on Open's DSN
// handling.
func openIsolated(ctx context.Context, dsn, iso string, conns int32) (*postgres.Store, func(), error) {
	u, err := url.Parse(dsn)
	if err != nil {
		return nil, nil, err
	}
	q := u.Query()
	schema := q.Get("schema")
	q.Del("schema")
	u.RawQuery = q.Encode()
	cfg, err := pgxpool.ParseConfig(u.String())
	if err != nil {
		return nil, nil, err
	}
	if iso != "" {
		cfg.ConnConfig.RuntimeParams["default_transaction_isolation"] = iso
	}
	cfg.MaxConns = conns // the server's 100 connections are shared
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, nil, err
	}
	s, err := postgres.New(ctx, pool, postgres.WithSchema(schema))
	if err != nil {
		pool.Close()
		return nil, nil, err
	}
	return s, func() { s.Close(); pool.Close() }, nil
}

// stressTailer follows one query from the start of the log.
type stressTailer struct {
	name  string
	q     evento.Query
	s     *postgres.Store
	after string
	last  evento.Position
	seen  map[ulid.ULID]evento.Event
	reads int
}

// step reads pages until there is no next one.
func (r *stressTailer) step(ctx context.Context) error {
	for {
		p, err := r.s.Read(ctx, r.q.First(100, r.after))
		if err != nil {
			return fmt.Errorf("%s: Read: %w", r.name, err)
		}
		r.reads++
		for _, e := range p.Events {
			if !r.last.Less(e.Position) {
				return fmt.Errorf("%s: event %s/%s v%d at %s after the reader's position %s", r.name, e.AggregateType, e.AggregateID, e.Version, e.Position, r.last)
			}
			if !r.q.Matches(&e) {
				return fmt.Errorf("%s: event %s/%s v%d does not match the query", r.name, e.AggregateType, e.AggregateID, e.Version)
			}
			if _, dup := r.seen[e.ID]; dup {
				return fmt.Errorf("%s: event %s seen twice", r.name, e.ID)
			}
			r.last = e.Position
			r.seen[e.ID] = e
		}
		if len(p.Events) > 0 {
			r.after = p.PageInfo.EndCursor
		}
		if !p.PageInfo.HasNextPage {
			return nil
		}
	}
}

func stressQueries() map[string]evento.Query {
	return map[string]evento.Query{
		"all":      evento.All(),
		"or":       evento.ByName("A", "E1").Or(evento.Filter{AggregateType: "B"}),
		"type-key": evento.ByType("A").WithRouting(evento.RoutingKey("r1")),
		"nokey":    evento.All().WithRouting(evento.NoRoutingKey()),
		// Spinning readers (name ending in "!") read again as soon as a
		// step ends instead of waiting for Notify: more horizons computed
		// while writers are between steps of their commit.
		"all!": evento.All(),
		"or!":  evento.ByType("B").Or(evento.Filter{AggregateType: "A", Name: "E2"}),
	}
}

// TestOrderingStress: see the comment at the top of the file. It was the
// first test to catch PostgreSQL readers skipping events; the shared
// Conformance/Events/Stress now races the same writers, child processes and
// isolation levels against every query shape on every backend, so this one
// runs only in the long tier (EVENTO_STRESS set, as in the README's long
// command, or its own EVENTO_STRESS_ROUNDS).
func TestOrderingStress(t *testing.T) {
	if os.Getenv(executortest.StressEnv) == "" && os.Getenv("EVENTO_STRESS_ROUNDS") == "" {
		t.Skip("covered by Conformance/Events/Stress; set EVENTO_STRESS=long (or EVENTO_STRESS_ROUNDS) to run it too")
	}
	for _, iso := range []string{"read committed", "repeatable read", "serializable"} {
		t.Run(strings.ReplaceAll(iso, " ", "_"), func(t *testing.T) {
			rounds := envInt("EVENTO_STRESS_ROUNDS", 1)
			total := 0
			for round := range rounds {
				missed := stressRound(t, iso, round)
				total += missed
			}
			if total > 0 {
				t.Fatalf("%d events missed by tailing readers over %d rounds", total, rounds)
			}
		})
	}
}

// stressRound runs one round and returns how many events the tailing
// readers missed in total (each reader counted separately).
func stressRound(t *testing.T, iso string, round int) int {
	writers := envInt("EVENTO_STRESS_WRITERS", 16) // per executor
	defCommits := 300
	if raceEnabled || testing.Short() {
		defCommits = 100
	}
	commits := envInt("EVENTO_STRESS_COMMITS", defCommits)
	children := envInt("EVENTO_STRESS_CHILDREN", 2)
	childWriters := envInt("EVENTO_STRESS_CHILD_WRITERS", 8)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	dsn := postgrestest.DSN(t)
	var stores []*postgres.Store
	for range 2 {
		s, closeFn, err := openIsolated(ctx, dsn, iso, 16)
		if err != nil {
			t.Fatal(err)
		}
		defer closeFn()
		stores = append(stores, s)
	}

	// Children start, open their stores and say "ready"; they write when
	// told "go" on stdin.
	type child struct {
		cmd   *exec.Cmd
		stdin io.WriteCloser
		done  chan error
	}
	var kids []child
	want := 0
	for c := range children {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), childEnv+"="+dsn, childEnv+"_ID="+strconv.Itoa(c), childEnv+"_ROLE="+roleOrdering,
			childEnv+"_ISO="+iso, childEnv+"_WRITERS="+strconv.Itoa(childWriters), childEnv+"_COMMITS="+strconv.Itoa(commits))
		cmd.Stderr = os.Stderr
		stdin, err := cmd.StdinPipe()
		if err != nil {
			t.Fatal(err)
		}
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		k := child{cmd: cmd, stdin: stdin, done: make(chan error, 1)}
		line, err := bufio.NewReader(stdout).ReadString('\n')
		if err != nil || strings.TrimSpace(line) != "ready" {
			_ = cmd.Process.Kill()
			t.Fatalf("child %d: %q, %v", c, line, err)
		}
		go func() { _, _ = io.Copy(io.Discard, stdout); k.done <- cmd.Wait() }()
		kids = append(kids, k)
		for w := range childWriters {
			want += childPlan(c, w, commits).events()
		}
	}

	var writersWG sync.WaitGroup
	var werrs sync.Map
	var werrN atomic.Int64
	for e, s := range stores {
		for w := range writers {
			p := stressPlan{prefix: fmt.Sprintf("p-e%d-w%d", e, w), commits: commits}
			want += p.events()
			writersWG.Go(func() {
				if err := p.run(ctx, s); err != nil {
					werrs.Store(p.prefix, err)
					werrN.Add(1)
				}
			})
		}
	}
	for _, k := range kids {
		if _, err := io.WriteString(k.stdin, "go\n"); err != nil {
			t.Fatal(err)
		}
		k.stdin.Close()
	}
	finished := make(chan struct{})
	go func() {
		writersWG.Wait()
		for c, k := range kids {
			if err := <-k.done; err != nil {
				werrs.Store(fmt.Sprintf("child %d", c), err)
				werrN.Add(1)
			}
		}
		close(finished)
	}()

	var tailers []*stressTailer
	i := 0
	for name, q := range stressQueries() {
		tailers = append(tailers, &stressTailer{name: name, q: q, s: stores[i%2], seen: map[ulid.ULID]evento.Event{}})
		i++
	}
	var readersWG sync.WaitGroup
	terrs := make([]error, len(tailers))
	for i, r := range tailers {
		readersWG.Go(func() {
			notify := r.s.Notify(ctx)
			spin := strings.HasSuffix(r.name, "!")
			for {
				if spin {
					select {
					case <-finished:
						terrs[i] = r.step(ctx)
						return
					default:
					}
				} else {
					select {
					case <-finished:
						// Every write has returned: a last step sees it all.
						terrs[i] = r.step(ctx)
						return
					case <-notify:
					}
				}
				if err := r.step(ctx); err != nil {
					terrs[i] = err
					<-finished
					return
				}
			}
		})
	}
	readersWG.Wait()
	werrs.Range(func(k, v any) bool {
		t.Errorf("write %v: %v", k, v)
		return true
	})
	for _, err := range terrs {
		if err != nil {
			t.Error(err)
		}
	}

	// The whole log, read after every writer finished.
	full := &stressTailer{name: "final", q: evento.All(), s: stores[0], seen: map[ulid.ULID]evento.Event{}}
	if err := full.step(ctx); err != nil {
		t.Fatal(err)
	}
	if len(full.seen) != want && werrN.Load() == 0 {
		t.Errorf("log holds %d events, want %d", len(full.seen), want)
	}
	missed := 0
	for _, r := range tailers {
		m, match := 0, 0
		for id, e := range full.seen {
			if r.q.Matches(&e) {
				match++
				if _, ok := r.seen[id]; !ok {
					m++
				}
			}
		}
		if len(r.seen) != match-m {
			t.Errorf("%s: saw %d events that are not in the log", r.name, len(r.seen)-(match-m))
		}
		if m > 0 {
			t.Errorf("round %d, isolation %s: reader %s missed %d of %d events (%d reads)", round, iso, r.name, m, match, r.reads)
		}
		missed += m
	}
	t.Logf("round %d, isolation %s: %d events from %d writers in 2 executors and %d in %d child processes, %d commits each; readers missed %d",
		round, iso, want, 2*writers, children*childWriters, children, commits, missed)
	return missed
}

func childPlan(c, w, commits int) stressPlan {
	return stressPlan{prefix: fmt.Sprintf("c%d-w%d", c, w), commits: commits}
}

// runOrderingChild is a writer process of TestOrderingStress: it opens the
// store, prints "ready", waits for a line on stdin, runs its writers and
// exits.
func runOrderingChild() int {
	dsn := os.Getenv(childEnv)
	id, _ := strconv.Atoi(os.Getenv(childEnv + "_ID"))
	writers, _ := strconv.Atoi(os.Getenv(childEnv + "_WRITERS"))
	commits, _ := strconv.Atoi(os.Getenv(childEnv + "_COMMITS"))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	s, closeFn, err := openIsolated(ctx, dsn, os.Getenv(childEnv+"_ISO"), 6)
	if err != nil {
		fmt.Fprintln(os.Stderr, "child open:", err)
		return 1
	}
	defer closeFn()
	fmt.Println("ready")
	if _, err := bufio.NewReader(os.Stdin).ReadString('\n'); err != nil {
		fmt.Fprintln(os.Stderr, "child: no go:", err)
		return 1
	}
	var wg sync.WaitGroup
	var failed atomic.Bool
	for w := range writers {
		wg.Go(func() {
			if err := childPlan(id, w, commits).run(ctx, s); err != nil {
				fmt.Fprintln(os.Stderr, "child write:", err)
				failed.Store(true)
			}
		})
	}
	wg.Wait()
	if failed.Load() {
		return 1
	}
	return 0
}
