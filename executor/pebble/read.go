package pebble

import (
	"context"
	"errors"
	"fmt"
	"sort"

	pdb "github.com/cockroachdb/pebble/v2"
	"github.com/evento-go/evento"
	"github.com/evento-go/evento/executor/storekit"
)

// Head returns the position of the last committed event: its Write could
// have returned (with durable commits, it is synced).
func (s *Store) Head(ctx context.Context) (evento.Position, error) {
	if err := s.enter(); err != nil {
		return evento.Position{}, err
	}
	defer s.leave()
	if err := ctx.Err(); err != nil {
		return evento.Position{}, fmt.Errorf("pebble executor: head: %w", err)
	}
	return evento.Position{Seq: s.head.Load()}, nil
}

func checkAggregate(typ, id string) error {
	q := evento.Query{Filters: []evento.Filter{{AggregateType: typ, AggregateID: id}}}
	if err := q.Validate(0); err != nil {
		return fmt.Errorf("pebble executor: %w", err)
	}
	if id == "" {
		return fmt.Errorf("pebble executor: empty aggregate id: %w", evento.ErrInvalidQuery)
	}
	return nil
}

// AggregateVersion returns an aggregate's current version, 0 if it has no
// events. Like every read, it counts only events at or below Head.
func (s *Store) AggregateVersion(ctx context.Context, aggregateType, id string) (uint64, error) {
	if err := checkAggregate(aggregateType, id); err != nil {
		return 0, err
	}
	if err := s.enter(); err != nil {
		return 0, err
	}
	defer s.leave()
	if err := ctx.Err(); err != nil {
		return 0, fmt.Errorf("pebble executor: aggregate version: %w", err)
	}
	return s.durableVersion(aggregateType, id, s.head.Load())
}

// ReadAggregate returns the events of one aggregate with versions in
// (after, after+limit], in one range read over the aggregate's stream. It
// stops at the first event past Head: Pebble shows a batch to iterators
// before its sync ends, and positions grow with versions.
func (s *Store) ReadAggregate(ctx context.Context, aggregateType, id string, after uint64, limit int) ([]evento.Event, error) {
	if err := checkAggregate(aggregateType, id); err != nil {
		return nil, err
	}
	if err := s.enter(); err != nil {
		return nil, err
	}
	defer s.leave()
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("pebble executor: read aggregate: %w", err)
	}
	if after == ^uint64(0) {
		return []evento.Event{}, nil
	}
	// Everything at or below head is synced and visible to the iterator
	// opened next.
	head := s.head.Load()
	prefix := aggregatePrefix(make([]byte, 0, len(aggregateType)+len(id)+16), aggregateType, id)
	upper := prefixEnd(prefix)
	lower := appendU64(prefix, after+1)
	if limit > 0 && after+uint64(limit) > after {
		upper = appendU64(prefix[:len(prefix):len(prefix)], after+uint64(limit)+1)
	}
	it, err := s.db.NewIter(&pdb.IterOptions{LowerBound: lower, UpperBound: upper})
	if err != nil {
		return nil, fmt.Errorf("pebble executor: read aggregate %s/%q: %w", aggregateType, id, err)
	}
	defer s.closeIter(it)
	// Room for a typical stream, made on the first event: a large limit (or
	// none) must not make the caller pay for events the stream may not
	// have; append grows the rest.
	room := 64
	if limit > 0 {
		room = min(limit, room)
	}
	var out []evento.Event
	var d decoder
	n := 0
	for ok := it.First(); ok; ok = it.Next() {
		v, err := it.ValueAndErr()
		if err != nil {
			return nil, fmt.Errorf("pebble executor: read aggregate %s/%q: %w", aggregateType, id, err)
		}
		if p, ok := valuePos(v); ok && p > head {
			break
		}
		if out == nil {
			out = make([]evento.Event, 0, room)
		}
		out = append(out, evento.Event{})
		if err := d.decode(v, &out[len(out)-1]); err != nil {
			return nil, err
		}
		if n++; n&1023 == 0 {
			if err := ctx.Err(); err != nil {
				return nil, fmt.Errorf("pebble executor: read aggregate: %w", err)
			}
		}
	}
	if err := it.Error(); err != nil {
		return nil, fmt.Errorf("pebble executor: read aggregate %s/%q: %w", aggregateType, id, err)
	}
	if out == nil {
		out = []evento.Event{}
	}
	return out, nil
}

