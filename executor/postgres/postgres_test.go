package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/evento-go/evento"
	"github.com/evento-go/evento/cursor"
	"github.com/evento-go/evento/executor"
	"github.com/evento-go/evento/executor/postgres"
	"github.com/evento-go/evento/executor/postgres/postgrestest"
	"github.com/jackc/pgx/v5"
	"github.com/oklog/ulid/v2"
)

// open opens a store on a fresh schema, closed at cleanup.
func open(t testing.TB, opts ...postgres.Option) (*postgres.Store, string) {
	t.Helper()
	dsn := postgrestest.DSN(t)
	s, err := postgres.Open(context.Background(), dsn, opts...)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s, dsn
}

func rawConn(t testing.TB) *pgx.Conn {
	t.Helper()
	c, err := pgx.Connect(context.Background(), postgrestest.BaseDSN())
	if err != nil {
		postgrestest.Unreachable(t, err)
	}
	t.Cleanup(func() { c.Close(context.Background()) })
	return c
}

func ev(typ, id string, v uint64) evento.Event {
	return evento.Event{AggregateType: typ, AggregateID: id, Version: v, Name: "E", Data: []byte{1, 2, 3}}
}

// tailer reads forward from its cursor and checks that positions only grow
// and that no event is seen twice.
type tailer struct {
	t     testing.TB
	s     evento.EventStore
	after string
	last  evento.Position
	seen  map[ulid.ULID]evento.Event
	order []evento.Event
}

func newTailer(t testing.TB, s evento.EventStore) *tailer {
	return &tailer{t: t, s: s, seen: map[ulid.ULID]evento.Event{}}
}

// step reads until no next page and returns how many events it saw.
func (r *tailer) step(ctx context.Context) int {
	r.t.Helper()
	n := 0
	for {
		p, err := r.s.Read(ctx, evento.All().First(100, r.after))
		if err != nil {
			r.t.Fatalf("tail Read: %v", err)
		}
		for _, e := range p.Events {
			if !r.last.Less(e.Position) {
				r.t.Fatalf("event %s/%s v%d at %s appeared behind the reader's cursor %s", e.AggregateType, e.AggregateID, e.Version, e.Position, r.last)
			}
			if _, dup := r.seen[e.ID]; dup {
				r.t.Fatalf("event %s seen twice", e.ID)
			}
			r.last = e.Position
			r.seen[e.ID] = e
			r.order = append(r.order, e)
			n++
		}
		if len(p.Events) > 0 {
			r.after = p.PageInfo.EndCursor
		}
		if !p.PageInfo.HasNextPage {
			return n
		}
	}
}

// checkPerAggregate checks that each aggregate's events were seen in version
// order with no gap.
func checkPerAggregate(t testing.TB, seen []evento.Event) {
	t.Helper()
	next := map[string]uint64{}
	for _, e := range seen {
		k := e.AggregateType + "\x00" + e.AggregateID
		if want := next[k] + 1; e.Version != want {
			t.Fatalf("aggregate %s/%s: saw v%d, want v%d (per-aggregate order broken)", e.AggregateType, e.AggregateID, e.Version, want)
		}
		next[k] = e.Version
	}
}

type holdKey struct{}

// waitLockWaiter polls pg_locks until a backend waits for advisory lock key.
func waitLockWaiter(ctx context.Context, c *pgx.Conn, key int64) error {
	deadline := time.Now().Add(30 * time.Second)
	for {
		var n int
		err := c.QueryRow(ctx, `SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted
			AND classid = ($1::bigint >> 32)::oid AND objid = ($1::bigint & 4294967295)::oid AND objsubid = 1`, key).Scan(&n)
		if err != nil || n > 0 {
			return err
		}
		if time.Now().After(deadline) {
			return errors.New("held write never waited for the test's lock")
		}
		pause()
	}
}

