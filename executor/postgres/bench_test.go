package postgres_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/evento-go/evento"
	"github.com/evento-go/evento/cursor"
	"github.com/evento-go/evento/executor/postgres"
	"github.com/evento-go/evento/executor/postgres/postgrestest"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/oklog/ulid/v2"
)

// The benchmarks compare the store with raw pgx doing the minimal
// equivalent work on the same table (same constraints and indexes), in the
// same run, and report ratio_vs_raw = raw time / store time (>= 1 means the
// store is as fast as raw). Run them with e.g.
//
//	go test ./executor/postgres/ -run '^$' -bench . -benchtime=2000x

var payload = make([]byte, 100)

type benchEnv struct {
	s     *postgres.Store
	raw   *pgxpool.Pool
	ev    string // quoted events table
	rawEv string // quoted table the raw appends write: a copy of events
	zero  string // tx value raw inserts use
}

func setupBench(b *testing.B, o postgres.Ordering) *benchEnv {
	b.Helper()
	dsn := postgrestest.DSN(b) + "&pool_max_conns=24"
	ctx := context.Background()
	s, err := postgres.Open(ctx, dsn, postgres.WithOrdering(o))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	cfg, err := pgxpool.ParseConfig(postgrestest.BaseDSN())
	if err != nil {
		b.Fatal(err)
	}
	cfg.MaxConns = 24
	raw, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(raw.Close)
	zero := "pg_current_xact_id()"
	if o == postgres.OrderingAdvisoryLock {
		zero = "'0'::xid8"
	}
	sch := pgx.Identifier{s.Schema()}.Sanitize()
	// The raw side writes to an identical table (same columns, defaults,
	// identity, constraints and indexes) so that neither side's keys sit in
	// the other's index pages: sharing one table would put one side's keys
	// in the middle of every index leading with the aggregate type or id
	// and the other's at the right edge (btree's rightmost fast path and
	// rightmost splits), whichever sorts last.
	if _, err := raw.Exec(ctx, `CREATE TABLE `+sch+`.raw_events (LIKE `+sch+`.events INCLUDING ALL)`); err != nil {
		b.Fatal(err)
	}
	return &benchEnv{s: s, raw: raw, ev: sch + ".events", rawEv: sch + ".raw_events", zero: zero}
}

// run runs n operations over writers goroutines and returns the elapsed
// time. op gets the writer and its operation number (from 0).
func run(b *testing.B, n, writers int, op func(w, i int) error) time.Duration {
	var next atomic.Int64
	var wg sync.WaitGroup
	var failed atomic.Value
	start := time.Now()
	for w := range writers {
		wg.Go(func() {
			for i := 0; ; i++ {
				if next.Add(1) > int64(n) {
					return
				}
				if err := op(w, i); err != nil {
					failed.Store(err)
					return
				}
			}
		})
	}
	wg.Wait()
	d := time.Since(start)
	if err, ok := failed.Load().(error); ok {
		b.Fatal(err)
	}
	return d
}

// pair runs n operations of raw and of ours, alternating in chunks so that
// load from other processes on the machine falls on both alike, and returns
// the total time of each.
func pair(b *testing.B, n, writers int, raw, ours func(w, i int) error) (time.Duration, time.Duration) {
	const chunks = 10
	var dr, do time.Duration
	var offR, offO atomic.Int64
	b.ResetTimer()
	for c := range chunks {
		k := n / chunks
		if c < n%chunks {
			k++
		}
		if k == 0 {
			continue
		}
		// Alternate which goes first, too.
		baseR := offR.Add(int64(k)) - int64(k)
		baseO := offO.Add(int64(k)) - int64(k)
		runRaw := func() { dr += run(b, k, writers, func(w, i int) error { return raw(w, int(baseR)+i) }) }
		runOurs := func() { do += run(b, k, writers, func(w, i int) error { return ours(w, int(baseO)+i) }) }
		if c%2 == 0 {
			runRaw()
			runOurs()
		} else {
			runOurs()
			runRaw()
		}
	}
	b.StopTimer()
	return dr, do
}

