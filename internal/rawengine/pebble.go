package rawengine

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"hash/maphash"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/cockroachdb/pebble/v2"
	"github.com/evento-go/evento"
	"github.com/evento-go/evento/executor/storekit"
	"github.com/oklog/ulid/v2"
)

// Pebble is the minimal event store on Pebble: per event one record in the
// log, 'e' + position (8 bytes big-endian) → the encoded event, and the
// unique (aggregate, version) as 'a' + type + id + version → position.
// Versions are checked against an in-memory copy of each aggregate's last
// version under a per-aggregate lock (striped), the cheapest correct check
// within one process. Each Append is one batch committed with pebble.Sync;
// concurrent Appends share WAL syncs through Pebble's own commit pipeline.
type Pebble struct {
	db     *pebble.DB
	seq    atomic.Uint64
	ulids  *storekit.ULIDSource
	seed   maphash.Seed
	shards [64]pebbleShard
	closed atomic.Bool
}

type pebbleShard struct {
	mu       sync.Mutex
	versions map[string]uint64
}

const (
	pebbleLog = 'e'
	pebbleAgg = 'a'
)

// OpenPebble opens (creating if needed) a Pebble store in dir. opts may be
// nil for Pebble's defaults (with logging off); a caller may set FS to
// vfs.NewMem() for a throw-away store.
func OpenPebble(dir string, opts *pebble.Options) (*Pebble, error) {
	if opts == nil {
		opts = &pebble.Options{}
	}
	if opts.Logger == nil {
		opts.Logger = quiet{}
	}
	db, err := pebble.Open(dir, opts)
	if err != nil {
		return nil, fmt.Errorf("rawengine: pebble open %q: %w", dir, err)
	}
	p := &Pebble{db: db, ulids: storekit.NewULIDSource(), seed: maphash.MakeSeed()}
	for i := range p.shards {
		p.shards[i].versions = map[string]uint64{}
	}
	// Resume the sequence after the last stored event.
	it, err := db.NewIter(&pebble.IterOptions{LowerBound: []byte{pebbleLog}, UpperBound: []byte{pebbleLog + 1}})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("rawengine: pebble: %w", err)
	}
	if it.Last() {
		p.seq.Store(binary.BigEndian.Uint64(it.Key()[1:]))
	}
	if err := it.Close(); err != nil {
		db.Close()
		return nil, fmt.Errorf("rawengine: pebble: %w", err)
	}
	return p, nil
}

// DB returns the underlying Pebble handle.
func (p *Pebble) DB() *pebble.DB { return p.db }

// Close closes the store.
func (p *Pebble) Close() error {
	if p.closed.Swap(true) {
		return nil
	}
	return p.db.Close()
}

// aggPrefix appends 'a' + len(type) + type + len(id) + id to b.
func aggPrefix(b []byte, typ, id string) []byte {
	b = append(b, pebbleAgg)
	b = binary.AppendUvarint(b, uint64(len(typ)))
	b = append(b, typ...)
	b = binary.AppendUvarint(b, uint64(len(id)))
	return append(b, id...)
}

func logKey(b []byte, seq uint64) []byte {
	return binary.BigEndian.AppendUint64(append(b, pebbleLog), seq)
}

// lastVersion reads an aggregate's last stored version (its shard held).
func (p *Pebble) lastVersion(prefix []byte) (uint64, error) {
	upper := append(bytes.Clone(prefix), 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff)
	it, err := p.db.NewIter(&pebble.IterOptions{LowerBound: prefix, UpperBound: upper})
	if err != nil {
		return 0, err
	}
	var v uint64
	if it.Last() && len(it.Key()) == len(prefix)+8 {
		v = binary.BigEndian.Uint64(it.Key()[len(prefix):])
	}
	return v, it.Close()
}