// TestOrderingLongAndShortTransactions interleaves write transactions held
// open (after they took their transaction id, before they insert) with many
// short ones from several connections, while a reader tails the log: no
// event may appear behind the reader's cursor and every event is seen once.
func TestOrderingLongAndShortTransactions(t *testing.T) {
	// A held write takes its transaction id, then waits for an advisory
	// lock the test holds.
	hook := postgres.WithBeforeInsert(func(ctx context.Context) string {
		if k, ok := ctx.Value(holdKey{}).(int64); ok {
			return fmt.Sprintf("pg_current_xact_id(), pg_advisory_xact_lock(%d)", k)
		}
		return ""
	})
	s, _ := open(t, hook)
	holder := rawConn(t)
	const key = int64(0x5eed_0000_0001)
	ctx := context.Background()
	const shortWriters, shortCommits, longRounds = 6, 40, 8
	var committed atomic.Int64
	var (
		shortMu sync.Mutex
		shorts  []ulid.ULID // short events in commit order
		// rounds: each long write and the short events that committed
		// while it was open, after it took its transaction id.
		rounds []round
	)
	var wg sync.WaitGroup
	errs := make(chan error, 100)
	for w := range shortWriters {
		wg.Go(func() {
			for c := range shortCommits {
				batch := []evento.Event{ev("short", fmt.Sprintf("w%d", w), uint64(c+1))}
				if err := s.Write(ctx, batch); err != nil {
					errs <- err
					return
				}
				shortMu.Lock()
				shorts = append(shorts, batch[0].ID)
				shortMu.Unlock()
				committed.Add(1)
			}
		})
	}
	// Long transactions: take a transaction id, then stay open until the
	// short writers have committed more events, then commit.
	wg.Go(func() {
		for r := range longRounds {
			if _, err := holder.Exec(ctx, "SELECT pg_advisory_lock($1)", key); err != nil {
				errs <- err
				return
			}
			done := make(chan error, 1)
			lctx := context.WithValue(ctx, holdKey{}, key)
			batch := []evento.Event{ev("long", "l", uint64(2*r+1)), ev("long", "l", uint64(2*r+2))}
			go func() { done <- s.Write(lctx, batch) }()
			// Wait until the held write has its transaction id and waits.
			if err := waitLockWaiter(ctx, holder, key); err != nil {
				errs <- err
				return
			}
			shortMu.Lock()
			from := len(shorts)
			shortMu.Unlock()
			target := committed.Load() + 10
			deadline := time.Now().Add(30 * time.Second)
			for committed.Load() < target && committed.Load() < shortWriters*shortCommits && time.Now().Before(deadline) {
				pause()
			}
			shortMu.Lock()
			rounds = append(rounds, round{long: batch, overtaken: slices.Clone(shorts[from:])})
			shortMu.Unlock()
			if _, err := holder.Exec(ctx, "SELECT pg_advisory_unlock($1)", key); err != nil {
				errs <- err
				return
			}
			if err := <-done; err != nil {
				errs <- err
				return
			}
		}
	})
	r := newTailer(t, s)
	finished := make(chan struct{})
	go func() { wg.Wait(); close(finished) }()
	notify := s.Notify(ctx)
	for {
		select {
		case <-finished:
			r.step(ctx)
			close(errs)
			for err := range errs {
				t.Fatalf("Write: %v", err)
			}
			want := shortWriters*shortCommits + 2*longRounds
			if len(r.seen) != want {
				t.Fatalf("reader saw %d events, want %d", len(r.seen), want)
			}
			checkPerAggregate(t, r.order)
			// The log orders by transaction id, not commit time: some
			// short events that committed while a long transaction was
			// open must come after it, which is what the reader's horizon
			// had to wait for.
			idx := map[ulid.ULID]int{}
			for i, e := range r.order {
				idx[e.ID] = i
			}
			behind, total := 0, 0
			for _, rd := range rounds {
				for _, id := range rd.overtaken {
					total++
					if idx[id] > idx[rd.long[1].ID] {
						behind++
					}
				}
			}
			if behind == 0 {
				t.Fatalf("no short write committed during a long transaction was ordered after it (%d candidates): the test did not interleave", total)
			}
			t.Logf("%d of %d short events that committed while a long transaction was open are ordered after it", behind, total)
			return
		case <-notify:
		case <-time.After(50 * time.Millisecond):
		}
		r.step(ctx)
	}
}

