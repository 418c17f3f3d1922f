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
	"github.com/evento-go/evento/executor/storekit"
	"github.com/evento-go/evento/internal/rawengine"
)

// The benchmarks W1–W5 measure the Store against two raw Pebble stores in
// the same run (rawengine.Compare, interleaved rounds) and report:
//
//	events/s          the Store
//	raw_events/s      rawengine.Pebble: one log record per event plus the
//	                  unique (type, id, version) key, nothing else
//	ratio_vs_raw      events/s ÷ raw_events/s (DESIGN.md's targets)
//	layout_events/s   raw Pebble writing/reading the Store's own keys
//	ratio_vs_layout   the Store's code on its own layout
//	schema_cost       layout ÷ minimal: what the layout costs Pebble
//
// Durable benchmarks use real directories and synced commits. One command
// runs them all:
//
//	go test ./executor/pebble/ -run '^$' -bench 'W[1-5]' -benchtime=2s
//
// BenchmarkKeyWriteCost measures each key per event; BenchmarkFirstPageByType
// the flatness of a type query (EVENTO_BENCH_1M=1 for 1M unrelated events).

var payload = []byte(strings.Repeat("p", 100))

func benchEvent(typ, id string, v uint64) evento.Event {
	return evento.Event{AggregateType: typ, AggregateID: id, Version: v, Name: "MoneyDeposited", Data: payload,
		Metadata: evento.Metadata{CorrelationID: "corr-0123456789"}}
}

// The Store's keys per event, for rawStore.skip.
const (
	keyAggregate = 1 << iota // (type, id, version) → the event
	keyType
	keyTypeName
	keyRouting
	keyRoutType
	keyRoutName
)

var keyNames = []struct {
	bit  int
	name string
}{{keyAggregate, "aggregate"}, {keyType, "type"}, {keyTypeName, "type_name"}, {keyRouting, "routing"}, {keyRoutType, "routing_type"}, {keyRoutName, "routing_type_name"}}

// rawStore is raw Pebble writing the Store's keys (less those in skip).
type rawStore struct {
	db    *pdb.DB
	pos   atomic.Uint64
	ulids *storekit.ULIDSource
	skip  int
	// pointer stores only the position under the aggregate key, for
	// BenchmarkKeyWriteCost.
	pointer bool
	// noSync commits without a WAL sync, for BenchmarkKeyWriteCost.
	noSync bool
}

func openRaw(b *testing.B) *rawStore {
	db, err := pdb.Open(b.TempDir(), &pdb.Options{Logger: quietLogger{newConfig(nil).logger}, CacheSize: defaultCacheSize})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Close() })
	return &rawStore{db: db, ulids: storekit.NewULIDSource()}
}

// openMinimal opens rawengine's minimal Pebble store with the Store's cache size.
func openMinimal(b *testing.B) *rawengine.Pebble {
	r, err := rawengine.OpenPebble(b.TempDir(), &pdb.Options{CacheSize: defaultCacheSize})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { r.Close() })
	return r
}

