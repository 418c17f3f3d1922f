package sqlite

import (
	"context"
	"crypto/rand"
	"database/sql"
	"fmt"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/evento-go/evento"
	"github.com/evento-go/evento/executor/storekit"
	"github.com/evento-go/evento/internal/rawengine"
)

// The benchmarks W1–W5 measure the Store against two raw modernc.org/sqlite
// files in the same run (rawengine.Compare, interleaved rounds), all with
// WAL and synchronous=FULL, and report:
//
//	events/s          the Store
//	raw_events/s      rawengine.SQLite: one row per event, the rowid, a
//	                  unique (type, id, version), nothing else
//	ratio_vs_raw      events/s ÷ raw_events/s (DESIGN.md's targets)
//	layout_events/s   raw inserts/selects on the Store's own schema (the
//	                  same migrations: table, constraints and indexes)
//	ratio_vs_layout   the Store's code on its own schema
//	schema_cost       layout ÷ minimal: what the schema costs SQLite
//
// One command runs them all:
//
//	go test ./executor/sqlite/ -run '^$' -bench 'W[1-5]' -benchtime=2s
//
// BenchmarkIndexWriteCost measures each secondary index;
// BenchmarkFirstPageByType the flatness of a type query (EVENTO_BENCH_1M=1
// for 1M unrelated events).

var benchData = make([]byte, 100)

// benchEnv is the Store, the minimal engine and a raw handle on a file
// migrated with the Store's schema, each on its own file.
type benchEnv struct {
	s      *Store
	min    *rawengine.SQLite
	layout *sql.DB
}

func openLayout(b *testing.B, path string) *sql.DB {
	r, err := Open(context.Background(), path) // the same migrations
	if err != nil {
		b.Fatal(err)
	}
	r.Close()
	raw, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(5000)&_pragma=journal_mode(WAL)&_pragma=synchronous(FULL)")
	if err != nil {
		b.Fatal(err)
	}
	raw.SetMaxOpenConns(1)
	b.Cleanup(func() { raw.Close() })
	return raw
}