// AggregateIDs returns up to limit ids of the aggregates of one type after
// the id after, in byte order. limit <= 0 means cursor.MaxPageSize (or the
// store's maximum page size). An aggregate whose first event is past Head
// is not listed yet.
func (s *Store) AggregateIDs(ctx context.Context, aggregateType, after string, limit int) ([]string, error) {
	q := evento.ByType(aggregateType)
	if err := q.Validate(0); err != nil {
		return nil, fmt.Errorf("pebble executor: %w", err)
	}
	if err := s.enter(); err != nil {
		return nil, err
	}
	defer s.leave()
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("pebble executor: aggregate ids: %w", err)
	}
	if limit <= 0 {
		limit = s.cfg.maxPage
	}
	head := s.head.Load()
	prefix := appendString([]byte{tagAggregate}, aggregateType)
	lower := prefix
	if after != "" {
		lower = prefixEnd(appendString(append([]byte(nil), prefix...), after))
	}
	it, err := s.db.NewIter(&pdb.IterOptions{LowerBound: lower, UpperBound: prefixEnd(prefix)})
	if err != nil {
		return nil, fmt.Errorf("pebble executor: aggregate ids: %w", err)
	}
	defer s.closeIter(it)
	var out []string
	for ok := it.First(); ok && len(out) < limit; {
		rest := it.Key()[len(prefix):]
		id, tail, ok2 := decodeString(rest)
		if !ok2 || len(tail) != 8 {
			return nil, fmt.Errorf("pebble executor: bad aggregate key %x: %w", it.Key(), errCorrupt)
		}
		// The first key of an aggregate is its first event.
		v, err := it.ValueAndErr()
		if err != nil {
			return nil, fmt.Errorf("pebble executor: aggregate ids: %w", err)
		}
		p, okp := valuePos(v)
		if !okp {
			return nil, fmt.Errorf("pebble executor: bad aggregate record at %x: %w", it.Key(), errCorrupt)
		}
		if p <= head {
			out = append(out, id)
		}
		ok = it.SeekGE(prefixEnd(it.Key()[:len(it.Key())-8]))
	}
	if err := it.Error(); err != nil {
		return nil, fmt.Errorf("pebble executor: aggregate ids: %w", err)
	}
	if out == nil {
		out = []string{}
	}
	return out, nil
}

// Read returns one page of the events matching q in global order. Every
// query shape reads O(page) index entries: see the key layout in keys.go.
func (s *Store) Read(ctx context.Context, q evento.Query) (evento.Page, error) {
	if err := q.Validate(s.cfg.maxPage); err != nil {
		return evento.Page{}, fmt.Errorf("pebble executor: %w", err)
	}
	if err := s.enter(); err != nil {
		return evento.Page{}, err
	}
	defer s.leave()
	if err := ctx.Err(); err != nil {
		return evento.Page{}, fmt.Errorf("pebble executor: read: %w", err)
	}
	// Everything at or below head is committed and visible to iterators
	// created from now on; nothing above it is read, so iterators opened
	// at slightly different moments agree.
	head := s.head.Load()
	limit := q.Args.Limit(s.cfg.defaultPage)
	backward := q.Args.IsBackward()
	var (
		from     uint64 // first position to read, inclusive
		hasOther bool
		err      error
	)
	if backward {
		from = head
		if q.Args.Before != "" {
			p, err := s.cursorPos(q.Args.Before, head)
			if err != nil {
				return evento.Page{}, err
			}
			from = min(p-1, head)
			var probe []evento.Event
			if probe, err = s.scan(ctx, &q, p, head, false, 1); err != nil {
				return evento.Page{}, err
			}
			hasOther = len(probe) > 0
		}
	} else {
		from = 1
		if q.Args.After != "" {
			p, err := s.cursorPos(q.Args.After, head)
			if err != nil {
				return evento.Page{}, err
			}
			from = p + 1
			var probe []evento.Event
			if probe, err = s.scan(ctx, &q, p, head, true, 1); err != nil {
				return evento.Page{}, err
			}
			hasOther = len(probe) > 0
		}
	}
	var rows []evento.Event
	if (backward && from >= 1) || (!backward && from <= head) {
		rows, err = s.scan(ctx, &q, from, head, backward, limit+1)
		if err != nil {
			return evento.Page{}, err
		}
	}
	return storekit.NewPage(rows, limit, backward, hasOther), nil
}