// addEvent adds one event's keys to batch, the minimal equivalent of what
// the Store's committer writes.
func (r *rawStore) addEvent(batch *pdb.Batch, e *evento.Event, meta []byte, key, val []byte) ([]byte, []byte) {
	val = appendEvent(val[:0], e, meta)
	key = eventKey(key[:0], e.Position.Seq)
	batch.Set(key, val, nil)
	if r.skip&keyAggregate == 0 {
		key = appendU64(aggregatePrefix(key[:0], e.AggregateType, e.AggregateID), e.Version)
		if r.pointer {
			batch.Set(key, val[valuePosOffset:valuePosOffset+8], nil)
		} else {
			batch.Set(key, val, nil)
		}
	}
	for _, k := range []struct {
		bit    int
		prefix func([]byte) []byte
	}{
		{keyType, func(b []byte) []byte { return typePrefix(b, e.AggregateType) }},
		{keyTypeName, func(b []byte) []byte { return typeNamePrefix(b, e.AggregateType, e.Name) }},
		{keyRouting, func(b []byte) []byte { return routingPrefix(b, e.RoutingKey) }},
		{keyRoutType, func(b []byte) []byte { return routTypePrefix(b, e.RoutingKey, e.AggregateType) }},
		{keyRoutName, func(b []byte) []byte { return routNamePrefix(b, e.RoutingKey, e.AggregateType, e.Name) }},
	} {
		if r.skip&k.bit == 0 {
			key = appendU64(k.prefix(key[:0]), e.Position.Seq)
			batch.Set(key, nil, nil)
		}
	}
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
		meta, _ := storekit.EncodeMetadata(e.Metadata)
		key, val = r.addEvent(batch, e, meta, key, val)
	}
	if r.noSync {
		return batch.Commit(pdb.NoSync)
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

// BenchmarkW1Append1Writer: one writer, one event per durable commit.
func BenchmarkW1Append1Writer(b *testing.B) {
	s, m, l := openBenchStore(b), openMinimal(b), openRaw(b)
	ctx := context.Background()
	one := func(i int) []evento.Event { return []evento.Event{benchEvent("bank/Account", "acc-1", uint64(i+1))} }
	rawengine.Compare(b, 1, rawengine.Sides{
		Ours: func(from, to int) {
			for i := from; i < to; i++ {
				if err := s.Write(ctx, one(i)); err != nil {
					b.Fatal(err)
				}
			}
		},
		Raw: func(from, to int) {
			for i := from; i < to; i++ {
				if err := m.Append(ctx, one(i)); err != nil {
					b.Fatal(err)
				}
			}
		},
		Layout: func(from, to int) {
			for i := from; i < to; i++ {
				if err := l.rawWrite(one(i)); err != nil {
					b.Fatal(err)
				}
			}
		},
	})
}

// BenchmarkW2Append16Writers: 16 goroutines, one aggregate each, one event
// per durable commit. The raw stores lock per aggregate and each goroutine
// syncs its own batch (Pebble's commit pipeline shares concurrent syncs).
func BenchmarkW2Append16Writers(b *testing.B) {
	const writers = 16
	s, m, l := openBenchStore(b), openMinimal(b), openRaw(b)
	ctx := context.Background()
	var locks [writers]sync.Mutex
	var versions [3][writers]uint64
	op := func(side, w int, write func([]evento.Event) error) {
		locks[w].Lock() // one goroutine per aggregate at a time
		defer locks[w].Unlock()
		versions[side][w]++
		if err := write([]evento.Event{benchEvent("bank/Account", fmt.Sprint("acc-", w), versions[side][w])}); err != nil {
			b.Error(err)
		}
	}
	ours := func(evs []evento.Event) error { return s.Write(ctx, evs) }
	raw := func(evs []evento.Event) error { return m.Append(ctx, evs) }
	rawengine.Compare(b, 1, rawengine.Sides{
		Ours:   func(from, to int) { rawengine.Parallel(from, to, writers, func(w int) { op(0, w, ours) }) },
		Raw:    func(from, to int) { rawengine.Parallel(from, to, writers, func(w int) { op(1, w, raw) }) },
		Layout: func(from, to int) { rawengine.Parallel(from, to, writers, func(w int) { op(2, w, l.rawWrite) }) },
	})
	// How many writes shared each of the Store's WAL syncs.
	b.ReportMetric(float64(b.N)/float64(s.commits.Load()), "writes/commit")
}

func batchOf(n, i int, id string) []evento.Event {
	out := make([]evento.Event, n)
	for j := range out {
		out[j] = benchEvent("bank/Account", id, uint64(i*n+j+1))
	}
	return out
}

// BenchmarkW3AppendBatch100: 100 events of one aggregate per durable commit.
func BenchmarkW3AppendBatch100(b *testing.B) {
	const n = 100
	s, m, l := openBenchStore(b), openMinimal(b), openRaw(b)
	ctx := context.Background()
	rawengine.Compare(b, n, rawengine.Sides{
		Ours: func(from, to int) {
			for i := from; i < to; i++ {
				if err := s.Write(ctx, batchOf(n, i, "acc-1")); err != nil {
					b.Fatal(err)
				}
			}
		},
		Raw: func(from, to int) {
			for i := from; i < to; i++ {
				if err := m.Append(ctx, batchOf(n, i, "acc-1")); err != nil {
					b.Fatal(err)
				}
			}
		},
		Layout: func(from, to int) {
			for i := from; i < to; i++ {
				if err := l.rawWrite(batchOf(n, i, "acc-1")); err != nil {
					b.Fatal(err)
				}
			}
		},
	})
}

// BenchmarkKeyWriteCost measures what each key per event costs writes: raw
// Pebble writing the Store's full layout (Ours) against the same layout
// without one key (Raw), 100 events over 10 aggregates per commit, without
// WAL syncs: a key adds bytes to the same WAL write and sync, so its cost is
// the CPU and bytes measured here, which a synced commit's latency (and its
// variance on a shared machine) would hide. ratio_vs_raw below 1 is the
// key's cost: 0.9 means the key takes 10% of the write throughput. "aggregate_pointer" stores the position instead of
// the event under the aggregate key.
func BenchmarkKeyWriteCost(b *testing.B) {
	const n = 100
	batch := func(i int) []evento.Event {
		out := make([]evento.Event, n)
		for j := range out {
			out[j] = benchEvent("bank/Account", fmt.Sprint("acc-", j%10), uint64(i*n/10+j/10+1))
			out[j].RoutingKey = "tenant-1"
		}
		return out
	}
	cases := append([]struct {
		bit  int
		name string
	}{{0, "aggregate_pointer"}}, keyNames...)
	for _, c := range cases {
		b.Run("without="+c.name, func(b *testing.B) {
			full, less := openRaw(b), openRaw(b)
			full.noSync, less.noSync = true, true
			if c.bit == 0 {
				less.pointer = true
			}
			less.skip = c.bit
			run := func(r *rawStore) func(from, to int) {
				return func(from, to int) {
					for i := from; i < to; i++ {
						if err := r.rawWrite(batch(i)); err != nil {
							b.Fatal(err)
						}
					}
				}
			}
			rawengine.Compare(b, n, rawengine.Sides{Ours: run(full), Raw: run(less)})
		})
	}
}

// BenchmarkW4LoadAggregate loads a 100-event aggregate among 100 others
// (interleaved in the log). The Store reads its stream in one range read;
// the minimal store looks each event up through its (type, id, version) →
// position key; the layout side range-reads the Store's aggregate keys.
func BenchmarkW4LoadAggregate(b *testing.B) {
	const aggs, n = 100, 100
	s, m := openBenchStore(b), openMinimal(b)
	ctx := context.Background()
	for v := uint64(1); v <= n; v++ {
		var evs []evento.Event
		for a := range aggs {
			evs = append(evs, benchEvent("bank/Account", fmt.Sprint("acc-", a), v))
		}
		if err := s.Write(ctx, evs); err != nil {
			b.Fatal(err)
		}
		if err := m.Append(ctx, evs); err != nil {
			b.Fatal(err)
		}
	}
	for _, db := range []*pdb.DB{s.db, m.DB()} {
		if err := db.Flush(); err != nil {
			b.Fatal(err)
		}
	}
	target := fmt.Sprint("acc-", aggs/2)
	buf := make([]evento.Event, 0, n)
	rawengine.Compare(b, n, rawengine.Sides{
		Ours: func(from, to int) {
			for i := from; i < to; i++ {
				out, err := s.ReadAggregate(ctx, "bank/Account", target, 0, 0)
				if err != nil || len(out) != n {
					b.Fatal(len(out), err)
				}
			}
		},
		Raw: func(from, to int) {
			for i := from; i < to; i++ {
				out, err := m.Load(ctx, "bank/Account", target, buf[:0])
				if err != nil || len(out) != n {
					b.Fatal(len(out), err)
				}
			}
		},
		Layout: func(from, to int) {
			prefix := aggregatePrefix(nil, "bank/Account", target)
			for i := from; i < to; i++ {
				it, err := s.db.NewIter(&pdb.IterOptions{LowerBound: prefix, UpperBound: prefixEnd(prefix)})
				if err != nil {
					b.Fatal(err)
				}
				out := buf[:0]
				for ok := it.First(); ok; ok = it.Next() {
					out = append(out, evento.Event{})
					if err := decodeEvent(it.Value(), &out[len(out)-1]); err != nil {
						b.Fatal(err)
					}
				}
				it.Close()
				if len(out) != n {
					b.Fatal(len(out))
				}
			}
		},
	})
}

// BenchmarkW5OrderedScan reads the whole log (20,000 events) in order and
// decodes it: the Store through Read pages of 1000, the minimal store
// through rawengine.ScanAll pages of 1000, the layout side with one
// iterator over the Store's log.
func BenchmarkW5OrderedScan(b *testing.B) {
	benchScan(b, evento.All())
}

// BenchmarkCatchUpByTypes is a subscription's catch-up: the OR of two type
// filters, read through the type indexes in pages of 1000, against the
// minimal store's ordered scan + decode of the same events.
func BenchmarkCatchUpByTypes(b *testing.B) {
	benchScan(b, evento.ByType("bank/Account").Or(evento.Filter{AggregateType: "bank/Transfer"}))
}

func benchScan(b *testing.B, q evento.Query) {
	const total = 20000
	s, m := openBenchStore(b), openMinimal(b)
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
		if err := m.Append(ctx, evs); err != nil {
			b.Fatal(err)
		}
	}
	for _, db := range []*pdb.DB{s.db, m.DB()} {
		if err := db.Flush(); err != nil {
			b.Fatal(err)
		}
	}
	rawengine.Compare(b, total, rawengine.Sides{
		Ours: func(from, to int) {
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
		},
		Raw: func(from, to int) {
			for i := from; i < to; i++ {
				n, err := rawengine.ScanAll(ctx, m, 1000, nil)
				if err != nil || n != total {
					b.Fatal(n, err)
				}
			}
		},
		Layout: func(from, to int) {
			for i := from; i < to; i++ {
				it, err := s.db.NewIter(&pdb.IterOptions{LowerBound: []byte{tagEvent}, UpperBound: []byte{tagEvent + 1}})
				if err != nil {
					b.Fatal(err)
				}
				n := 0
				page := make([]evento.Event, 1000)
				for ok := it.First(); ok; ok = it.Next() {
					if err := decodeEvent(it.Value(), &page[n%1000]); err != nil {
						b.Fatal(err)
					}
					n++
				}
				it.Close()
				if n != total {
					b.Fatal(n)
				}
			}
		},
	})
}