func setupBench(b *testing.B) *benchEnv {
	b.Helper()
	dir := b.TempDir()
	ctx := context.Background()
	s, err := Open(ctx, filepath.Join(dir, "ours.db"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	m, err := rawengine.OpenSQLite(ctx, filepath.Join(dir, "minimal.db"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { m.Close() })
	return &benchEnv{s: s, min: m, layout: openLayout(b, filepath.Join(dir, "layout.db"))}
}

const rawInsert = `INSERT INTO events (id, aggregate_type, aggregate_id, version, name, routing_key, data, metadata, timestamp) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`

// layoutAppender inserts events into the Store's schema in one transaction
// per call, under a mutex (SQLite has one writer).
type layoutAppender struct {
	mu  sync.Mutex
	db  *sql.DB
	ins *sql.Stmt
}

func newLayoutAppender(b *testing.B, db *sql.DB) *layoutAppender {
	ins, err := db.Prepare(rawInsert)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { ins.Close() })
	return &layoutAppender{db: db, ins: ins}
}

func (r *layoutAppender) append(events []evento.Event) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	tx, err := r.db.Begin()
	if err != nil {
		return err
	}
	st := tx.Stmt(r.ins)
	var id [16]byte
	ts := time.Now().UnixMicro()
	for _, e := range events {
		rand.Read(id[:])
		if _, err := st.Exec(id[:], []byte(e.AggregateType), []byte(e.AggregateID), int64(e.Version), []byte(e.Name), []byte(e.RoutingKey), e.Data, nil, ts); err != nil {
			tx.Rollback()
			return err
		}
	}
	return tx.Commit()
}

func batchOf(n, i int, id string) []evento.Event {
	out := make([]evento.Event, n)
	for j := range out {
		out[j] = evento.Event{AggregateType: "bench/Account", AggregateID: id, Version: uint64(i*n + j + 1), Name: "Deposited", Data: benchData}
	}
	return out
}

// benchAppend appends perCommit events per durable commit with writers
// goroutines, one aggregate each.
func benchAppend(b *testing.B, writers, perCommit int) {
	e := setupBench(b)
	ctx := context.Background()
	rawengine.CompareAppends(b, writers, perCommit, batchOf,
		func(evs []evento.Event) error { return e.s.Write(ctx, evs) },
		func(evs []evento.Event) error { return e.min.Append(ctx, evs) },
		newLayoutAppender(b, e.layout).append)
}

// BenchmarkW1Append1Writer appends one event per durable commit.
func BenchmarkW1Append1Writer(b *testing.B) { benchAppend(b, 1, 1) }

// BenchmarkW2Append16Writers appends one event per durable commit from 16
// goroutines (SQLite serialises writers: the figure is the locking path).
func BenchmarkW2Append16Writers(b *testing.B) { benchAppend(b, 16, 1) }

// BenchmarkW3AppendBatch100 appends 100 events per durable commit.
func BenchmarkW3AppendBatch100(b *testing.B) { benchAppend(b, 1, 100) }

// fill writes aggregates×perAgg events, interleaved across aggregates, to
// all three stores.
func fill(b *testing.B, e *benchEnv, aggregates, perAgg int) {
	b.Helper()
	ctx := context.Background()
	l := newLayoutAppender(b, e.layout)
	for v := 1; v <= perAgg; v++ {
		batch := make([]evento.Event, aggregates)
		for a := range batch {
			batch[a] = evento.Event{AggregateType: "bench/Account", AggregateID: fmt.Sprintf("acc-%04d", a), Version: uint64(v), Name: "Deposited", Data: benchData}
		}
		if err := e.s.Write(ctx, batch); err != nil {
			b.Fatal(err)
		}
		if err := e.min.Append(ctx, batch); err != nil {
			b.Fatal(err)
		}
		if err := l.append(batch); err != nil {
			b.Fatal(err)
		}
	}
}

// scanLayout reads event rows into evento.Events as a program using
// database/sql on the Store's schema would.
func scanLayout(rows *sql.Rows, out []evento.Event) ([]evento.Event, int64) {
	defer rows.Close()
	var last int64
	var (
		pos, version, ts           int64
		id, typ, agg, name, rk, md []byte
		data                       []byte
	)
	for rows.Next() {
		data, md = nil, nil
		if err := rows.Scan(&pos, &id, &typ, &agg, &version, &name, &rk, &data, &md, &ts); err != nil {
			panic(err)
		}
		m, err := storekit.DecodeMetadata(md)
		if err != nil {
			panic(err)
		}
		e := evento.Event{AggregateType: string(typ), AggregateID: string(agg), Version: uint64(version), Name: string(name),
			RoutingKey: string(rk), Data: data, Metadata: m, Timestamp: time.UnixMicro(ts).UTC(), Position: evento.Position{Seq: uint64(pos)}}
		copy(e.ID[:], id)
		out = append(out, e)
		last = pos
	}
	if err := rows.Err(); err != nil {
		panic(err)
	}
	return out, last
}

// BenchmarkW4LoadAggregate loads one aggregate's 100 events out of 10,000
// (100 aggregates, interleaved).
func BenchmarkW4LoadAggregate(b *testing.B) {
	e := setupBench(b)
	fill(b, e, 100, 100)
	ctx := context.Background()
	sel, err := e.layout.Prepare(`SELECT ` + eventCols + ` FROM events WHERE aggregate_type = ? AND aggregate_id = ? AND version > ? ORDER BY version`)
	if err != nil {
		b.Fatal(err)
	}
	defer sel.Close()
	buf := make([]evento.Event, 0, 100)
	rawengine.Compare(b, 100, rawengine.Sides{
		Ours: func(from, to int) {
			for i := from; i < to; i++ {
				es, err := e.s.ReadAggregate(ctx, "bench/Account", fmt.Sprintf("acc-%04d", i%100), 0, 0)
				if err != nil || len(es) != 100 {
					b.Fatalf("ReadAggregate: %d events, %v", len(es), err)
				}
			}
		},
		Raw: func(from, to int) {
			for i := from; i < to; i++ {
				es, err := e.min.Load(ctx, "bench/Account", fmt.Sprintf("acc-%04d", i%100), buf[:0])
				if err != nil || len(es) != 100 {
					b.Fatalf("raw load: %d events, %v", len(es), err)
				}
			}
		},
		Layout: func(from, to int) {
			for i := from; i < to; i++ {
				rows, err := sel.Query([]byte("bench/Account"), []byte(fmt.Sprintf("acc-%04d", i%100)), 0)
				if err != nil {
					b.Fatal(err)
				}
				if es, _ := scanLayout(rows, buf[:0]); len(es) != 100 {
					b.Fatalf("layout load: %d events", len(es))
				}
			}
		},
	})
}

// BenchmarkW5OrderedScan reads all 10,000 events in global order, 1,000 per
// page, decoded into evento.Events.
func BenchmarkW5OrderedScan(b *testing.B) {
	e := setupBench(b)
	fill(b, e, 100, 100)
	ctx := context.Background()
	sel, err := e.layout.Prepare(`SELECT ` + eventCols + ` FROM events WHERE position > ? ORDER BY position LIMIT 1000`)
	if err != nil {
		b.Fatal(err)
	}
	defer sel.Close()
	buf := make([]evento.Event, 0, 1000)
	rawengine.Compare(b, 10000, rawengine.Sides{
		Ours: func(from, to int) {
			for i := from; i < to; i++ {
				n, after := 0, ""
				for {
					p, err := e.s.Read(ctx, evento.All().First(1000, after))
					if err != nil {
						b.Fatal(err)
					}
					n += len(p.Events)
					if !p.PageInfo.HasNextPage {
						break
					}
					after = p.PageInfo.EndCursor
				}
				if n != 10000 {
					b.Fatalf("scan read %d events", n)
				}
			}
		},
		Raw: func(from, to int) {
			for i := from; i < to; i++ {
				if n, err := rawengine.ScanAll(ctx, e.min, 1000, nil); err != nil || n != 10000 {
					b.Fatalf("raw scan: %d events, %v", n, err)
				}
			}
		},
		Layout: func(from, to int) {
			for i := from; i < to; i++ {
				n, last := 0, int64(0)
				for {
					rows, err := sel.Query(last)
					if err != nil {
						b.Fatal(err)
					}
					buf, last = scanLayout(rows, buf[:0])
					n += len(buf)
					if len(buf) < 1000 {
						break
					}
				}
				if n != 10000 {
					b.Fatalf("layout scan read %d events", n)
				}
			}
		},
	})
}

// secondaryIndexes are the Store's secondary indexes on events.
var secondaryIndexes = []string{"events_agg_pos", "events_type_pos", "events_name_pos", "events_rk_pos", "events_rk_type_pos", "events_rk_name_pos"}

// BenchmarkIndexWriteCost measures what each secondary index costs writes:
// raw inserts into the Store's schema (Ours) against the same schema less
// one index (Raw), 100 events over 10 aggregates per durable commit.
// ratio_vs_raw below 1 is the index's cost: 0.9 means it takes 10% of the
// write throughput. without=all_secondary drops all six.
func BenchmarkIndexWriteCost(b *testing.B) {
	for _, drop := range append(slices.Clone(secondaryIndexes), "all_secondary") {
		b.Run("without="+drop, func(b *testing.B) {
			dir := b.TempDir()
			full, less := openLayout(b, filepath.Join(dir, "full.db")), openLayout(b, filepath.Join(dir, "less.db"))
			for _, ix := range secondaryIndexes {
				if drop == ix || drop == "all_secondary" {
					if _, err := less.Exec("DROP INDEX " + ix); err != nil {
						b.Fatal(err)
					}
				}
			}
			run := func(a *layoutAppender) func(from, to int) {
				return func(from, to int) {
					for i := from; i < to; i++ {
						evs := make([]evento.Event, 100)
						for j := range evs {
							evs[j] = evento.Event{AggregateType: "bench/Account", AggregateID: fmt.Sprint("acc-", j%10), Version: uint64(i*10 + j/10 + 1),
								Name: "Deposited", RoutingKey: "tenant-1", Data: benchData}
						}
						if err := a.append(evs); err != nil {
							b.Fatal(err)
						}
					}
				}
			}
			rawengine.Compare(b, 100, rawengine.Sides{Ours: run(newLayoutAppender(b, full)), Raw: run(newLayoutAppender(b, less))})
		})
	}
}

// BenchmarkFirstPageByType reads the first page (100) of one type from a
// store holding 10k unrelated events and from one holding rawengine.FlatBigSize(), in
// the same run, and reports big ÷ small time per read (flat_ratio; target
// ≤ 2) and for the first read of each store (first_ratio). The unrelated
// events are inserted with one INSERT … SELECT (rows as Write stores them).
//
//	EVENTO_BENCH_1M=1 go test ./executor/sqlite/ -run '^$' -bench FirstPageByType -benchtime=1000x
func BenchmarkFirstPageByType(b *testing.B) {
	ctx := context.Background()
	fill := func(unrelated int) *Store {
		s, err := Open(ctx, filepath.Join(b.TempDir(), "flat.db"))
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { s.Close() })
		ins := `WITH RECURSIVE n(i) AS (SELECT ? UNION ALL SELECT i + 1 FROM n WHERE i < ?)
INSERT INTO events (id, aggregate_type, aggregate_id, version, name, routing_key, data, metadata, timestamp)
SELECT randomblob(16), CAST('other/Thing' AS BLOB), CAST('t-' || (i / 100) AS BLOB), i % 100 + 1, CAST('Happened' AS BLOB), X'', zeroblob(100), NULL, 0 FROM n`
		if _, err := s.db.ExecContext(ctx, ins, 0, unrelated/2-1); err != nil {
			b.Fatal(err)
		}
		if err := s.Write(ctx, batchOf(200, 0, "acc-1")); err != nil {
			b.Fatal(err)
		}
		if _, err := s.db.ExecContext(ctx, ins, unrelated/2, unrelated-1); err != nil {
			b.Fatal(err)
		}
		return s
	}
	small, big := fill(10_000), fill(rawengine.FlatBigSize())
	q := evento.ByType("bench/Account").First(100, "")
	read := func(s *Store) time.Duration {
		t0 := time.Now()
		p, err := s.Read(ctx, q)
		if err != nil || len(p.Events) != 100 {
			b.Fatal(len(p.Events), err)
		}
		return time.Since(t0)
	}
	rawengine.Flatness(b, func() time.Duration { return read(small) }, func() time.Duration { return read(big) })
}