// cursorPos decodes a cursor and checks that its position holds the event
// with its ULID.
func (s *Store) cursorPos(c string, head uint64) (uint64, error) {
	id, p, err := storekit.DecodeCursor(c)
	if err != nil {
		return 0, fmt.Errorf("pebble executor: %w", err)
	}
	if p.Tx != 0 || p.Seq == 0 || p.Seq > head {
		return 0, fmt.Errorf("pebble executor: cursor position %s is not in this store: %w", p, evento.ErrInvalidCursor)
	}
	v, closer, err := s.db.Get(eventKey(nil, p.Seq))
	if errors.Is(err, pdb.ErrNotFound) {
		return 0, fmt.Errorf("pebble executor: cursor position %s holds no event: %w", p, evento.ErrInvalidCursor)
	}
	if err != nil {
		return 0, fmt.Errorf("pebble executor: check cursor: %w", err)
	}
	got, ok := valueID(v)
	closer.Close()
	if !ok || got != id {
		return 0, fmt.Errorf("pebble executor: cursor %s at position %s does not match the event there: %w", id, p, evento.ErrInvalidCursor)
	}
	return p.Seq, nil
}

// scan reads up to n events matching q, starting at position from
// (inclusive) and moving forward up to head or backward down to 1.
func (s *Store) scan(ctx context.Context, q *evento.Query, from, head uint64, backward bool, n int) ([]evento.Event, error) {
	srcs, err := s.sources(q, from, head, backward)
	defer func() {
		var loads uint64
		for _, src := range srcs {
			loads += src.loads
			src.close(s)
		}
		s.entriesRead.Add(loads)
	}()
	if err != nil {
		return nil, err
	}
	out := make([]evento.Event, 0, min(n, 1024))
	// Index entries point at the log; one iterator over the log serves
	// all lookups (seeks in increasing order are cheap in Pebble).
	var logIt *pdb.Iterator
	defer func() {
		if logIt != nil {
			_ = s.closeIter(logIt)
		}
	}()
	var kb [9]byte
	var d decoder
	steps := 0
	for len(out) < n {
		// Pick the next position among the sources.
		var best *source
		for _, src := range srcs {
			if !src.valid {
				continue
			}
			if best == nil || (!backward && src.pos < best.pos) || (backward && src.pos > best.pos) {
				best = src
			}
		}
		if best == nil {
			break
		}
		pos := best.pos
		out = append(out, evento.Event{})
		e := &out[len(out)-1]
		if best.embedded {
			var v []byte
			if v, err = best.it.ValueAndErr(); err == nil {
				err = d.decode(v, e)
			}
		} else {
			if logIt == nil {
				if logIt, err = s.db.NewIter(&pdb.IterOptions{LowerBound: []byte{tagEvent}, UpperBound: []byte{tagEvent + 1}}); err != nil {
					return nil, fmt.Errorf("pebble executor: read: %w", err)
				}
			}
			err = s.logLookup(logIt, &d, eventKey(kb[:0], pos), e, backward)
		}
		if err != nil {
			return nil, err
		}
		if !q.Matches(e) {
			out = out[:len(out)-1]
		}
		// Advance every source at this position (dedupe).
		for _, src := range srcs {
			if src.valid && src.pos == pos {
				if err := src.advance(); err != nil {
					return nil, err
				}
			}
		}
		if steps++; steps&255 == 0 {
			if err := ctx.Err(); err != nil {
				return nil, fmt.Errorf("pebble executor: read: %w", err)
			}
		}
	}
	return out, nil
}

// logStepMax is how far ahead (or behind) of the log iterator's position
// a lookup steps with Next (Prev) rather than seeking: index entries of a
// dense query are often neighbours in the log.
const logStepMax = 4