// TestOrderingRawLongTransaction holds a transaction that follows the
// writer protocol open on another connection, with pg_sleep, while the
// store commits short writes: the reader must not pass the open one.
func TestOrderingRawLongTransaction(t *testing.T) {
	s, _ := open(t)
	ctx := context.Background()
	c := rawConn(t)
	if err := s.Write(ctx, []evento.Event{ev("x", "first", 1)}); err != nil {
		t.Fatal(err)
	}
	r := newTailer(t, s)
	if r.step(ctx) != 1 {
		t.Fatal("first event not seen")
	}
	// A writer in "another process" that stays open 300ms after inserting.
	longErr := make(chan error, 1)
	started := make(chan struct{})
	go func() {
		tx, err := c.Begin(ctx)
		if err == nil {
			_, err = tx.Exec(ctx, "SELECT pg_advisory_xact_lock_shared($1)", postgres.WritersLockKey(s.Schema()))
		}
		if err == nil {
			_, err = tx.Exec(ctx, "INSERT INTO "+pgx.Identifier{s.Schema()}.Sanitize()+".events (id, aggregate_type, aggregate_id, version, name) VALUES ($1, 'raw', 'long', 1, 'E')",
				ulid.Make().Bytes())
		}
		close(started)
		if err == nil {
			_, err = tx.Exec(ctx, "SELECT pg_sleep(0.3)")
		}
		if err == nil {
			err = tx.Commit(ctx)
		}
		longErr <- err
	}()
	<-started
	for i := range 20 {
		if err := s.Write(ctx, []evento.Event{ev("x", "short", uint64(i+1))}); err != nil {
			t.Fatal(err)
		}
		// The short writes committed after the open transaction took its
		// id: the reader may not see them before it.
		if n := r.step(ctx); n != 0 && len(r.seen) < 22 {
			if _, ok := findRaw(r.order); !ok {
				t.Fatalf("reader saw %d short events while an older writer was open", n)
			}
		}
	}
	if err := <-longErr; err != nil {
		t.Fatal(err)
	}
	r.step(ctx)
	if len(r.seen) != 22 {
		t.Fatalf("reader saw %d events, want 22", len(r.seen))
	}
	if i, _ := findRaw(r.order); i != 1 {
		t.Fatalf("the long transaction's event is at %d in the log, want 1 (right after the first event)", i)
	}
}

type round struct {
	long      []evento.Event
	overtaken []ulid.ULID
}

func findRaw(es []evento.Event) (int, bool) {
	for i, e := range es {
		if e.AggregateType == "raw" {
			return i, true
		}
	}
	return -1, false
}

func TestConcurrentOpenMigrates(t *testing.T) {
	dsn := postgrestest.DSN(t)
	ctx := context.Background()
	const n = 6
	stores := make([]*postgres.Store, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			stores[i], errs[i] = postgres.Open(ctx, dsn)
		})
	}
	close(start)
	wg.Wait()
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("concurrent Open %d: %v", i, errs[i])
		}
		defer stores[i].Close()
	}
	var rows, maxV int
	if err := stores[0].Pool().QueryRow(ctx, "SELECT count(*), max(version) FROM "+pgx.Identifier{stores[0].Schema()}.Sanitize()+".schema_migrations").Scan(&rows, &maxV); err != nil {
		t.Fatal(err)
	}
	if rows != postgres.SchemaVersion() || maxV != postgres.SchemaVersion() {
		t.Fatalf("schema_migrations has %d rows up to %d, want %d", rows, maxV, postgres.SchemaVersion())
	}
	// Every store works on the shared schema.
	for i, s := range stores {
		if err := s.Write(ctx, []evento.Event{ev("m", "a", uint64(i+1))}); err != nil {
			t.Fatalf("store %d Write: %v", i, err)
		}
	}
	if v, err := stores[0].AggregateVersion(ctx, "m", "a"); err != nil || v != n {
		t.Fatalf("AggregateVersion = %d, %v; want %d", v, err, n)
	}
}

func TestSchemaTooNew(t *testing.T) {
	s, dsn := open(t)
	ctx := context.Background()
	if _, err := s.Pool().Exec(ctx, "INSERT INTO "+pgx.Identifier{s.Schema()}.Sanitize()+".schema_migrations (version, name) VALUES ($1, 'future')", postgres.SchemaVersion()+1); err != nil {
		t.Fatal(err)
	}
	_, err := postgres.Open(ctx, dsn)
	if !errors.Is(err, evento.ErrSchemaTooNew) {
		t.Fatalf("Open of a schema from the future = %v, want ErrSchemaTooNew", err)
	}
	if strings.Contains(err.Error(), "evento:evento@") {
		t.Fatalf("error shows the password: %v", err)
	}
}

