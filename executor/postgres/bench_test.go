package postgres_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/evento-go/evento"
	"github.com/evento-go/evento/cursor"
	"github.com/evento-go/evento/executor/postgres"
	"github.com/evento-go/evento/executor/postgres/postgrestest"
	"github.com/evento-go/evento/executor/storekit"
	"github.com/evento-go/evento/internal/rawengine"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/oklog/ulid/v2"
)

// The benchmarks W1–W5 measure the store against two raw pgx programs in
// the same run (rawengine.Compare, interleaved rounds), on one server with
// its default durable settings, and report:
//
//	events/s          the store (transaction-id horizon ordering, the default)
//	raw_events/s      rawengine.Postgres: one row per event, an identity
//	                  key, a unique (type, id, version), nothing else
//	ratio_vs_raw      events/s ÷ raw_events/s (DESIGN.md's targets)
//	layout_events/s   raw INSERT/COPY/SELECT on the store's own table (a
//	                  copy with the same columns, constraints and indexes)
//	ratio_vs_layout   the store's code on its own schema
//	schema_cost       layout ÷ minimal: what the schema costs PostgreSQL
//
// One command runs them all:
//
//	go test ./executor/postgres/ -run '^$' -bench 'W[1-5]' -benchtime=2s
//
// BenchmarkIndexWriteCost measures each secondary index;
// BenchmarkFirstPageByType the flatness of a type query (EVENTO_BENCH_1M=1
// for 1M unrelated events).

var payload = make([]byte, 100)

type benchEnv struct {
	s     *postgres.Store
	raw   *pgxpool.Pool
	min   *rawengine.Postgres
	ev    string // quoted events table
	rawEv string // quoted copy of the events table the layout side writes
}

func setupBench(b *testing.B, opts ...postgres.Option) *benchEnv {
	b.Helper()
	dsn := postgrestest.DSN(b) + "&pool_max_conns=24"
	ctx := context.Background()
	s, err := postgres.Open(ctx, dsn, opts...)
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
	sch := pgx.Identifier{s.Schema()}.Sanitize()
	// The layout side writes to an identical table so that neither side's
	// keys sit in the other's index pages.
	if _, err := raw.Exec(ctx, `CREATE TABLE `+sch+`.layout_events (LIKE `+sch+`.events INCLUDING ALL)`); err != nil {
		b.Fatal(err)
	}
	m, err := rawengine.NewPostgres(ctx, raw, s.Schema())
	if err != nil {
		b.Fatal(err)
	}
	return &benchEnv{s: s, raw: raw, min: m, ev: sch + ".events", rawEv: sch + ".layout_events"}
}

var layoutCols = []string{"id", "aggregate_type", "aggregate_id", "version", "name", "routing_key", "data"}

// layoutAppend writes events to the layout table: one INSERT for one
// event, one COPY for several (tx and seq take their defaults).
func (e *benchEnv) layoutAppend(ctx context.Context, evs []evento.Event) error {
	if len(evs) == 1 {
		v := &evs[0]
		_, err := e.raw.Exec(ctx, `INSERT INTO `+e.rawEv+` (id, aggregate_type, aggregate_id, version, name, routing_key, data) VALUES ($1, $2, $3, $4, $5, $6, $7)`,
			ulid.Make().Bytes(), []byte(v.AggregateType), []byte(v.AggregateID), int64(v.Version), []byte(v.Name), []byte(v.RoutingKey), v.Data)
		return err
	}
	_, err := e.raw.CopyFrom(ctx, pgx.Identifier{e.s.Schema(), "layout_events"}, layoutCols, pgx.CopyFromSlice(len(evs), func(i int) ([]any, error) {
		v := &evs[i]
		return []any{ulid.Make().Bytes(), []byte(v.AggregateType), []byte(v.AggregateID), int64(v.Version), []byte(v.Name), []byte(v.RoutingKey), v.Data}, nil
	}))
	return err
}

func batchOf(n, i int, id string) []evento.Event {
	out := make([]evento.Event, n)
	for j := range out {
		out[j] = evento.Event{AggregateType: "ev", AggregateID: id, Version: uint64(i*n + j + 1), Name: "E", Data: payload}
	}
	return out
}