// logLookup reads the event under key with the log iterator it, stepping
// when the key is a near neighbour of the current position.
func (s *Store) logLookup(it *pdb.Iterator, d *decoder, key []byte, e *evento.Event, backward bool) error {
	if it.Valid() {
		cur := it.Key()
		if len(cur) == 9 {
			want, at := decodeU64(key[1:]), decodeU64(cur[1:])
			if (!backward && want > at && want-at <= logStepMax) || (backward && want < at && at-want <= logStepMax) {
				for step := 0; step < logStepMax; step++ {
					var ok bool
					if backward {
						ok = it.Prev()
					} else {
						ok = it.Next()
					}
					if !ok {
						break
					}
					if c := string(it.Key()); c == string(key) {
						v, err := it.ValueAndErr()
						if err != nil {
							return fmt.Errorf("pebble executor: read: %w", err)
						}
						return d.decode(v, e)
					} else if (!backward && c > string(key)) || (backward && c < string(key)) {
						break
					}
				}
			}
		}
	}
	return lookupEvent(it, d, key, e)
}

// lookupEvent reads the event under key with the log iterator it.
func lookupEvent(it *pdb.Iterator, d *decoder, key []byte, e *evento.Event) error {
	if !it.SeekGE(key) || string(it.Key()) != string(key) {
		if err := it.Error(); err != nil {
			return fmt.Errorf("pebble executor: read: %w", err)
		}
		return fmt.Errorf("pebble executor: index points at missing event %x: %w", key, errCorrupt)
	}
	v, err := it.ValueAndErr()
	if err != nil {
		return fmt.Errorf("pebble executor: read: %w", err)
	}
	return d.decode(v, e)
}

// source iterates one index (or the log, or an aggregate's stream) in
// position order.
type source struct {
	it        *pdb.Iterator
	prefixLen int
	embedded  bool // the value is the event
	agg       bool // key ends with a version; the position is in the value
	backward  bool
	head      uint64
	valid     bool
	pos       uint64
	loads     uint64 // entries read, for the O(page) tests
}

func (src *source) close(s *Store) {
	if src.it != nil {
		_ = s.closeIter(src.it)
	}
}

// load reads the iterator's current entry.
func (src *source) load(ok bool) error {
	src.valid = false
	src.loads++
	if !ok {
		if err := src.it.Error(); err != nil {
			return fmt.Errorf("pebble executor: read: %w", err)
		}
		return nil
	}
	if src.agg {
		v, err := src.it.ValueAndErr()
		if err != nil {
			return fmt.Errorf("pebble executor: read: %w", err)
		}
		p, ok := valuePos(v)
		if !ok {
			return fmt.Errorf("pebble executor: bad aggregate record at %x: %w", src.it.Key(), errCorrupt)
		}
		if p > src.head && !src.backward {
			return nil
		}
		src.pos = p
	} else {
		k := src.it.Key()
		if len(k) != src.prefixLen+8 {
			return fmt.Errorf("pebble executor: bad index key %x: %w", k, errCorrupt)
		}
		src.pos = decodeU64(k[src.prefixLen:])
	}
	src.valid = true
	return nil
}

func (src *source) advance() error {
	if src.backward {
		return src.load(src.it.Prev())
	}
	return src.load(src.it.Next())
}

