package sqlite

import (
	"context"
	"crypto/rand"
	"database/sql"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/evento-go/evento"
)

// Benchmarks compare the Store with raw modernc.org/sqlite doing the
// minimal equivalent work on a file with the same schema (the same
// migration: table, constraints and indexes) and the same pragmas (WAL,
// synchronous=FULL, busy_timeout), measured in the same run. Ours and raw
// alternate op by op so that machine noise hits both alike.
//
//	go test ./executor/sqlite/ -run '^$' -bench . -benchtime=2000x

// benchFiles opens a Store on one file and a raw handle on another, both
// migrated and configured alike.
func benchFiles(b *testing.B) (*Store, *sql.DB) {
	b.Helper()
	dir := b.TempDir()
	s, err := Open(context.Background(), filepath.Join(dir, "ours.db"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	rawPath := filepath.Join(dir, "raw.db")
	r, err := Open(context.Background(), rawPath) // same migration
	if err != nil {
		b.Fatal(err)
	}
	r.Close()
	raw, err := sql.Open("sqlite", "file:"+rawPath+"?_pragma=busy_timeout(5000)&_pragma=journal_mode(WAL)&_pragma=synchronous(FULL)")
	if err != nil {
		b.Fatal(err)
	}
	raw.SetMaxOpenConns(1)
	b.Cleanup(func() { raw.Close() })
	return s, raw
}

const rawInsert = `INSERT INTO events (id, aggregate_type, aggregate_id, version, name, routing_key, data, metadata, timestamp) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`

// rawAppender inserts n events per transaction into one aggregate.
type rawAppender struct {
	db      *sql.DB
	ins     *sql.Stmt
	version int64
	data    []byte
}

func newRawAppender(b *testing.B, db *sql.DB) *rawAppender {
	ins, err := db.Prepare(rawInsert)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { ins.Close() })
	return &rawAppender{db: db, ins: ins, data: make([]byte, 100)}
}

func (r *rawAppender) append(b *testing.B, n int) {
	tx, err := r.db.Begin()
	if err != nil {
		b.Fatal(err)
	}
	st := tx.Stmt(r.ins)
	var id [16]byte
	ts := time.Now().UnixMicro()
	for range n {
		rand.Read(id[:])
		r.version++
		if _, err := st.Exec(id[:], []byte("bench/Account"), []byte("acc-1"), r.version, []byte("Deposited"), []byte{}, r.data, nil, ts); err != nil {
			b.Fatal(err)
		}
	}
	if err := tx.Commit(); err != nil {
		b.Fatal(err)
	}
}

// oursAppender writes n events per Write into one aggregate.
type oursAppender struct {
	s       *Store
	version uint64
	batch   []evento.Event
	data    []byte
}

func (o *oursAppender) append(b *testing.B, n int) {
	o.batch = o.batch[:0]
	for range n {
		o.version++
		o.batch = append(o.batch, evento.Event{AggregateType: "bench/Account", AggregateID: "acc-1", Version: o.version, Name: "Deposited", Data: o.data})
	}
	if err := o.s.Write(context.Background(), o.batch); err != nil {
		b.Fatal(err)
	}
}

// compare runs ours and raw b.N times each, alternating op by op so that
// the (large, on a shared machine) swings in fsync latency and CPU time hit
// both alike, and reports both rates (items per op) and ours/raw.
func compare(b *testing.B, items int, unit string, ours, raw func()) {
	b.Helper()
	const block = 1
	var oursT, rawT time.Duration
	b.ResetTimer()
	for done := 0; done < b.N; {
		n := min(block, b.N-done)
		start := time.Now()
		for range n {
			ours()
		}
		oursT += time.Since(start)
		b.StopTimer()
		start = time.Now()
		for range n {
			raw()
		}
		rawT += time.Since(start)
		b.StartTimer()
		done += n
	}
	b.StopTimer()
	total := float64(b.N * items)
	b.ReportMetric(total/oursT.Seconds(), unit+"/s")
	b.ReportMetric(total/rawT.Seconds(), "raw_"+unit+"/s")
	b.ReportMetric(rawT.Seconds()/oursT.Seconds(), "ratio_vs_raw")
	// ns/op covers ours only.
}

func benchAppend(b *testing.B, perCommit int) {
	s, raw := benchFiles(b)
	o := &oursAppender{s: s, data: make([]byte, 100)}
	r := newRawAppender(b, raw)
	compare(b, perCommit, "events", func() { o.append(b, perCommit) }, func() { r.append(b, perCommit) })
}

// BenchmarkAppend1 appends one event per durable commit.
func BenchmarkAppend1(b *testing.B) { benchAppend(b, 1) }

// BenchmarkAppend100 appends 100 events per durable commit.
func BenchmarkAppend100(b *testing.B) { benchAppend(b, 100) }

// fill writes aggregates×perAgg events, interleaved across aggregates, to
// the Store and the same rows to raw (by copying the Store's file content
// through the same inserts).
func fill(b *testing.B, s *Store, raw *sql.DB, aggregates, perAgg int) {
	b.Helper()
	ctx := context.Background()
	data := make([]byte, 100)
	tx, err := raw.Begin()
	if err != nil {
		b.Fatal(err)
	}
	ins, err := tx.Prepare(rawInsert)
	if err != nil {
		b.Fatal(err)
	}
	for v := 1; v <= perAgg; v++ {
		batch := make([]evento.Event, aggregates)
		for a := range batch {
			batch[a] = evento.Event{AggregateType: "bench/Account", AggregateID: fmt.Sprintf("acc-%04d", a), Version: uint64(v), Name: "Deposited", Data: data}
		}
		if err := s.Write(ctx, batch); err != nil {
			b.Fatal(err)
		}
		for _, e := range batch {
			if _, err := ins.Exec(e.ID[:], []byte(e.AggregateType), []byte(e.AggregateID), int64(e.Version), []byte(e.Name), []byte{}, e.Data, nil, e.Timestamp.UnixMicro()); err != nil {
				b.Fatal(err)
			}
		}
	}
	ins.Close()
	if err := tx.Commit(); err != nil {
		b.Fatal(err)
	}
}

// rawEvent is what the raw readers scan into: the same columns.
type rawEvent struct {
	pos, version, ts int64
	id, data, meta   []byte
	typ, agg, name   string
	rk               string
}

func scanRaw(rows *sql.Rows, out []rawEvent) ([]rawEvent, int64) {
	var last int64
	for rows.Next() {
		var e rawEvent
		if err := rows.Scan(&e.pos, &e.id, &e.typ, &e.agg, &e.version, &e.name, &e.rk, &e.data, &e.meta, &e.ts); err != nil {
			panic(err)
		}
		out = append(out, e)
		last = e.pos
	}
	if err := rows.Err(); err != nil {
		panic(err)
	}
	rows.Close()
	return out, last
}

// BenchmarkLoadAggregate loads one aggregate's 100 events out of 10,000
// (100 aggregates, interleaved) against a raw SELECT of the same rows.
func BenchmarkLoadAggregate(b *testing.B) {
	s, raw := benchFiles(b)
	fill(b, s, raw, 100, 100)
	ctx := context.Background()
	sel, err := raw.Prepare(`SELECT ` + eventCols + ` FROM events WHERE aggregate_type = ? AND aggregate_id = ? AND version > ? ORDER BY version`)
	if err != nil {
		b.Fatal(err)
	}
	defer sel.Close()
	raw.SetMaxOpenConns(4)
	i := 0
	buf := make([]rawEvent, 0, 100)
	compare(b, 100, "events", func() {
		i++
		es, err := s.ReadAggregate(ctx, "bench/Account", fmt.Sprintf("acc-%04d", i%100), 0, 0)
		if err != nil || len(es) != 100 {
			b.Fatalf("ReadAggregate: %d events, %v", len(es), err)
		}
	}, func() {
		i++
		rows, err := sel.Query([]byte("bench/Account"), []byte(fmt.Sprintf("acc-%04d", i%100)), 0)
		if err != nil {
			b.Fatal(err)
		}
		buf, _ = scanRaw(rows, buf[:0])
		if len(buf) != 100 {
			b.Fatalf("raw load: %d events", len(buf))
		}
	})
}

// BenchmarkScan reads all 10,000 events in global order, 1,000 per page,
// decoded into evento.Events, against raw keyset-paged SELECTs of the same
// rows.
func BenchmarkScan(b *testing.B) {
	s, raw := benchFiles(b)
	fill(b, s, raw, 100, 100)
	ctx := context.Background()
	sel, err := raw.Prepare(`SELECT ` + eventCols + ` FROM events WHERE position > ? ORDER BY position LIMIT 1000`)
	if err != nil {
		b.Fatal(err)
	}
	defer sel.Close()
	raw.SetMaxOpenConns(4)
	buf := make([]rawEvent, 0, 1000)
	compare(b, 10000, "events", func() {
		n, after := 0, ""
		for {
			p, err := s.Read(ctx, evento.All().First(1000, after))
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
	}, func() {
		n, last := 0, int64(0)
		for {
			rows, err := sel.Query(last)
			if err != nil {
				b.Fatal(err)
			}
			buf, last = scanRaw(rows, buf[:0])
			n += len(buf)
			if len(buf) < 1000 {
				break
			}
		}
		if n != 10000 {
			b.Fatalf("raw scan read %d events", n)
		}
	})
}