// benchAppend appends perCommit events per commit from writers goroutines,
// one aggregate each.
func benchAppend(b *testing.B, writers, perCommit int) {
	e := setupBench(b)
	ctx := context.Background()
	rawengine.CompareAppends(b, writers, perCommit, batchOf,
		func(evs []evento.Event) error { return e.s.Write(ctx, evs) },
		func(evs []evento.Event) error { return e.min.Append(ctx, evs) },
		func(evs []evento.Event) error { return e.layoutAppend(ctx, evs) })
}

// BenchmarkW1Append1Writer appends one event per commit from one writer.
func BenchmarkW1Append1Writer(b *testing.B) { benchAppend(b, 1, 1) }

// BenchmarkW2Append16Writers appends one event per commit from 16 writers.
func BenchmarkW2Append16Writers(b *testing.B) { benchAppend(b, 16, 1) }

// BenchmarkW3AppendBatch100 appends 100 events per commit (the raw sides:
// one COPY).
func BenchmarkW3AppendBatch100(b *testing.B) { benchAppend(b, 1, 100) }

// fill writes aggregates×perAgg events, interleaved, to the store and the
// minimal engine.
func fill(b *testing.B, e *benchEnv, aggregates, perAgg int) {
	ctx := context.Background()
	for v := 1; v <= perAgg; v++ {
		batch := make([]evento.Event, aggregates)
		for a := range batch {
			batch[a] = evento.Event{AggregateType: "ev", AggregateID: fmt.Sprintf("a%04d", a), Version: uint64(v), Name: "E", Data: payload}
		}
		if err := e.s.Write(ctx, batch); err != nil {
			b.Fatal(err)
		}
		if err := e.min.Append(ctx, batch); err != nil {
			b.Fatal(err)
		}
	}
	for _, t := range []string{e.ev, e.min.Table()} {
		if _, err := e.raw.Exec(ctx, "VACUUM ANALYZE "+t); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkW4LoadAggregate loads one aggregate's 100 events out of 10,000
// (100 aggregates, interleaved). The layout side runs the range query on
// the store's table.
func BenchmarkW4LoadAggregate(b *testing.B) {
	e := setupBench(b)
	fill(b, e, 100, 100)
	ctx := context.Background()
	q := `SELECT tx, seq, id, aggregate_type, aggregate_id, version, name, routing_key, data, metadata, ts FROM ` + e.ev + `
WHERE aggregate_type = $1 AND aggregate_id = $2 AND version > 0 ORDER BY version`
	buf := make([]evento.Event, 0, 100)
	rawengine.Compare(b, 100, rawengine.Sides{
		Ours: func(from, to int) {
			for i := from; i < to; i++ {
				evs, err := e.s.ReadAggregate(ctx, "ev", fmt.Sprintf("a%04d", i%100), 0, 0)
				if err != nil || len(evs) != 100 {
					b.Fatal(len(evs), err)
				}
			}
		},
		Raw: func(from, to int) {
			for i := from; i < to; i++ {
				evs, err := e.min.Load(ctx, "ev", fmt.Sprintf("a%04d", i%100), buf[:0])
				if err != nil || len(evs) != 100 {
					b.Fatal(len(evs), err)
				}
			}
		},
		Layout: func(from, to int) {
			for i := from; i < to; i++ {
				rows, err := e.raw.Query(ctx, q, []byte("ev"), []byte(fmt.Sprintf("a%04d", i%100)))
				if err != nil {
					b.Fatal(err)
				}
				if evs, err := rawScan(rows, 100); err != nil || len(evs) != 100 {
					b.Fatal(len(evs), err)
				}
			}
		},
	})
}

// BenchmarkW5OrderedScan pages through 10,000 events in global order,
// 1,000 per page. The layout side pages by (tx, seq) on the store's table
// without the visibility horizon.
func BenchmarkW5OrderedScan(b *testing.B) {
	e := setupBench(b)
	fill(b, e, 100, 100)
	ctx := context.Background()
	const n = 10000
	page := cursor.MaxPageSize
	q := `SELECT tx, seq, id, aggregate_type, aggregate_id, version, name, routing_key, data, metadata, ts FROM ` + e.ev + `
WHERE (tx, seq) > ($1::xid8, $2::bigint) ORDER BY tx, seq LIMIT $3`
	rawengine.Compare(b, n, rawengine.Sides{
		Ours: func(from, to int) {
			for i := from; i < to; i++ {
				after, got := "", 0
				for {
					p, err := e.s.Read(ctx, evento.All().First(page, after))
					if err != nil {
						b.Fatal(err)
					}
					got += len(p.Events)
					if !p.PageInfo.HasNextPage {
						break
					}
					after = p.PageInfo.EndCursor
				}
				if got != n {
					b.Fatalf("scan read %d events", got)
				}
			}
		},
		Raw: func(from, to int) {
			for i := from; i < to; i++ {
				if got, err := rawengine.ScanAll(ctx, e.min, page, nil); err != nil || got != n {
					b.Fatal(got, err)
				}
			}
		},
		Layout: func(from, to int) {
			for i := from; i < to; i++ {
				var lastTx uint64
				var lastSeq int64
				got := 0
				for {
					rows, err := e.raw.Query(ctx, q, lastTx, lastSeq, page)
					if err != nil {
						b.Fatal(err)
					}
					evs, err := rawScan(rows, page)
					if err != nil {
						b.Fatal(err)
					}
					if k := len(evs); k > 0 {
						lastTx, lastSeq = evs[k-1].Position.Tx, int64(evs[k-1].Position.Seq)
					}
					got += len(evs)
					if len(evs) < page {
						break
					}
				}
				if got != n {
					b.Fatalf("layout scan read %d rows", got)
				}
			}
		},
	})
}

// rawScan is what a program using pgx directly writes to read event rows
// into evento.Events.
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
		m, err := storekit.DecodeMetadata(md)
		if err != nil {
			return nil, err
		}
		e := evento.Event{AggregateType: string(t), AggregateID: string(i), Version: uint64(version), Name: string(nm),
			RoutingKey: string(r), Data: d, Metadata: m, Timestamp: ts.UTC(), Position: evento.Position{Tx: tx, Seq: uint64(seq)}}
		copy(e.ID[:], id)
		out = append(out, e)
	}
	return out, rows.Err()
}