// sources opens the iterators a query reads, positioned at the first entry
// at or after from (forward) or at or before from (backward).
func (s *Store) sources(q *evento.Query, from, head uint64, backward bool) ([]*source, error) {
	rk, routed := q.Routing.Value()
	var prefixes [][]byte
	var aggs []evento.Filter
	embedded := false
	if len(q.Filters) == 0 {
		if routed {
			prefixes = append(prefixes, routingPrefix(nil, rk))
		} else {
			prefixes = append(prefixes, []byte{tagEvent})
			embedded = true
		}
	}
	for _, f := range q.Filters {
		switch {
		case f.AggregateID != "":
			aggs = append(aggs, f)
		case f.Name != "" && routed:
			prefixes = append(prefixes, routNamePrefix(nil, rk, f.AggregateType, f.Name))
		case f.Name != "":
			prefixes = append(prefixes, typeNamePrefix(nil, f.AggregateType, f.Name))
		case routed:
			prefixes = append(prefixes, routTypePrefix(nil, rk, f.AggregateType))
		default:
			prefixes = append(prefixes, typePrefix(nil, f.AggregateType))
		}
	}
	sort.Slice(prefixes, func(i, j int) bool { return string(prefixes[i]) < string(prefixes[j]) })
	var srcs []*source
	for i, p := range prefixes {
		if i > 0 && string(p) == string(prefixes[i-1]) {
			continue
		}
		src := &source{prefixLen: len(p), embedded: embedded, backward: backward, head: head}
		srcs = append(srcs, src)
		opts := &pdb.IterOptions{}
		if backward {
			opts.LowerBound = p
			opts.UpperBound = appendU64(append([]byte(nil), p...), from+1)
		} else {
			opts.LowerBound = appendU64(append([]byte(nil), p...), from)
			opts.UpperBound = appendU64(append([]byte(nil), p...), head+1)
		}
		it, err := s.db.NewIter(opts)
		if err != nil {
			return srcs, fmt.Errorf("pebble executor: read: %w", err)
		}
		src.it = it
		var ok bool
		if backward {
			ok = it.Last()
		} else {
			ok = it.First()
		}
		if err := src.load(ok); err != nil {
			return srcs, err
		}
	}
	seen := map[evento.AggregateRef]bool{}
	for _, f := range aggs {
		ref := evento.AggregateRef{Type: f.AggregateType, ID: f.AggregateID}
		if seen[ref] {
			continue
		}
		seen[ref] = true
		src, err := s.aggregateSource(ref, from, head, backward)
		if src != nil {
			srcs = append(srcs, src)
		}
		if err != nil {
			return srcs, err
		}
	}
	return srcs, nil
}

// aggregateSource opens an aggregate's stream positioned at the first event
// at or after from (forward) or at or before from (backward). Versions and
// positions increase together within an aggregate, so the start is found by
// a binary search over versions.
func (s *Store) aggregateSource(ref evento.AggregateRef, from, head uint64, backward bool) (*source, error) {
	prefix := aggregatePrefix(nil, ref.Type, ref.ID)
	it, err := s.db.NewIter(&pdb.IterOptions{LowerBound: prefix, UpperBound: prefixEnd(prefix)})
	if err != nil {
		return nil, fmt.Errorf("pebble executor: read: %w", err)
	}
	src := &source{it: it, prefixLen: len(prefix), embedded: true, agg: true, backward: backward, head: head}
	if !it.Last() {
		return src, src.load(false)
	}
	last := decodeU64(it.Key()[len(prefix):])
	var serr error
	key := make([]byte, 0, len(prefix)+8)
	posOf := func(ver uint64) uint64 {
		if !it.SeekGE(appendU64(append(key[:0], prefix...), ver)) {
			serr = errors.Join(serr, it.Error(), fmt.Errorf("pebble executor: aggregate %s/%q misses version %d: %w", ref.Type, ref.ID, ver, errCorrupt))
			return 0
		}
		v, err := it.ValueAndErr()
		if err != nil {
			serr = fmt.Errorf("pebble executor: read: %w", err)
			return 0
		}
		p, ok := valuePos(v)
		if !ok {
			serr = fmt.Errorf("pebble executor: bad aggregate record at %x: %w", it.Key(), errCorrupt)
		}
		return p
	}
	// i is the number of versions with position < from (forward) or
	// <= from (backward).
	i := sort.Search(int(last), func(i int) bool {
		p := posOf(uint64(i) + 1)
		if backward {
			return p > from
		}
		return p >= from
	})
	if serr != nil {
		return src, serr
	}
	if backward {
		if i == 0 {
			return src, src.load(false)
		}
		return src, src.load(it.SeekGE(appendU64(append(key[:0], prefix...), uint64(i))))
	}
	if uint64(i) >= last {
		return src, src.load(false)
	}
	return src, src.load(it.SeekGE(appendU64(append(key[:0], prefix...), uint64(i)+1)))
}