// BenchmarkFirstPageByType reads the first page (100) of one type from a
// store holding 10k unrelated events and from one holding rawengine.FlatBigSize(), in
// the same run, and reports big ÷ small time per read (flat_ratio; target
// ≤ 2) and the same for the first read of each store (first_ratio).
//
//	EVENTO_BENCH_1M=1 go test ./executor/pebble/ -run '^$' -bench FirstPageByType -benchtime=1000x
func BenchmarkFirstPageByType(b *testing.B) {
	ctx := context.Background()
	fill := func(unrelated int) *Store {
		s := openBenchStore(b)
		for i := 0; i < unrelated; i += 1000 {
			evs := make([]evento.Event, 0, 1000)
			for j := i; j < i+1000 && j < unrelated; j++ {
				evs = append(evs, benchEvent("other/Thing", fmt.Sprint("t-", j/100), uint64(j%100+1)))
			}
			if err := s.Write(ctx, evs); err != nil {
				b.Fatal(err)
			}
			if i == unrelated/2 { // the wanted events sit in the middle of the log
				if err := s.Write(ctx, batchOf(200, 0, "acc-1")); err != nil {
					b.Fatal(err)
				}
			}
		}
		if err := s.db.Flush(); err != nil {
			b.Fatal(err)
		}
		return s
	}
	small, big := fill(10_000), fill(rawengine.FlatBigSize())
	q := evento.ByType("bank/Account").First(100, "")
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
