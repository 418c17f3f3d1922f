package subscription

import (
	"context"
	"database/sql"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/evento-go/evento"
	"github.com/evento-go/evento/executor/pebble"
	"github.com/evento-go/evento/executor/postgres"
	"github.com/evento-go/evento/executor/postgres/postgrestest"
	"github.com/evento-go/evento/executor/sqlite"
	"github.com/oklog/ulid/v2"
)

// readModel is a per-aggregate event counter kept in the executor's own
// store and written through the backend's transactional accessor.
type readModel interface {
	// inc counts one event of aggregate id, inside the handler's
	// transaction.
	inc(ctx context.Context, id string) error
	// counts reads the committed counters.
	counts(t testing.TB) map[string]int
	// loseLease makes the lease of (key, 0) stale while a handler of it
	// runs: another claim bumps the token, or the store's clock passes
	// the expiry.
	loseLease(t testing.TB, key string)
}

type txBackend struct {
	name string
	open func(t testing.TB) (evento.Executor, readModel)
}

// pebbleModel counts in the subscription's Pebble namespace.
type pebbleModel struct {
	s   *pebble.Store
	key string
}

func (m *pebbleModel) inc(ctx context.Context, id string) error {
	kv := pebble.KVFrom(ctx)
	if kv == nil {
		return errors.New("no pebble KV in the handler's context")
	}
	k := []byte("count/" + id)
	v, ok, err := kv.Get(k)
	if err != nil {
		return err
	}
	var n uint64
	if ok {
		n = binary.BigEndian.Uint64(v)
	}
	return kv.Set(k, binary.BigEndian.AppendUint64(nil, n+1))
}

func (m *pebbleModel) counts(t testing.TB) map[string]int {
	t.Helper()
	out := map[string]int{}
	err := m.s.ReadModel(m.key).Scan(context.Background(), []byte("count/"), func(k, v []byte) error {
		out[strings.TrimPrefix(string(k), "count/")] = int(binary.BigEndian.Uint64(v))
		return nil
	})
	if err != nil {
		t.Fatalf("scan read model: %v", err)
	}
	return out
}

func (m *pebbleModel) loseLease(t testing.TB, key string) { resetInPlace(t, m.s, key) }

// resetInPlace bumps the token of (key, 0) keeping its stored cursor: as if
// another worker had claimed it.
func resetInPlace(t testing.TB, exec evento.Executor, key string) {
	ctx := context.Background()
	st, err := exec.Subscriber(ctx, key, 0)
	if err != nil {
		t.Errorf("subscriber: %v", err)
		return
	}
	if err := exec.ResetSubscriber(ctx, key, 0, st.Cursor); err != nil {
		t.Errorf("reset: %v", err)
	}
}

// sqlModel counts in a table of the same SQL database.
type sqlModel struct {
	table   string
	read    func(ctx context.Context, q string) (map[string]int, error)
	incFunc func(ctx context.Context, id string) error
	lose    func(t testing.TB, key string)
}

func (m *sqlModel) inc(ctx context.Context, id string) error { return m.incFunc(ctx, id) }
func (m *sqlModel) loseLease(t testing.TB, key string)       { m.lose(t, key) }
func (m *sqlModel) counts(t testing.TB) map[string]int {
	t.Helper()
	out, err := m.read(context.Background(), `SELECT agg, n FROM `+m.table)
	if err != nil {
		t.Fatalf("read counts: %v", err)
	}
	return out
}