// secondaryIndexes are the store's secondary indexes on events (the
// primary key (tx, seq) and the unique (type, id, version) aside).
var secondaryIndexes = []string{"events_routing", "events_type", "events_type_routing", "events_aggregate",
	"events_name", "events_name_routing"}

// BenchmarkIndexWriteCost measures what each secondary index costs writes:
// COPY of 100 events over 10 aggregates per commit into a copy of the
// store's table (Ours) against a copy less one index (Raw). ratio_vs_raw
// below 1 is the index's cost. without=all_secondary drops them all.
func BenchmarkIndexWriteCost(b *testing.B) {
	for _, drop := range append(append([]string(nil), secondaryIndexes...), "all_secondary") {
		b.Run("without="+drop, func(b *testing.B) {
			e := setupBench(b)
			ctx := context.Background()
			sch := pgx.Identifier{e.s.Schema()}.Sanitize()
			if _, err := e.raw.Exec(ctx, `CREATE TABLE `+sch+`.less_events (LIKE `+sch+`.events INCLUDING ALL)`); err != nil {
				b.Fatal(err)
			}
			var idx []string
			if err := pgx.BeginFunc(ctx, e.raw, func(tx pgx.Tx) error {
				rows, _ := tx.Query(ctx, `SELECT indexname FROM pg_indexes WHERE schemaname = $1 AND tablename = 'less_events' ORDER BY indexname`, e.s.Schema())
				var err error
				idx, err = pgx.CollectRows(rows, pgx.RowTo[string])
				return err
			}); err != nil {
				b.Fatal(err)
			}
			// LIKE … INCLUDING ALL names the copies after the columns;
			// map them back through their definitions.
			for _, name := range idx {
				var def string
				if err := e.raw.QueryRow(ctx, `SELECT pg_get_indexdef(($1 || '.' || quote_ident($2))::regclass)`, sch, name).Scan(&def); err != nil {
					b.Fatal(err)
				}
				for _, want := range secondaryIndexes {
					if drop != want && drop != "all_secondary" {
						continue
					}
					var orig string
					if err := e.raw.QueryRow(ctx, `SELECT pg_get_indexdef(($1 || '.' || $2)::regclass)`, sch, want).Scan(&orig); err != nil {
						b.Fatal(err)
					}
					if cols(orig) == cols(def) {
						if _, err := e.raw.Exec(ctx, `DROP INDEX `+sch+`.`+pgx.Identifier{name}.Sanitize()); err != nil {
							b.Fatal(err)
						}
					}
				}
			}
			var k [2]int
			run := func(side int, table string) func(from, to int) {
				return func(from, to int) {
					for range to - from {
						k[side]++
						_, err := e.raw.CopyFrom(ctx, pgx.Identifier{e.s.Schema(), table}, layoutCols, pgx.CopyFromSlice(100, func(j int) ([]any, error) {
							return []any{ulid.Make().Bytes(), []byte("ev"), []byte(fmt.Sprint("a", j%10)), int64(k[side]*10 + j/10), []byte("E"), []byte("tenant-1"), payload}, nil
						}))
						if err != nil {
							b.Fatal(err)
						}
					}
				}
			}
			rawengine.Compare(b, 100, rawengine.Sides{Ours: run(0, "layout_events"), Raw: run(1, "less_events")})
		})
	}
}

