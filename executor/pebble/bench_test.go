package pebble

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	pdb "github.com/cockroachdb/pebble/v2"
	"github.com/evento-go/evento"
)

// The benchmarks compare the Store with raw Pebble doing the same minimal
// work in the same run, and report:
//
//	events/s       the Store's throughput
//	raw_events/s   raw Pebble's throughput
//	ratio_vs_raw   events/s ÷ raw_events/s
//
// The two sides alternate in halves so that drift of the machine (other
// processes, page cache) hits both alike. Durable benchmarks use real
// directories and synced commits. Run, e.g.:
//
//	go test ./executor/pebble/ -run '^$' -bench . -benchtime=2000x

var payload = []byte(strings.Repeat("p", 100))

func benchEvent(typ, id string, v uint64) evento.Event {
	return evento.Event{AggregateType: typ, AggregateID: id, Version: v, Name: "MoneyDeposited", Data: payload,
		Metadata: evento.Metadata{CorrelationID: "corr-0123456789"}}
}

// rawStore is raw Pebble writing the same keys the Store writes.
type rawStore struct {
	db    *pdb.DB
	pos   atomic.Uint64
	ulids *evento.ULIDSource
	// pointer stores only the position under the aggregate key (the
	// layout the Store does not use), for BenchmarkLayoutWriteCost.
	pointer bool
}

func openRaw(b *testing.B) *rawStore {
	db, err := pdb.Open(b.TempDir(), &pdb.Options{Logger: quietLogger{newConfig(nil).logger}, CacheSize: defaultCacheSize})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Close() })
	return &rawStore{db: db, ulids: evento.NewULIDSource()}
}

// addEvent adds one event's keys to batch, the minimal equivalent of what
// the Store's committer writes.
func addEvent(batch *pdb.Batch, e *evento.Event, meta []byte, key, val []byte, pointer bool) ([]byte, []byte) {
	val = appendEvent(val[:0], e, meta)
	key = eventKey(key[:0], e.Position.Seq)
	batch.Set(key, val, nil)
	key = appendU64(aggregatePrefix(key[:0], e.AggregateType, e.AggregateID), e.Version)
	if pointer {
		batch.Set(key, val[valuePosOffset:valuePosOffset+8], nil)
	} else {
		batch.Set(key, val, nil)
	}
	key = appendU64(typePrefix(key[:0], e.AggregateType), e.Position.Seq)
	batch.Set(key, nil, nil)
	key = appendU64(typeNamePrefix(key[:0], e.AggregateType, e.Name), e.Position.Seq)
	batch.Set(key, nil, nil)
	key = appendU64(routingPrefix(key[:0], e.RoutingKey), e.Position.Seq)
	batch.Set(key, nil, nil)
	key = appendU64(routTypePrefix(key[:0], e.RoutingKey, e.AggregateType), e.Position.Seq)
	batch.Set(key, nil, nil)
	key = appendU64(routNamePrefix(key[:0], e.RoutingKey, e.AggregateType, e.Name), e.Position.Seq)
	batch.Set(key, nil, nil)
	return key, val
}

// rawWrite commits events (their versions already checked by the caller)
// in one synced batch.
func (r *rawStore) rawWrite(events []evento.Event) error {
	batch := r.db.NewBatch()
	defer batch.Close()
	var key, val []byte
	now := time.Now().UTC()
	for i := range events {
		e := &events[i]
		e.Position = evento.Position{Seq: r.pos.Add(1)}
		e.Timestamp = now
		e.ID = r.ulids.New(now)
		meta, _ := evento.EncodeMetadata(e.Metadata)
		key, val = addEvent(batch, e, meta, key, val, r.pointer)
	}
	return batch.Commit(pdb.Sync)
}