func TestOrderingRemembered(t *testing.T) {
	s, dsn := open(t, postgres.WithOrdering(postgres.OrderingAdvisoryLock))
	ctx := context.Background()
	if s.Ordering() != postgres.OrderingAdvisoryLock {
		t.Fatalf("Ordering = %s", s.Ordering())
	}
	s2, err := postgres.Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	if s2.Ordering() != postgres.OrderingAdvisoryLock {
		t.Fatalf("reopened store's Ordering = %s, want the schema's lock", s2.Ordering())
	}
	if _, err := postgres.Open(ctx, dsn+"&ordering=xid"); err == nil {
		t.Fatal("Open with another ordering than the schema's succeeded")
	}
}

func TestDSNErrorsRedactPassword(t *testing.T) {
	postgrestest.Require(t)
	ctx := context.Background()
	const pw = "Sup3r-S3cret-PW"
	base := postgrestest.BaseDSN()
	cases := []struct {
		name, dsn string
		invalid   bool
	}{
		{"unknown option", "postgres://evento:" + pw + "@127.0.0.1:5432/evento_test?sslmode=disable&schmea=x", true},
		{"bad ordering", "postgres://evento:" + pw + "@127.0.0.1:5432/evento_test?ordering=fast", true},
		{"bad port", "postgres://evento:" + pw + "@127.0.0.1:notaport/evento_test", true},
		{"unreachable", "postgres://evento:" + pw + "@127.0.0.1:1/evento_test?sslmode=disable&connect_timeout=2", false},
		{"wrong password", strings.Replace(base, "evento:evento@", "evento:"+pw+"@", 1), false},
		{"password option", "postgres://evento@127.0.0.1:1/evento_test?sslmode=disable&connect_timeout=2&password=" + pw, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			for _, openFn := range []func() error{
				func() error { s, err := postgres.Open(ctx, c.dsn); closeIf(s); return err },
				func() error { x, err := executor.Open(ctx, c.dsn); closeIf(x); return err },
			} {
				err := openFn()
				if err == nil {
					t.Fatal("Open succeeded")
				}
				if strings.Contains(err.Error(), pw) {
					t.Fatalf("error shows the password: %v", err)
				}
				if !strings.Contains(err.Error(), "127.0.0.1") {
					t.Fatalf("error does not name the DSN: %v", err)
				}
				if c.invalid && !errors.Is(err, executor.ErrInvalidDSN) {
					t.Fatalf("error %v does not wrap ErrInvalidDSN", err)
				}
			}
		})
	}
}

func closeIf(x interface{ Close() error }) {
	if x != nil && !isNilStore(x) {
		x.Close()
	}
}

func isNilStore(x any) bool { s, ok := x.(*postgres.Store); return ok && s == nil }

func TestExecutorOpenSchemes(t *testing.T) {
	dsn := postgrestest.DSN(t)
	ctx := context.Background()
	for _, d := range []string{dsn, "postgresql" + strings.TrimPrefix(dsn, "postgres")} {
		x, err := executor.Open(ctx, d)
		if err != nil {
			t.Fatalf("executor.Open(%s): %v", executor.Redact(d), err)
		}
		if c := x.Capabilities(); c.Name != "postgres" || !c.MultiProcess || !c.CrossProcessNotify || !c.StoreClock {
			t.Fatalf("Capabilities = %+v", c)
		}
		x.Close()
	}
}