// Append writes events in one synced batch.
func (p *Pebble) Append(ctx context.Context, events []evento.Event) error {
	if p.closed.Load() {
		return ErrClosed
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if len(events) == 0 {
		return nil
	}
	// The aggregates' prefixes and shards, locked in shard order.
	type agg struct {
		prefix string
		shard  int
	}
	aggs := make([]agg, 0, 1)
	prefixes := make([]int, len(events)) // event -> index in aggs
	var buf []byte
	for i := range events {
		buf = aggPrefix(buf[:0], events[i].AggregateType, events[i].AggregateID)
		k := -1
		for j := range aggs {
			if aggs[j].prefix == string(buf) {
				k = j
				break
			}
		}
		if k < 0 {
			k = len(aggs)
			aggs = append(aggs, agg{prefix: string(buf), shard: int(maphash.Bytes(p.seed, buf) % uint64(len(p.shards)))})
		}
		prefixes[i] = k
	}
	shards := make([]int, 0, len(aggs))
	for _, a := range aggs {
		if !slices.Contains(shards, a.shard) {
			shards = append(shards, a.shard)
		}
	}
	slices.Sort(shards)
	for _, s := range shards {
		p.shards[s].mu.Lock()
	}
	defer func() {
		for _, s := range shards {
			p.shards[s].mu.Unlock()
		}
	}()
	// Check each aggregate continues its version.
	next := make([]uint64, len(aggs))
	for j, a := range aggs {
		v, ok := p.shards[a.shard].versions[a.prefix]
		if !ok {
			var err error
			if v, err = p.lastVersion([]byte(a.prefix)); err != nil {
				return fmt.Errorf("rawengine: pebble: %w", err)
			}
		}
		next[j] = v
	}
	for i := range events {
		e := &events[i]
		j := prefixes[i]
		if e.Version != next[j]+1 {
			return conflict(e.AggregateType, e.AggregateID, e.Version)
		}
		next[j] = e.Version
	}
	b := p.db.NewBatch()
	defer b.Close()
	ts := now()
	var key, val []byte
	for i := range events {
		e := &events[i]
		e.ID = p.ulids.New(ts)
		e.Timestamp = ts
		e.Position = evento.Position{Seq: p.seq.Add(1)}
		meta, err := storekit.EncodeMetadata(e.Metadata)
		if err != nil {
			return fmt.Errorf("rawengine: %w", err)
		}
		val = encodePebble(val[:0], e, meta)
		key = logKey(key[:0], e.Position.Seq)
		if err := b.Set(key, val, nil); err != nil {
			return err
		}
		key = binary.BigEndian.AppendUint64(append(key[:0], aggs[prefixes[i]].prefix...), e.Version)
		// The value of the aggregate key is the position.
		if err := b.Set(key, binary.BigEndian.AppendUint64(nil, e.Position.Seq), nil); err != nil {
			return err
		}
	}
	if err := b.Commit(pebble.Sync); err != nil {
		return fmt.Errorf("rawengine: pebble commit: %w", err)
	}
	for j, a := range aggs {
		p.shards[a.shard].versions[a.prefix] = next[j]
	}
	return nil
}

// Load reads an aggregate's (version → position) records and looks each
// event up in the log, with one iterator per keyspace and a seek per event.
func (p *Pebble) Load(ctx context.Context, typ, id string, dst []evento.Event) ([]evento.Event, error) {
	if p.closed.Load() {
		return dst, ErrClosed
	}
	if err := ctx.Err(); err != nil {
		return dst, err
	}
	prefix := aggPrefix(nil, typ, id)
	upper := append(bytes.Clone(prefix), 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff)
	idx, err := p.db.NewIter(&pebble.IterOptions{LowerBound: prefix, UpperBound: upper})
	if err != nil {
		return dst, fmt.Errorf("rawengine: pebble: %w", err)
	}
	defer idx.Close()
	logIt, err := p.db.NewIter(&pebble.IterOptions{LowerBound: []byte{pebbleLog}, UpperBound: []byte{pebbleLog + 1}})
	if err != nil {
		return dst, fmt.Errorf("rawengine: pebble: %w", err)
	}
	defer logIt.Close()
	var key []byte
	for ok := idx.First(); ok; ok = idx.Next() {
		if len(idx.Key()) != len(prefix)+8 || len(idx.Value()) != 8 {
			continue // a longer id sharing the prefix bytes
		}
		seq := binary.BigEndian.Uint64(idx.Value())
		key = logKey(key[:0], seq)
		if !logIt.SeekGE(key) || !bytes.Equal(logIt.Key(), key) {
			return dst, fmt.Errorf("rawengine: pebble: event at position %d missing", seq)
		}
		dst = append(dst, evento.Event{})
		if err := decodePebble(logIt.Value(), seq, &dst[len(dst)-1]); err != nil {
			return dst[:len(dst)-1], err
		}
	}
	if err := idx.Error(); err != nil {
		return dst, fmt.Errorf("rawengine: pebble: %w", err)
	}
	return dst, nil
}

// Scan reads the log from the position after after with one iterator.
func (p *Pebble) Scan(ctx context.Context, after uint64, limit int, dst []evento.Event) ([]evento.Event, error) {
	if p.closed.Load() {
		return dst, ErrClosed
	}
	if err := ctx.Err(); err != nil {
		return dst, err
	}
	it, err := p.db.NewIter(&pebble.IterOptions{LowerBound: logKey(nil, after+1), UpperBound: []byte{pebbleLog + 1}})
	if err != nil {
		return dst, fmt.Errorf("rawengine: pebble: %w", err)
	}
	defer it.Close()
	for ok := it.First(); ok && limit > 0; ok = it.Next() {
		dst = append(dst, evento.Event{})
		if err := decodePebble(it.Value(), binary.BigEndian.Uint64(it.Key()[1:]), &dst[len(dst)-1]); err != nil {
			return dst[:len(dst)-1], err
		}
		limit--
	}
	if err := it.Error(); err != nil {
		return dst, fmt.Errorf("rawengine: pebble: %w", err)
	}
	return dst, nil
}

// encodePebble encodes an event: ID (16), timestamp µs (8), version (8),
// then type, id, name, routing key and metadata, each length-prefixed
// (uvarint), then data to the end.
func encodePebble(b []byte, e *evento.Event, meta []byte) []byte {
	b = append(b, e.ID[:]...)
	b = binary.BigEndian.AppendUint64(b, uint64(e.Timestamp.UnixMicro()))
	b = binary.BigEndian.AppendUint64(b, e.Version)
	for _, s := range [...]string{e.AggregateType, e.AggregateID, e.Name, e.RoutingKey} {
		b = binary.AppendUvarint(b, uint64(len(s)))
		b = append(b, s...)
	}
	b = binary.AppendUvarint(b, uint64(len(meta)))
	b = append(b, meta...)
	return append(b, e.Data...)
}

func decodePebble(b []byte, seq uint64, e *evento.Event) error {
	bad := fmt.Errorf("rawengine: pebble: corrupt event at position %d", seq)
	if len(b) < 32 {
		return bad
	}
	e.ID = ulid.ULID(b[:16])
	e.Timestamp = microTime(int64(binary.BigEndian.Uint64(b[16:])))
	e.Version = binary.BigEndian.Uint64(b[24:])
	e.Position = evento.Position{Seq: seq}
	b = b[32:]
	var field [5][]byte
	for i := range field {
		n, k := binary.Uvarint(b)
		if k <= 0 || uint64(len(b)-k) < n {
			return bad
		}
		field[i], b = b[k:k+int(n)], b[k+int(n):]
	}
	e.AggregateType, e.AggregateID, e.Name, e.RoutingKey = string(field[0]), string(field[1]), string(field[2]), string(field[3])
	m, err := storekit.DecodeMetadata(field[4])
	if err != nil {
		return err
	}
	e.Metadata = m
	e.Data = bytes.Clone(b)
	return nil
}

// quiet is a pebble.Logger that drops Pebble's informational logging.
type quiet struct{}

func (quiet) Infof(string, ...any)  {}
func (quiet) Errorf(string, ...any) {}
func (quiet) Fatalf(format string, args ...any) {
	panic(fmt.Sprintf("rawengine: pebble: "+format, args...))
}