var txBackends = []txBackend{
	{"pebble", func(t testing.TB) (evento.Executor, readModel) {
		s, err := pebble.Open(context.Background(), t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = s.Close() })
		return s, &pebbleModel{s: s, key: "rm"}
	}},
	{"sqlite", func(t testing.TB) (evento.Executor, readModel) {
		// The store's clock runs offset by skew, so a test can make a
		// lease expire while a handler holds the write transaction.
		var skew atomic.Int64
		s, err := sqlite.Open(context.Background(), sqlitePath(t),
			sqlite.WithClock(func() time.Time { return time.Now().Add(time.Duration(skew.Load())) }))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = s.Close() })
		if _, err := s.DB().Exec(`CREATE TABLE rm_counts (agg TEXT PRIMARY KEY, n INTEGER NOT NULL)`); err != nil {
			t.Fatal(err)
		}
		return s, &sqlModel{
			table: "rm_counts",
			read: func(ctx context.Context, q string) (map[string]int, error) {
				return scanCounts(s.DB().QueryContext(ctx, q))
			},
			incFunc: func(ctx context.Context, id string) error {
				tx := sqlite.TxFrom(ctx)
				if tx == nil {
					return errors.New("no sqlite tx in the handler's context")
				}
				_, err := tx.ExecContext(ctx, `INSERT INTO rm_counts (agg, n) VALUES (?, 1) ON CONFLICT (agg) DO UPDATE SET n = n + 1`, id)
				return err
			},
			lose: func(t testing.TB, key string) { skew.Add(int64(time.Hour)) },
		}
	}},
	{"postgres", func(t testing.TB) (evento.Executor, readModel) {
		s, err := postgres.Open(context.Background(), postgrestest.DSN(t))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = s.Close() })
		table := s.Schema() + ".rm_counts"
		if _, err := s.Pool().Exec(context.Background(), `CREATE TABLE `+table+` (agg text PRIMARY KEY, n bigint NOT NULL)`); err != nil {
			t.Fatal(err)
		}
		return s, &sqlModel{
			table: table,
			read: func(ctx context.Context, q string) (map[string]int, error) {
				rows, err := s.Pool().Query(ctx, q)
				if err != nil {
					return nil, err
				}
				defer rows.Close()
				out := map[string]int{}
				for rows.Next() {
					var id string
					var n int64
					if err := rows.Scan(&id, &n); err != nil {
						return nil, err
					}
					out[id] = int(n)
				}
				return out, rows.Err()
			},
			incFunc: func(ctx context.Context, id string) error {
				tx := postgres.TxFrom(ctx)
				if tx == nil {
					return errors.New("no postgres tx in the handler's context")
				}
				_, err := tx.Exec(ctx, `INSERT INTO `+table+` (agg, n) VALUES ($1, 1) ON CONFLICT (agg) DO UPDATE SET n = `+table+`.n + 1`, id)
				return err
			},
			lose: func(t testing.TB, key string) { resetInPlace(t, s, key) },
		}
	}},
}

func scanCounts(rows *sql.Rows, err error) (map[string]int, error) {
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]int{}
	for rows.Next() {
		var id string
		var n int
		if err := rows.Scan(&id, &n); err != nil {
			return nil, err
		}
		out[id] = n
	}
	return out, rows.Err()
}

// wantCounts is one count per event of each aggregate.
func wantCounts(evs []evento.Event) map[string]int {
	out := map[string]int{}
	for _, e := range evs {
		out[e.AggregateID]++
	}
	return out
}

func checkCounts(t testing.TB, what string, got, want map[string]int) {
	t.Helper()
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("%s: read model = %v, want %v (one application per event)", what, got, want)
	}
}

// waitCursor waits until a ChunkAcked signal reports the cursor of last.
func waitCursor(t testing.TB, acked <-chan string, last evento.Event, within time.Duration) {
	t.Helper()
	want := last.Cursor()
	deadline := time.NewTimer(within)
	defer deadline.Stop()
	for {
		select {
		case c := <-acked:
			if c == want {
				return
			}
		case <-deadline.C:
			t.Fatalf("timed out after %v waiting for the cursor of the last event", within)
		}
	}
}

func TestTransactional(t *testing.T) {
	for _, b := range txBackends {
		t.Run(b.name, func(t *testing.T) {
			if b.name == "postgres" {
				postgrestest.Require(t)
			}
			t.Run("RetryMidChunk", func(t *testing.T) { testTxRetryMidChunk(t, b) })
			t.Run("PerEvent", func(t *testing.T) { testTxPerEvent(t, b) })
			t.Run("CrashMidChunk", func(t *testing.T) { testTxCrashMidChunk(t, b) })
			t.Run("LeaseLostMidChunk", func(t *testing.T) { testTxLeaseLost(t, b) })
		})
	}
}