// TestConnectionDroppedMidWrite kills the writing backend with
// pg_terminate_backend from another connection while the write transaction
// is open (after its ordering lock, before its INSERT): nothing of the batch
// lands and the next write works.
func TestConnectionDroppedMidWrite(t *testing.T) {
	for _, o := range []postgres.Ordering{postgres.OrderingTxHorizon, postgres.OrderingAdvisoryLock} {
		t.Run(string(o), func(t *testing.T) {
			killer := rawConn(t)
			const key = int64(0x5eed_0000_0002)
			var stall atomic.Bool
			hook := postgres.WithBeforeInsert(func(ctx context.Context) string {
				if stall.Load() {
					return fmt.Sprintf("pg_current_xact_id(), pg_advisory_xact_lock(%d)", key)
				}
				return ""
			})
			s, _ := open(t, hook, postgres.WithOrdering(o))
			ctx := context.Background()
			if err := s.Write(ctx, []evento.Event{ev("d", "a", 1)}); err != nil {
				t.Fatal(err)
			}
			if _, err := killer.Exec(ctx, "SELECT pg_advisory_lock($1)", key); err != nil {
				t.Fatal(err)
			}
			stall.Store(true)
			done := make(chan error, 1)
			go func() { done <- s.Write(ctx, []evento.Event{ev("d", "a", 2), ev("d", "a", 3), ev("d", "b", 1)}) }()
			if err := waitLockWaiter(ctx, killer, key); err != nil {
				t.Fatal(err)
			}
			var killed bool
			if err := killer.QueryRow(ctx, `SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted
				AND classid = ($1::bigint >> 32)::oid AND objid = ($1::bigint & 4294967295)::oid`, key).Scan(&killed); err != nil || !killed {
				t.Fatalf("pg_terminate_backend = %v, %v", killed, err)
			}
			if err := <-done; err == nil {
				t.Fatal("Write on a killed connection succeeded")
			}
			stall.Store(false)
			if _, err := killer.Exec(ctx, "SELECT pg_advisory_unlock($1)", key); err != nil {
				t.Fatal(err)
			}
			if v, err := s.AggregateVersion(ctx, "d", "a"); err != nil || v != 1 {
				t.Fatalf("after the failed write AggregateVersion = %d, %v; want 1", v, err)
			}
			if v, _ := s.AggregateVersion(ctx, "d", "b"); v != 0 {
				t.Fatalf("partial batch: d/b at v%d", v)
			}
			if err := s.Write(ctx, []evento.Event{ev("d", "a", 2), ev("d", "b", 1)}); err != nil {
				t.Fatalf("Write after the dropped connection: %v", err)
			}
			p, err := s.Read(ctx, evento.All())
			if err != nil || len(p.Events) != 3 {
				t.Fatalf("Read = %d events, %v; want 3", len(p.Events), err)
			}
		})
	}
}

// TestVersionConflictNewAggregate races writers creating the same new
// aggregate: one wins, the others get a *VersionConflictError with the
// actual version.
func TestVersionConflictNewAggregate(t *testing.T) {
	s, _ := open(t)
	ctx := context.Background()
	const n = 8
	var wg sync.WaitGroup
	var wins atomic.Int32
	for range n {
		wg.Go(func() {
			err := s.Write(ctx, []evento.Event{ev("new", "x", 1), ev("new", "x", 2)})
			var vc *evento.VersionConflictError
			switch {
			case err == nil:
				wins.Add(1)
			case errors.As(err, &vc):
				if vc.Expected != 0 || vc.Actual != 2 || vc.AggregateID != "x" {
					t.Errorf("conflict = %+v, want expected 0 actual 2", vc)
				}
			default:
				t.Errorf("Write = %v", err)
			}
		})
	}
	wg.Wait()
	if wins.Load() != 1 {
		t.Fatalf("%d writers created the aggregate, want 1", wins.Load())
	}
}

func TestNotifyAcrossStoresAndListenReconnect(t *testing.T) {
	a, dsn := open(t)
	ctx := context.Background()
	b, err := postgres.Open(ctx, dsn, postgres.WithoutListen())
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	waitListening(t, a, 0)
	nctx, cancel := context.WithCancel(ctx)
	ch := a.Notify(nctx)
	drain(ch)
	if err := b.Write(ctx, []evento.Event{ev("n", "a", 1)}); err != nil {
		t.Fatal(err)
	}
	waitSignal(t, ch, "a commit by another store")

	// Kill the LISTEN connection: the store reconnects and signals again.
	old := postgres.ListenPID(a)
	c := rawConn(t)
	if _, err := c.Exec(ctx, "SELECT pg_terminate_backend($1)", int32(old)); err != nil {
		t.Fatal(err)
	}
	waitListening(t, a, old)
	drain(ch)
	if err := b.Write(ctx, []evento.Event{ev("n", "a", 2)}); err != nil {
		t.Fatal(err)
	}
	waitSignal(t, ch, "a commit by another store after the LISTEN connection was replaced")

	cancel()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case _, ok := <-ch:
			if !ok {
				goto closed
			}
		case <-deadline:
			t.Fatal("Notify channel not closed after its context was cancelled")
		}
	}
closed:
	// Without LISTEN, b learns of a's commits by polling.
	bch := b.Notify(ctx)
	drain(bch)
	if err := a.Write(ctx, []evento.Event{ev("n", "a", 3)}); err != nil {
		t.Fatal(err)
	}
	waitSignal(t, bch, "a commit seen by the polling fallback")
}