func openBenchStore(b *testing.B) *Store {
	s, err := Open(context.Background(), b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	return s
}

// compare runs raw and ours for b.N operations each, alternating in ten
// rounds (of b.N/10 operations) so that drift of the machine (other processes, page cache) hits
// both alike, and reports the metrics. perOp is the number of events per
// operation.
func compare(b *testing.B, perOp int, raw, ours func(from, to int)) {
	b.Helper()
	var rawDur, ourDur time.Duration
	const rounds = 10
	b.ResetTimer()
	for r := range rounds {
		from, to := b.N*r/rounds, b.N*(r+1)/rounds
		if from == to {
			continue
		}
		// Alternate which side goes first, so that each suffers the
		// other's background compactions alike.
		if r%2 == 0 {
			t0 := time.Now()
			raw(from, to)
			t1 := time.Now()
			ours(from, to)
			rawDur += t1.Sub(t0)
			ourDur += time.Since(t1)
		} else {
			t0 := time.Now()
			ours(from, to)
			t1 := time.Now()
			raw(from, to)
			ourDur += t1.Sub(t0)
			rawDur += time.Since(t1)
		}
	}
	b.StopTimer()
	events := float64(b.N * perOp)
	ourRate := events / ourDur.Seconds()
	rawRate := events / rawDur.Seconds()
	b.ReportMetric(ourRate, "events/s")
	b.ReportMetric(rawRate, "raw_events/s")
	b.ReportMetric(ourRate/rawRate, "ratio_vs_raw")
	b.ReportMetric(0, "ns/op")
}

// BenchmarkAppend1Writer: one writer, one event per durable commit.
func BenchmarkAppend1Writer(b *testing.B) {
	s := openBenchStore(b)
	r := openRaw(b)
	ctx := context.Background()
	compare(b, 1, func(from, to int) {
		for i := from; i < to; i++ {
			if err := r.rawWrite([]evento.Event{benchEvent("bank/Account", "acc-1", uint64(i+1))}); err != nil {
				b.Fatal(err)
			}
		}
	}, func(from, to int) {
		for i := from; i < to; i++ {
			if err := s.Write(ctx, []evento.Event{benchEvent("bank/Account", "acc-1", uint64(i+1))}); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkAppend16Writers: 16 goroutines, one aggregate each, one event
// per durable commit. Raw Pebble locks per aggregate and each goroutine
// syncs its own batch (Pebble's WAL groups concurrent syncs).
func BenchmarkAppend16Writers(b *testing.B) {
	const writers = 16
	s := openBenchStore(b)
	r := openRaw(b)
	ctx := context.Background()
	var locks [writers]sync.Mutex
	var rawVersions, ourVersions [writers]uint64
	parallel := func(from, to int, op func(w int)) {
		var next atomic.Int64
		next.Store(int64(from))
		var wg sync.WaitGroup
		for w := range writers {
			wg.Go(func() {
				for next.Add(1) <= int64(to) {
					op(w)
				}
			})
		}
		wg.Wait()
	}
	compare(b, 1, func(from, to int) {
		parallel(from, to, func(w int) {
			locks[w].Lock()
			defer locks[w].Unlock()
			rawVersions[w]++
			if err := r.rawWrite([]evento.Event{benchEvent("bank/Account", fmt.Sprint("acc-", w), rawVersions[w])}); err != nil {
				b.Error(err)
			}
		})
	}, func(from, to int) {
		parallel(from, to, func(w int) {
			ourVersions[w]++ // one goroutine per aggregate at a time
			if err := s.Write(ctx, []evento.Event{benchEvent("bank/Account", fmt.Sprint("acc-", w), ourVersions[w])}); err != nil {
				b.Error(err)
			}
		})
	})
	// How many writes shared each WAL sync.
	b.ReportMetric(float64(b.N)/float64(s.commits.Load()), "writes/commit")
}

// BenchmarkAppendBatch100: 100 events of one aggregate per durable commit.
func BenchmarkAppendBatch100(b *testing.B) {
	const n = 100
	s := openBenchStore(b)
	r := openRaw(b)
	ctx := context.Background()
	batch := func(i int) []evento.Event {
		out := make([]evento.Event, n)
		for j := range out {
			out[j] = benchEvent("bank/Account", "acc-1", uint64(i*n+j+1))
		}
		return out
	}
	compare(b, n, func(from, to int) {
		for i := from; i < to; i++ {
			if err := r.rawWrite(batch(i)); err != nil {
				b.Fatal(err)
			}
		}
	}, func(from, to int) {
		for i := from; i < to; i++ {
			if err := s.Write(ctx, batch(i)); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkLayoutWriteCost measures what storing each event in full under
// both the log key and the aggregate key (the Store's layout) costs on
// writes, against storing only the position under the aggregate key
// (which would make every aggregate load one lookup per event, see
// BenchmarkAggregateLoad100). Both sides are raw Pebble, 100 events per
// synced commit; ratio_vs_raw is full-layout ÷ pointer-layout throughput.
func BenchmarkLayoutWriteCost(b *testing.B) {
	const n = 100
	full, ptr := openRaw(b), openRaw(b)
	ptr.pointer = true
	batch := func(i int) []evento.Event {
		out := make([]evento.Event, n)
		for j := range out {
			out[j] = benchEvent("bank/Account", fmt.Sprint("acc-", j%10), uint64(i*n+j+1))
		}
		return out
	}
	compare(b, n, func(from, to int) {
		for i := from; i < to; i++ {
			if err := ptr.rawWrite(batch(i)); err != nil {
				b.Fatal(err)
			}
		}
	}, func(from, to int) {
		for i := from; i < to; i++ {
			if err := full.rawWrite(batch(i)); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkAggregateLoad100 loads a 100-event aggregate among 100 others.
// The Store reads its stream in one range read; raw Pebble looks each
// event up through a (type, id, version) -> position index.
func BenchmarkAggregateLoad100(b *testing.B) {
	const aggs, n = 100, 100
	s := openBenchStore(b)
	r := openRaw(b)
	ctx := context.Background()
	// Fill both, interleaving aggregates so each one's events are spread
	// over the log.
	idx := r.db.NewBatch()
	for v := uint64(1); v <= n; v++ {
		var evs []evento.Event
		for a := range aggs {
			evs = append(evs, benchEvent("bank/Account", fmt.Sprint("acc-", a), v))
		}
		if err := s.Write(ctx, evs); err != nil {
			b.Fatal(err)
		}
		raw := make([]evento.Event, len(evs))
		for i := range evs {
			raw[i] = benchEvent(evs[i].AggregateType, evs[i].AggregateID, evs[i].Version)
		}
		if err := r.rawWrite(raw); err != nil {
			b.Fatal(err)
		}
		for _, e := range raw {
			idx.Set(appendU64(aggregatePrefix([]byte{'i'}, e.AggregateType, e.AggregateID), e.Version), appendU64(nil, e.Position.Seq), nil)
		}
	}
	if err := idx.Commit(pdb.Sync); err != nil {
		b.Fatal(err)
	}
	idx.Close()
	for _, db := range []*pdb.DB{s.db, r.db} {
		if err := db.Flush(); err != nil {
			b.Fatal(err)
		}
	}
	target := fmt.Sprint("acc-", aggs/2)
	compare(b, n, func(from, to int) {
		key := make([]byte, 0, 64)
		for i := from; i < to; i++ {
			// The strongest raw form of per-event lookups: one iterator
			// per keyspace, a seek per key (cheaper than DB.Get).
			idxIt, err := r.db.NewIter(&pdb.IterOptions{LowerBound: []byte{'i'}, UpperBound: []byte{'j'}})
			if err != nil {
				b.Fatal(err)
			}
			logIt, err := r.db.NewIter(&pdb.IterOptions{LowerBound: []byte{tagEvent}, UpperBound: []byte{tagEvent + 1}})
			if err != nil {
				b.Fatal(err)
			}
			out := make([]evento.Event, 0, n)
			for v := uint64(1); v <= n; v++ {
				key = appendU64(aggregatePrefix(append(key[:0], 'i'), "bank/Account", target), v)
				if !idxIt.SeekGE(key) {
					b.Fatal("index entry missing")
				}
				pos := decodeU64(idxIt.Value())
				out = append(out, evento.Event{})
				if err := lookupEvent(logIt, eventKey(key[:0], pos), &out[len(out)-1]); err != nil {
					b.Fatal(err)
				}
			}
			idxIt.Close()
			logIt.Close()
			if len(out) != n {
				b.Fatal(len(out))
			}
		}
	}, func(from, to int) {
		for i := from; i < to; i++ {
			out, err := s.ReadAggregate(ctx, "bank/Account", target, 0, 0)
			if err != nil || len(out) != n {
				b.Fatal(len(out), err)
			}
		}
	})
}

// BenchmarkGlobalScan reads the whole log in order and decodes it: the
// Store through Read pages of 1000, raw Pebble with one iterator.
func BenchmarkGlobalScan(b *testing.B) {
	benchScan(b, evento.All())
}

// BenchmarkCatchUpByTypes is a subscription's catch-up: the OR of two type
// filters, read through the type indexes in pages of 1000, against raw
// ordered iteration + decode of the same events.
func BenchmarkCatchUpByTypes(b *testing.B) {
	benchScan(b, evento.ByType("bank/Account").Or(evento.Filter{AggregateType: "bank/Transfer"}))
}

func benchScan(b *testing.B, q evento.Query) {
	const total = 20000
	s := openBenchStore(b)
	ctx := context.Background()
	for i := 0; i < total; i += 100 {
		evs := make([]evento.Event, 100)
		for j := range evs {
			typ := "bank/Account"
			if (i+j)%2 == 1 {
				typ = "bank/Transfer"
			}
			evs[j] = benchEvent(typ, fmt.Sprint("acc-", (i+j)%500), uint64((i+j)/500+1))
		}
		if err := s.Write(ctx, evs); err != nil {
			b.Fatal(err)
		}
	}
	if err := s.db.Flush(); err != nil {
		b.Fatal(err)
	}
	compare(b, total, func(from, to int) {
		for i := from; i < to; i++ {
			it, err := s.db.NewIter(&pdb.IterOptions{LowerBound: []byte{tagEvent}, UpperBound: []byte{tagEvent + 1}})
			if err != nil {
				b.Fatal(err)
			}
			n := 0
			var e evento.Event
			for ok := it.First(); ok; ok = it.Next() {
				if err := decodeEvent(it.Value(), &e); err != nil {
					b.Fatal(err)
				}
				n++
			}
			it.Close()
			if n != total {
				b.Fatal(n)
			}
		}
	}, func(from, to int) {
		for i := from; i < to; i++ {
			n, c := 0, ""
			for {
				p, err := s.Read(ctx, q.First(1000, c))
				if err != nil {
					b.Fatal(err)
				}
				n += len(p.Events)
				if !p.PageInfo.HasNextPage {
					break
				}
				c = p.PageInfo.EndCursor
			}
			if n != total {
				b.Fatal(n)
			}
		}
	})
}