func report(b *testing.B, events int, raw, ours time.Duration) {
	b.ReportMetric(float64(events)/ours.Seconds(), "ev/s")
	b.ReportMetric(float64(events)/raw.Seconds(), "raw_ev/s")
	b.ReportMetric(raw.Seconds()/ours.Seconds(), "ratio_vs_raw")
}

var orderings = []postgres.Ordering{postgres.OrderingTxHorizon, postgres.OrderingAdvisoryLock}

var benchRound atomic.Int64

// BenchmarkAppend appends one event per commit with 1 and 16 writers; raw
// is one autocommit INSERT per event.
func BenchmarkAppend(b *testing.B) {
	for _, o := range orderings {
		for _, writers := range []int{1, 16} {
			b.Run(fmt.Sprintf("%s/writers=%d", o, writers), func(b *testing.B) {
				e := setupBench(b, o)
				ctx := context.Background()
				r := benchRound.Add(1)
				insert := `INSERT INTO ` + e.rawEv + ` (tx, id, aggregate_type, aggregate_id, version, name, routing_key, data, metadata)
VALUES (` + e.zero + `, $1, $2, $3, $4, $5, $6, $7, NULL)`
				rawType := []byte("raw")
				rawV, ourV := make([]int64, writers), make([]uint64, writers)
				raw, ours := pair(b, b.N, writers, func(w, _ int) error {
					rawV[w]++
					_, err := e.raw.Exec(ctx, insert, ulid.Make().Bytes(), rawType, []byte(fmt.Sprintf("r%d-w%d", r, w)), rawV[w], []byte("E"), []byte{}, payload)
					return err
				}, func(w, _ int) error {
					ourV[w]++
					return e.s.Write(ctx, []evento.Event{{AggregateType: "ev", AggregateID: fmt.Sprintf("r%d-w%d", r, w), Version: ourV[w], Name: "E", Data: payload}})
				})
				report(b, b.N, raw, ours)
			})
		}
	}
}

// BenchmarkAppendBatch100 appends 100 events per commit; raw is one
// CopyFrom of 100 rows.
func BenchmarkAppendBatch100(b *testing.B) {
	for _, o := range orderings {
		b.Run(string(o), func(b *testing.B) {
			e := setupBench(b, o)
			ctx := context.Background()
			r := benchRound.Add(1)
			cols := []string{"tx", "id", "aggregate_type", "aggregate_id", "version", "name", "routing_key", "data"}
			var agg atomic.Int64
			raw, ours := pair(b, b.N, 1, func(_, _ int) error {
				i := agg.Add(1)
				rows := make([][]any, 100)
				for j := range rows {
					rows[j] = []any{ulid.Make().Bytes(), []byte("raw"), []byte(fmt.Sprintf("r%d-%d", r, i)), int64(j + 1), []byte("E"), []byte{}, payload}
				}
				var src pgx.CopyFromSource = pgx.CopyFromRows(rows)
				c := cols[1:] // tx takes its default: the transaction id
				if o == postgres.OrderingAdvisoryLock {
					c = cols
					src = pgx.CopyFromSlice(100, func(k int) ([]any, error) { return append([]any{uint64(0)}, rows[k]...), nil })
				}
				_, err := e.raw.CopyFrom(ctx, pgx.Identifier{e.s.Schema(), "events"}, c, src)
				return err
			}, func(_, _ int) error {
				i := agg.Add(1)
				batch := make([]evento.Event, 100)
				for j := range batch {
					batch[j] = evento.Event{AggregateType: "ev", AggregateID: fmt.Sprintf("r%d-%d", r, i), Version: uint64(j + 1), Name: "E", Data: payload}
				}
				return e.s.Write(ctx, batch)
			})
			report(b, 100*b.N, raw, ours)
		})
	}
}