// A handler that writes and then fails mid-chunk leaves no trace: its
// savepoint is rolled back, the events before it commit with their
// acknowledgement, and the retry applies it once.
func testTxRetryMidChunk(t *testing.T, b txBackend) {
	exec, rm := b.open(t)
	evs := newWriter(exec).writeN(t, 60, ids(6, "a")...)
	var calls, failed atomic.Int32
	h := func(ctx context.Context, e *evento.Event) error {
		calls.Add(1)
		if err := rm.inc(ctx, e.AggregateID); err != nil {
			return err
		}
		if e.ID == evs[37].ID && failed.Add(1) <= 2 {
			return errors.New("fails after writing")
		}
		return nil
	}
	var retries atomic.Int32
	sub := New("rm").HandleAll(aggType, h).Transactional(true).ChunkSize(25).Logger(quiet).
		Retry(RetryPolicy{Initial: time.Millisecond, Max: time.Millisecond, Multiplier: 1, MaxAttempts: 5}).
		Signals(&Signals{Retrying: func(string, uint32, ulid.ULID, int, time.Duration, error) { retries.Add(1) }})
	if err := sub.CatchUp(context.Background(), exec); err != nil {
		t.Fatal(err)
	}
	checkCounts(t, "after catch-up", rm.counts(t), wantCounts(evs))
	if n := calls.Load(); n != 62 {
		t.Errorf("handler calls = %d, want 62 (60 events, two failed attempts)", n)
	}
	if retries.Load() != 2 {
		t.Errorf("retries = %d, want 2", retries.Load())
	}
	st, err := exec.Subscriber(context.Background(), "rm", 0)
	if err != nil {
		t.Fatal(err)
	}
	if st.Cursor != evs[59].Cursor() || st.LastError != "" {
		t.Errorf("cursor %q, last error %q; want the last event's cursor and no error", st.Cursor, st.LastError)
	}
}

// AckPerEvent commits each event's writes with its own acknowledgement;
// a failing event past its retries parks with nothing applied.
func testTxPerEvent(t *testing.T, b txBackend) {
	exec, rm := b.open(t)
	evs := newWriter(exec).writeN(t, 12, ids(3, "p")...)
	bad := evs[5].ID
	h := func(ctx context.Context, e *evento.Event) error {
		if err := rm.inc(ctx, e.AggregateID); err != nil {
			return err
		}
		if e.ID == bad {
			return errors.New("always fails")
		}
		return nil
	}
	var acks atomic.Int32
	sub := New("rm").HandleAll(aggType, h).Transactional(true).AckMode(AckPerEvent).OnExhausted(ParkEvent).Logger(quiet).
		Retry(RetryPolicy{Initial: time.Millisecond, Max: time.Millisecond, Multiplier: 1, MaxAttempts: 2}).
		Signals(&Signals{ChunkAcked: func(string, uint32, string, int) { acks.Add(1) }})
	if err := sub.CatchUp(context.Background(), exec); err != nil {
		t.Fatal(err)
	}
	want := wantCounts(evs)
	want[evs[5].AggregateID]--
	checkCounts(t, "after catch-up", rm.counts(t), want)
	if n := acks.Load(); n != 12 {
		t.Errorf("acknowledgements = %d, want 12 (11 transactions of one event, one park)", n)
	}
	parked, err := exec.ParkedEvents(context.Background(), "rm")
	if err != nil {
		t.Fatal(err)
	}
	if len(parked) != 1 || parked[0].Event.ID != bad {
		t.Errorf("parked %d events, want the failing one", len(parked))
	}
	if _, err := sub.Replay(context.Background(), exec); !errors.Is(err, ErrNotTransactional) {
		t.Errorf("Replay of a transactional subscription: %v, want ErrNotTransactional", err)
	}
}