// cols is the column list of an index definition.
func cols(def string) string {
	for i := len(def) - 1; i >= 0; i-- {
		if def[i] == '(' {
			return def[i:]
		}
	}
	return def
}

// BenchmarkFirstPageByType reads the first page (100) of one type from a
// store holding 10k unrelated events and from one holding rawengine.FlatBigSize(), in
// the same run, and reports big ÷ small time per read over b.N reads (past
// pgx's 5th execution, so generic plans are covered: flat_ratio; target
// ≤ 2) and for the first read of each store (first_ratio). The unrelated
// events are inserted with one INSERT … SELECT per store, then analysed.
//
//	EVENTO_BENCH_1M=1 go test ./executor/postgres/ -run '^$' -bench FirstPageByType -benchtime=1000x
func BenchmarkFirstPageByType(b *testing.B) {
	ctx := context.Background()
	fill := func(unrelated int) *benchEnv {
		e := setupBench(b)
		ins := `INSERT INTO ` + e.ev + ` (id, aggregate_type, aggregate_id, version, name, routing_key, data)
SELECT gen_random_bytes_stub.b, 'other'::bytea, convert_to('t' || (i / 100), 'UTF8'), i % 100 + 1, 'H'::bytea, ''::bytea, $3::bytea
FROM generate_series($1::bigint, $2::bigint) i, LATERAL (SELECT decode(md5(i::text), 'hex') AS b) gen_random_bytes_stub`
		if _, err := e.raw.Exec(ctx, ins, 0, unrelated/2-1, payload); err != nil {
			b.Fatal(err)
		}
		if err := e.s.Write(ctx, batchOf(200, 0, "acc-1")); err != nil {
			b.Fatal(err)
		}
		if _, err := e.raw.Exec(ctx, ins, unrelated/2, unrelated-1, payload); err != nil {
			b.Fatal(err)
		}
		if _, err := e.raw.Exec(ctx, "VACUUM ANALYZE "+e.ev); err != nil {
			b.Fatal(err)
		}
		return e
	}
	small, big := fill(10_000), fill(rawengine.FlatBigSize())
	q := evento.ByType("ev").First(100, "")
	read := func(e *benchEnv) time.Duration {
		t0 := time.Now()
		p, err := e.s.Read(ctx, q)
		if err != nil || len(p.Events) != 100 {
			b.Fatal(len(p.Events), err)
		}
		return time.Since(t0)
	}
	rawengine.Flatness(b, func() time.Duration { return read(small) }, func() time.Duration { return read(big) })
}