// BenchmarkLoadAggregate reads all 1,000 events of one aggregate; raw is
// the same range query scanned into byte slices.
func BenchmarkLoadAggregate(b *testing.B) {
	e := setupBench(b, postgres.OrderingTxHorizon)
	ctx := context.Background()
	const n = 1000
	for k := 0; k < n; k += 100 {
		batch := make([]evento.Event, 100)
		for j := range batch {
			batch[j] = evento.Event{AggregateType: "ev", AggregateID: "big", Version: uint64(k + j + 1), Name: "E", Data: payload}
		}
		if err := e.s.Write(ctx, batch); err != nil {
			b.Fatal(err)
		}
	}
	q := `SELECT tx, seq, id, aggregate_type, aggregate_id, version, name, routing_key, data, metadata, ts FROM ` + e.ev + `
WHERE aggregate_type = $1 AND aggregate_id = $2 AND version > 0 ORDER BY version`
	raw, ours := pair(b, b.N, 1, func(_, _ int) error {
		rows, err := e.raw.Query(ctx, q, []byte("ev"), []byte("big"))
		if err != nil {
			return err
		}
		evs, err := rawScan(rows, n)
		if err == nil && len(evs) != n {
			err = fmt.Errorf("raw read %d rows", len(evs))
		}
		return err
	}, func(_, _ int) error {
		evs, err := e.s.ReadAggregate(ctx, "ev", "big", 0, 0)
		if err == nil && len(evs) != n {
			err = fmt.Errorf("read %d events", len(evs))
		}
		return err
	})
	report(b, n*b.N, raw, ours)
}

// BenchmarkOrderedScan pages through 20,000 events in global order, 1,000
// per page; raw is the same keyset pagination without the horizon.
func BenchmarkOrderedScan(b *testing.B) {
	for _, o := range orderings {
		b.Run(string(o), func(b *testing.B) {
			e := setupBench(b, o)
			ctx := context.Background()
			const n = 20000
			for k := 0; k < n; k += 100 {
				batch := make([]evento.Event, 100)
				for j := range batch {
					batch[j] = evento.Event{AggregateType: "ev", AggregateID: fmt.Sprintf("a%d", k), Version: uint64(j + 1), Name: "E", Data: payload}
				}
				if err := e.s.Write(ctx, batch); err != nil {
					b.Fatal(err)
				}
			}
			page := cursor.MaxPageSize
			q := `SELECT tx, seq, id, aggregate_type, aggregate_id, version, name, routing_key, data, metadata, ts FROM ` + e.ev + `
WHERE (tx, seq) > ($1::xid8, $2::bigint) ORDER BY tx, seq LIMIT $3`
			raw, ours := pair(b, b.N, 1, func(_, _ int) error {
				var lastTx uint64
				var lastSeq int64
				got := 0
				for {
					rows, err := e.raw.Query(ctx, q, lastTx, lastSeq, page)
					if err != nil {
						return err
					}
					evs, err := rawScan(rows, page)
					if err != nil {
						return err
					}
					k := len(evs)
					if k > 0 {
						lastTx, lastSeq = evs[k-1].Position.Tx, int64(evs[k-1].Position.Seq)
					}
					got += k
					if k < page {
						break
					}
				}
				if got != n {
					return fmt.Errorf("raw scan read %d rows", got)
				}
				return nil
			}, func(_, _ int) error {
				after, got := "", 0
				for {
					p, err := e.s.Read(ctx, evento.All().First(page, after))
					if err != nil {
						return err
					}
					got += len(p.Events)
					if !p.PageInfo.HasNextPage {
						break
					}
					after = p.PageInfo.EndCursor
				}
				if got != n {
					return fmt.Errorf("scan read %d events", got)
				}
				return nil
			})
			report(b, n*b.N, raw, ours)
		})
	}
}

// rawScan is what a program using pgx directly writes to read event rows
// into values it owns: the baseline's share of the work Read does.
func rawScan(rows pgx.Rows, hint int) ([]evento.Event, error) {
	defer rows.Close()
	out := make([]evento.Event, 0, hint)
	var (
		tx                     uint64
		seq, version           int64
		id, t, i, nm, r, d, md []byte
		ts                     time.Time
	)
	for rows.Next() {
		d, md = nil, nil
		if err := rows.Scan(&tx, &seq, &id, &t, &i, &version, &nm, &r, &d, &md, &ts); err != nil {
			return nil, err
		}
		e := evento.Event{AggregateType: string(t), AggregateID: string(i), Version: uint64(version), Name: string(nm),
			RoutingKey: string(r), Data: d, Timestamp: ts.UTC(), Position: evento.Position{Tx: tx, Seq: uint64(seq)}}
		copy(e.ID[:], id)
		out = append(out, e)
	}
	return out, rows.Err()
}