// A worker that dies in the middle of a chunk's transaction applies
// nothing and moves nothing; the next holder handles the whole chunk
// again, once.
func testTxCrashMidChunk(t *testing.T, b txBackend) {
	exec, rm := b.open(t)
	evs := newWriter(exec).writeN(t, 120, ids(7, "c")...)
	reached := make(chan struct{})
	var n atomic.Int32
	crashing := func(ctx context.Context, e *evento.Event) error {
		if err := rm.inc(ctx, e.AggregateID); err != nil {
			return err
		}
		if n.Add(1) == 80 { // the second chunk, 30 events in
			close(reached)
			<-ctx.Done() // the process "dies" in this handler
			return ctx.Err()
		}
		return nil
	}
	const ttl = 500 * time.Millisecond
	a, err := New("rm").HandleAll(aggType, crashing).Transactional(true).ChunkSize(50).Lease(ttl, 0).WorkerID("A").Logger(quiet).
		Start(context.Background(), exec)
	if err != nil {
		t.Fatal(err)
	}
	recv(t, reached, 30*time.Second, "event 80")
	a.crash()
	st, err := exec.Subscriber(context.Background(), "rm", 0)
	if err != nil {
		t.Fatal(err)
	}
	if st.Cursor != evs[49].Cursor() {
		t.Fatalf("after the crash the cursor is not the first chunk's end")
	}
	checkCounts(t, "after the crash", rm.counts(t), wantCounts(evs[:50]))

	acked := make(chan string, 16)
	var calls atomic.Int32
	h := func(ctx context.Context, e *evento.Event) error {
		calls.Add(1)
		return rm.inc(ctx, e.AggregateID)
	}
	bw, err := New("rm").HandleAll(aggType, h).Transactional(true).ChunkSize(50).Lease(ttl, 0).WorkerID("B").Logger(quiet).
		Signals(&Signals{ChunkAcked: func(_ string, _ uint32, c string, _ int) { acked <- c }}).Start(context.Background(), exec)
	if err != nil {
		t.Fatal(err)
	}
	waitCursor(t, acked, evs[len(evs)-1], 30*time.Second)
	if err := stop(t, bw); err != nil {
		t.Fatal(err)
	}
	checkCounts(t, "after the takeover", rm.counts(t), wantCounts(evs))
	if c := calls.Load(); c != 70 {
		t.Errorf("B handled %d events, want 70 (the crashed chunk again, whole, and the rest)", c)
	}
}

// A worker whose lease goes stale while its chunk's transaction is open
// (another claim bumped the token, or the lease expired by the store's
// clock) has its whole transaction rolled back with ErrLeaseLost; the
// events are handled again and the read model counts each once.
func testTxLeaseLost(t *testing.T, b txBackend) {
	exec, rm := b.open(t)
	evs := newWriter(exec).writeN(t, 90, ids(5, "l")...)
	var calls atomic.Int32
	var once sync.Once
	h := func(ctx context.Context, e *evento.Event) error {
		calls.Add(1)
		if err := rm.inc(ctx, e.AggregateID); err != nil {
			return err
		}
		if e.ID == evs[45].ID {
			once.Do(func() { rm.loseLease(t, "rm") })
		}
		return nil
	}
	acked := make(chan string, 16)
	lost := make(chan error, 4)
	w, err := New("rm").HandleAll(aggType, h).Transactional(true).ChunkSize(30).Lease(2*time.Second, 0).Logger(quiet).
		Signals(&Signals{
			ChunkAcked: func(_ string, _ uint32, c string, _ int) { acked <- c },
			LeaseLost:  func(_ string, _ uint32, err error) { lost <- err },
		}).Start(context.Background(), exec)
	if err != nil {
		t.Fatal(err)
	}
	waitCursor(t, acked, evs[len(evs)-1], 30*time.Second)
	if err := stop(t, w); err != nil {
		t.Fatal(err)
	}
	if err := recv(t, lost, time.Second, "LeaseLost"); !errors.Is(err, evento.ErrLeaseLost) {
		t.Errorf("LeaseLost with %v, want ErrLeaseLost", err)
	}
	checkCounts(t, "after the lost lease", rm.counts(t), wantCounts(evs))
	if c := calls.Load(); c != 90+30 {
		t.Errorf("handler calls = %d, want 120 (the 30 events of the rolled-back chunk again)", c)
	}
}

// An executor without transactional acknowledgements is refused.
func TestTransactionalRefusedWithoutTxAcknowledger(t *testing.T) {
	exec := plainExecutor{newPebble(t)}
	sub := New("rm").HandleAll(aggType, func(context.Context, *evento.Event) error { return nil }).Transactional(true).Logger(quiet)
	if err := sub.CatchUp(context.Background(), exec); !errors.Is(err, ErrNotTransactional) {
		t.Errorf("CatchUp: %v, want ErrNotTransactional", err)
	}
	if _, err := sub.Start(context.Background(), exec); !errors.Is(err, ErrNotTransactional) {
		t.Errorf("Start: %v, want ErrNotTransactional", err)
	}
}

// plainExecutor hides every method but evento.Executor's.
type plainExecutor struct{ evento.Executor }