func drain(ch <-chan struct{}) {
	for {
		select {
		case <-ch:
		default:
			return
		}
	}
}

func waitSignal(t *testing.T, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case _, ok := <-ch:
		if !ok {
			t.Fatalf("Notify channel closed waiting for %s", what)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("no Notify signal for %s within 10s", what)
	}
}

func waitListening(t *testing.T, s *postgres.Store, not uint32) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		if p := postgres.ListenPID(s); p != 0 && p != not {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("LISTEN connection not (re)established within 15s")
		}
		time.Sleep(5 * time.Millisecond) // polling a condition with a deadline
	}
}

func TestCloseIsFinal(t *testing.T) {
	s, _ := open(t)
	ctx := context.Background()
	ch := s.Notify(ctx)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close = %v", err)
	}
	if _, ok := <-ch; ok {
		t.Fatal("Notify channel open after Close")
	}
	if _, ok := <-s.Notify(ctx); ok {
		t.Fatal("Notify after Close returned an open channel")
	}
	checks := map[string]error{
		"Write":      s.Write(ctx, []evento.Event{ev("c", "a", 1)}),
		"Head":       second(s.Head(ctx)),
		"Read":       second(s.Read(ctx, evento.All())),
		"ClaimLease": second(s.ClaimLease(ctx, "k", 0, "h", time.Second)),
		"SaveSnap":   s.SaveSnapshot(ctx, evento.Snapshot{AggregateType: "a", AggregateID: "b", Version: 1}),
	}
	for name, err := range checks {
		if !errors.Is(err, evento.ErrClosed) {
			t.Errorf("%s after Close = %v, want ErrClosed", name, err)
		}
	}
}

func second[T any](_ T, err error) error { return err }

// TestNulIdentifiers round-trips NUL bytes in every identifier.
func TestNulIdentifiers(t *testing.T) {
	s, _ := open(t)
	ctx := context.Background()
	e := evento.Event{AggregateType: "t\x00y", AggregateID: "\x00id\x00", Version: 1, Name: "n\x00", RoutingKey: "r\x00k"}
	if err := s.Write(ctx, []evento.Event{e}); err != nil {
		t.Fatal(err)
	}
	p, err := s.Read(ctx, evento.ByAggregate("t\x00y", "\x00id\x00").WithRouting(evento.RoutingKey("r\x00k")))
	if err != nil || len(p.Events) != 1 {
		t.Fatalf("Read = %d, %v", len(p.Events), err)
	}
	g := p.Events[0]
	if g.AggregateType != e.AggregateType || g.AggregateID != e.AggregateID || g.Name != e.Name || g.RoutingKey != e.RoutingKey {
		t.Fatalf("round trip lost NULs: %#v", g)
	}
	l, err := s.ClaimLease(ctx, "k\x00", 1, "h\x00", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Acknowledge(ctx, l, evento.Ack{Cursor: g.Cursor(), LastError: "boom\x00"}); err != nil {
		t.Fatal(err)
	}
	st, err := s.Subscriber(ctx, "k\x00", 1)
	if err != nil || st.Holder != "h\x00" || st.LastError != "boom\x00" || st.Cursor != g.Cursor() {
		t.Fatalf("Subscriber = %#v, %v", st, err)
	}
}

// pause yields between checks of a condition polled with a deadline.
func pause() { time.Sleep(100 * time.Microsecond) }

// TestAggregateIDsDefaultLimit checks the documented default: limit <= 0
// returns up to cursor.MaxPageSize ids.
func TestAggregateIDsDefaultLimit(t *testing.T) {
	s, _ := open(t)
	batch := make([]evento.Event, cursor.MaxPageSize+1)
	for i := range batch {
		batch[i] = ev("T", fmt.Sprintf("id-%05d", i), 1)
	}
	if err := s.Write(t.Context(), batch); err != nil {
		t.Fatal(err)
	}
	for _, limit := range []int{0, -1} {
		ids, err := s.AggregateIDs(t.Context(), "T", "", limit)
		if err != nil {
			t.Fatalf("AggregateIDs(limit %d): %v", limit, err)
		}
		if len(ids) != cursor.MaxPageSize || ids[0] != "id-00000" {
			t.Fatalf("AggregateIDs(limit %d) returned %d ids starting %q, want %d starting \"id-00000\"", limit, len(ids), ids[:min(1, len(ids))], cursor.MaxPageSize)
		}
	}
}
