package sqlite

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/evento-go/evento"
	"github.com/evento-go/evento/executor/internal/ids"
	"github.com/evento-go/evento/executor/internal/metacodec"
	"github.com/evento-go/evento/executor/storekit"
	"github.com/oklog/ulid/v2"
)

// blob returns s as a non-nil []byte, so it binds as a BLOB (an empty
// string binds as the empty blob, not NULL).
func blob(s string) []byte {
	if s == "" {
		return []byte{}
	}
	return []byte(s)
}

// micros and fromMicros store times as integer microseconds, NULL for the
// zero time.
func micros(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UnixMicro()
}

func fromMicros(v sql.NullInt64) time.Time {
	if !v.Valid {
		return time.Time{}
	}
	return time.UnixMicro(v.Int64).UTC()
}

const (
	sqlAggVersion = `SELECT version FROM events WHERE aggregate_type = ? AND aggregate_id = ? ORDER BY version DESC LIMIT 1`
	// sqlAggVersionRouting reads an existing aggregate's version and its
	// routing key, which its first event fixed: two seeks of the unique
	// (aggregate_type, aggregate_id, version) index.
	sqlAggVersionRouting = `SELECT version, (SELECT routing_key FROM events WHERE aggregate_type = ?1 AND aggregate_id = ?2 AND version = 1)
FROM events WHERE aggregate_type = ?1 AND aggregate_id = ?2 ORDER BY version DESC LIMIT 1`
	sqlLastEvent = `SELECT position, id FROM events ORDER BY position DESC LIMIT 1`
	// sqlWriteHead is what Write reads before it inserts, in one
	// statement: the log's last position and ULID (max of the rowid is a
	// seek of the b-tree's end, the ULID a rowid lookup) and the first span's version and first-event routing
	// key (seeks of the unique index, as sqlAggVersionRouting). Every
	// column is NULL when there is nothing to read.
	sqlWriteHead = `SELECT (SELECT max(position) FROM events),
(SELECT id FROM events WHERE position = (SELECT max(position) FROM events)),
(SELECT version FROM events WHERE aggregate_type = ?1 AND aggregate_id = ?2 ORDER BY version DESC LIMIT 1),
(SELECT routing_key FROM events WHERE aggregate_type = ?1 AND aggregate_id = ?2 AND version = 1)`
	eventCols = `position, id, aggregate_type, aggregate_id, version, name, routing_key, data, metadata, timestamp`
)

// Write appends events atomically. See evento.EventStore.
func (s *Store) Write(ctx context.Context, events []evento.Event) error {
	return s.write(ctx, events, false)
}

// write is Write, or Import when keep is set: then the events keep their
// IDs and timestamps.
func (s *Store) write(ctx context.Context, events []evento.Event, keep bool) error {
	if err := s.check(ctx); err != nil {
		return err
	}
	spans, err := storekit.ValidateBatch(events)
	if err == nil && keep {
		err = storekit.ValidateImport(events)
	}
	if err != nil {
		return fmt.Errorf("sqlite executor: write: %w", err)
	}
	for _, sp := range spans {
		if sp.Last > math.MaxInt64 {
			return fmt.Errorf("sqlite executor: write: %w", &evento.InvalidEventError{Index: -1, Reason: fmt.Sprintf("version %d of %s/%q is out of range", sp.Last, sp.Type, sp.ID)})
		}
	}
	// Encode outside the transaction to keep it short.
	meta := make([][]byte, len(events))
	for i := range events {
		if meta[i], err = storekit.EncodeMetadata(events[i].Metadata); err != nil {
			return fmt.Errorf("sqlite executor: write: %w", &evento.InvalidEventError{Index: i, Reason: err.Error()})
		}
	}
	err = s.writeTx(ctx, "write", func(w *writeConn) error {
		// Versions and routing keys are checked in the transaction that
		// writes, under SQLite's write lock: no other writer, in this
		// process or another, can commit in between. The first span's
		// check and the log's head are one statement.
		var (
			lastPos      sql.NullInt64
			lastRaw      []byte
			firstVersion sql.NullInt64
			firstKey     []byte
		)
		if err := w.queryRow(ctx, sqlWriteHead, []any{blob(spans[0].Type), blob(spans[0].ID)}, &lastPos, &lastRaw, &firstVersion, &firstKey); err != nil {
			return s.txErr("write: read head", err)
		}
		for i := range spans {
			sp := &spans[i]
			var (
				actual uint64
				stored string
			)
			switch {
			case i == 0:
				actual, stored = uint64(firstVersion.Int64), string(firstKey)
			case sp.Expected == 0:
				if actual, err = w.aggregateVersion(ctx, sp.Type, sp.ID); err != nil {
					return s.txErr("write: read version", err)
				}
			default:
				if actual, stored, err = w.aggregateVersionRouting(ctx, sp.Type, sp.ID); err != nil {
					return s.txErr("write: read version", err)
				}
			}
			if actual != sp.Expected {
				return conflict(*sp, actual)
			}
			if sp.Expected == 0 {
				continue // a new aggregate: its first event fixes the key
			}
			key, err := sp.Routing(stored)
			if err != nil {
				return fmt.Errorf("sqlite executor: write: %w", err)
			}
			if key != sp.RoutingKey {
				storekit.SetRouting(events, sp, key)
			}
		}
		// IDs must exceed every stored ID, including those written by
		// other processes with their own ULID sources. Positions continue
		// from the last stored one: the rowid SQLite would assign, given
		// explicitly so that one statement inserts many rows and no
		// LastInsertId is asked per row.
		var last ulid.ULID
		copy(last[:], lastRaw)
		pos := lastPos.Int64
		now := time.Now().UTC().Truncate(time.Microsecond)
		for i := range events {
			e := &events[i]
			if !keep { // Import keeps them
				e.ID, e.Timestamp = ids.Above(s.ulids.New(now), last), now
			}
			last = e.ID
			pos++
			e.Position = evento.Position{Seq: uint64(pos)}
		}
		for done := 0; done < len(events); {
			n := insertRows(len(events) - done)
			ins, err := w.stmt(ctx, insertSQL(n))
			if err != nil {
				return s.txErr("write: prepare", err)
			}
			args := w.args[:0]
			for i := done; i < done+n; i++ {
				e := &events[i]
				args = append(args, int64(e.Position.Seq), e.ID[:], blob(e.AggregateType), blob(e.AggregateID), int64(e.Version),
					blob(e.Name), blob(e.RoutingKey), e.Data, meta[i], e.Timestamp.UnixMicro())
			}
			_, err = ins.ExecContext(ctx, args...)
			clear(args)
			w.args = args[:0]
			if err != nil {
				if isUniqueViolation(err) {
					// Versions were checked above; report the span that
					// no longer continues from the stored version.
					for _, sp := range spans {
						actual, verr := w.aggregateVersion(ctx, sp.Type, sp.ID)
						if verr != nil {
							return s.txErr("write: read version", verr)
						}
						if actual != sp.Expected {
							return conflict(sp, actual)
						}
					}
				}
				return s.txErr("write: insert", err)
			}
			done += n
		}
		return nil
	})
	if err != nil {
		return err
	}
	s.notify.broadcast()
	return nil
}

// maxInsertRows is the most rows one INSERT statement writes (10 bound
// parameters each, far below SQLite's limit of 32,766).
const maxInsertRows = 64

// insertSQLs are the multi-row INSERT statements, by row count: one for
// each power of two up to maxInsertRows, so the write connection prepares
// at most seven of them and a batch of n events takes at most about
// log2(n) + n/64 statements.
var insertSQLs = func() map[int]string {
	m := map[int]string{}
	for n := 1; n <= maxInsertRows; n *= 2 {
		var b strings.Builder
		b.WriteString("INSERT INTO events (position, id, aggregate_type, aggregate_id, version, name, routing_key, data, metadata, timestamp) VALUES ")
		for i := range n {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString("(?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")
		}
		m[n] = b.String()
	}
	return m
}()

// insertRows is the row count of the next INSERT for remaining events: the
// largest power of two not above remaining and maxInsertRows.
func insertRows(remaining int) int {
	n := 1
	for n*2 <= remaining && n*2 <= maxInsertRows {
		n *= 2
	}
	return n
}

// insertSQL is the INSERT of n rows (n from insertRows).
func insertSQL(n int) string { return insertSQLs[n] }

// conflict is the error for a span that does not continue from the stored
// version.
func conflict(sp storekit.Span, actual uint64) error {
	return fmt.Errorf("sqlite executor: write: %w", &evento.VersionConflictError{
		AggregateType: sp.Type, AggregateID: sp.ID, Expected: sp.Expected, Actual: actual})
}

func (w *writeConn) aggregateVersion(ctx context.Context, typ, id string) (uint64, error) {
	var v int64
	err := w.queryRow(ctx, sqlAggVersion, []any{blob(typ), blob(id)}, &v)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	return uint64(v), err
}

// aggregateVersionRouting returns an aggregate's version and the routing key
// of its first event; 0 and "" if it has no events.
func (w *writeConn) aggregateVersionRouting(ctx context.Context, typ, id string) (uint64, string, error) {
	var v int64
	var rk []byte
	err := w.queryRow(ctx, sqlAggVersionRouting, []any{blob(typ), blob(id)}, &v, &rk)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, "", nil
	}
	return uint64(v), string(rk), err
}

// scanner reads event rows into evento.Events. Its scan destinations live
// in the scanner, so scanning a row allocates nothing for them; types,
// names and routing keys are shared, consecutive aggregate ids reused and
// payloads copied into shared chunks.
type scanner struct {
	pos, version, ts                 int64
	id, typ, agg, name, rk, data, md sql.RawBytes
	dest                             []any
	lastAgg                          string
	interned                         map[string]string // aggregate types, names and routing keys
	arena                            []byte            // the free end of the current payload chunk
}

// scanChunk is the size of the chunks payloads are copied into; a payload
// larger than a quarter of it gets its own allocation.
const scanChunk = 16 << 10

// intern returns b as a string, reusing an earlier equal string: a page
// holds few distinct types, names and routing keys.
func (sc *scanner) intern(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	if s, ok := sc.interned[string(b)]; ok {
		return s
	}
	s := string(b)
	if sc.interned == nil {
		sc.interned = make(map[string]string, 8)
	}
	if len(sc.interned) < 256 {
		sc.interned[s] = s
	}
	return s
}

// bytes returns a copy of b, nil for NULL (b nil) and an empty non-nil
// slice for an empty blob, as scanning into a []byte does. Copies share
// chunks, each capped at its length so that an append by the caller
// reallocates rather than writing over the next payload.
func (sc *scanner) bytes(b []byte) []byte {
	switch {
	case b == nil:
		return nil
	case len(b) == 0:
		return []byte{}
	case len(b) > scanChunk/4:
		return append([]byte(nil), b...)
	}
	if len(b) > cap(sc.arena) {
		sc.arena = make([]byte, 0, scanChunk)
	}
	out := append(sc.arena, b...)
	sc.arena = out[len(b):len(b):cap(out)]
	return out[:len(b):len(b)]
}

// scan reads the current row (columns eventCols) into e.
func (sc *scanner) scan(rows *sql.Rows, e *evento.Event) error {
	if sc.dest == nil {
		sc.dest = []any{&sc.pos, &sc.id, &sc.typ, &sc.agg, &sc.version, &sc.name, &sc.rk, &sc.data, &sc.md, &sc.ts}
	}
	if err := rows.Scan(sc.dest...); err != nil {
		return err
	}
	if len(sc.id) != len(e.ID) {
		return fmt.Errorf("event at position %d has a %d-byte id: %w", sc.pos, len(sc.id), evento.ErrDecode)
	}
	copy(e.ID[:], sc.id)
	e.AggregateType = sc.intern(sc.typ)
	// Consecutive rows often share the aggregate id.
	if string(sc.agg) != sc.lastAgg {
		sc.lastAgg = string(sc.agg)
	}
	e.AggregateID = sc.lastAgg
	e.Version = uint64(sc.version)
	e.Name = sc.intern(sc.name)
	e.RoutingKey = sc.intern(sc.rk)
	e.Data = sc.bytes(sc.data)
	m, err := metacodec.Decode(sc.md)
	if err != nil {
		return fmt.Errorf("event at position %d: %w", sc.pos, err)
	}
	e.Metadata = m
	e.Timestamp = time.UnixMicro(sc.ts).UTC()
	e.Position = evento.Position{Seq: uint64(sc.pos)}
	return nil
}

// readEvents reads every row of rows into events appended to out. On error
// it returns what it read so far with the error.
func readEvents(rows *sql.Rows, out []evento.Event) ([]evento.Event, error) {
	defer rows.Close()
	var sc scanner
	for rows.Next() {
		out = append(out, evento.Event{})
		if err := sc.scan(rows, &out[len(out)-1]); err != nil {
			return out, err
		}
	}
	return out, rows.Err()
}

// scratchPool holds scratch slices for reads of unknown length.
var scratchPool = sync.Pool{New: func() any { s := make([]evento.Event, 0, 128); return &s }}

// ReadAggregate returns the events of one aggregate with versions in
// (after, after+limit]. See evento.EventStore.
func (s *Store) ReadAggregate(ctx context.Context, aggregateType, id string, after uint64, limit int) ([]evento.Event, error) {
	if err := s.check(ctx); err != nil {
		return nil, err
	}
	if after > math.MaxInt64 {
		return []evento.Event{}, nil
	}
	var rows *sql.Rows
	var err error
	if limit > 0 {
		rows, err = s.query(ctx, `SELECT `+eventCols+` FROM events WHERE aggregate_type = ? AND aggregate_id = ? AND version > ? ORDER BY version LIMIT ?`,
			blob(aggregateType), blob(id), int64(after), limit)
	} else {
		rows, err = s.query(ctx, `SELECT `+eventCols+` FROM events WHERE aggregate_type = ? AND aggregate_id = ? AND version > ? ORDER BY version`,
			blob(aggregateType), blob(id), int64(after))
	}
	if err != nil {
		return nil, s.wrap("read aggregate", err)
	}
	// A small limit is preallocated; a large one (aggregate loads ask for
	// big chunks) must not make the caller pay for events the stream may
	// not have, so it takes the scratch path below.
	if limit > 0 && limit <= 64 {
		out, err := readEvents(rows, make([]evento.Event, 0, limit))
		if err != nil {
			return nil, s.wrap("read aggregate", err)
		}
		return out, nil
	}
	// Unknown or large length: scan into a pooled scratch slice and hand back an
	// exact-size copy, rather than growing the result by doubling.
	sp := scratchPool.Get().(*[]evento.Event)
	scratch, err := readEvents(rows, (*sp)[:0])
	var out []evento.Event
	if err == nil {
		out = make([]evento.Event, len(scratch))
		copy(out, scratch)
	}
	clear(scratch)
	if cap(scratch) <= 4096 {
		*sp = scratch[:0]
		scratchPool.Put(sp)
	}
	if err != nil {
		return nil, s.wrap("read aggregate", err)
	}
	return out, nil
}

// AggregateVersion returns an aggregate's current version, 0 if it has no
// events.
func (s *Store) AggregateVersion(ctx context.Context, aggregateType, id string) (uint64, error) {
	if err := s.check(ctx); err != nil {
		return 0, err
	}
	var v int64
	err := s.queryRow(ctx, sqlAggVersion, []any{blob(aggregateType), blob(id)}, &v)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	if err != nil {
		return 0, s.wrap("aggregate version", err)
	}
	return uint64(v), nil
}

// sqlAggregateIDs walks distinct aggregate ids with one index seek per id.
const sqlAggregateIDs = `WITH RECURSIVE ids(id, n) AS (
	SELECT (SELECT aggregate_id FROM events WHERE aggregate_type = ?1 AND aggregate_id > ?2 ORDER BY aggregate_id LIMIT 1), 1
	UNION ALL
	SELECT (SELECT aggregate_id FROM events WHERE aggregate_type = ?1 AND aggregate_id > ids.id ORDER BY aggregate_id LIMIT 1), n + 1
	FROM ids WHERE ids.id IS NOT NULL AND n < ?3
)
SELECT id FROM ids WHERE id IS NOT NULL`

// AggregateIDs returns up to limit aggregate ids of a type after the id
// after, in byte order.
func (s *Store) AggregateIDs(ctx context.Context, aggregateType, after string, limit int) ([]string, error) {
	if err := s.check(ctx); err != nil {
		return nil, err
	}
	if limit <= 0 {
		return []string{}, nil
	}
	rows, err := s.query(ctx, sqlAggregateIDs, blob(aggregateType), blob(after), limit)
	if err != nil {
		return nil, s.wrap("aggregate ids", err)
	}
	defer rows.Close()
	out := make([]string, 0, min(limit, 256))
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, s.wrap("aggregate ids", err)
		}
		out = append(out, id)
	}
	if err := rows.Err(); err != nil {
		return nil, s.wrap("aggregate ids", err)
	}
	return out, nil
}

// Head returns the position of the last committed event.
func (s *Store) Head(ctx context.Context) (evento.Position, error) {
	if err := s.check(ctx); err != nil {
		return evento.Position{}, err
	}
	var pos int64
	var id []byte
	err := s.queryRow(ctx, sqlLastEvent, nil, &pos, &id)
	if errors.Is(err, sql.ErrNoRows) {
		return evento.Position{}, nil
	}
	if err != nil {
		return evento.Position{}, s.wrap("head", err)
	}
	return evento.Position{Seq: uint64(pos)}, nil
}

// Read returns one page of the events matching q. See evento.Query for the
// exact PageInfo rules.
//
// A page is read in one WAL snapshot: its events come from one statement,
// whatever the number of filters (see pageSQL). The other statements of a
// read, the cursor check and the has-other-pages probe, read only rows
// that no later commit can add to or change: forward, positions at or
// before the cursor; backward, the probe reads at or after the cursor but
// the page itself lies wholly before it. (Positions grow with commit order,
// see Write, and events are never updated or deleted.) So a Read returns
// exactly what one snapshot shows: the snapshot of its page statement
// forward, of its probe backward.
func (s *Store) Read(ctx context.Context, q evento.Query) (evento.Page, error) {
	if err := s.check(ctx); err != nil {
		return evento.Page{}, err
	}
	if err := q.Validate(s.cfg.maxPage); err != nil {
		return evento.Page{}, fmt.Errorf("sqlite executor: read: %w", err)
	}
	limit := q.Args.Limit(s.cfg.defaultPage)
	backward := q.Args.IsBackward()
	cur := q.Args.After
	if backward {
		cur = q.Args.Before
	}
	var bound int64 // exclusive position bound; 0 = none
	if cur != "" {
		p, err := s.checkCursor(ctx, cur)
		if err != nil {
			return evento.Page{}, err
		}
		bound = p
	}
	plan := planQuery(&q)
	sqlText, args := plan.pageSQL(backward, bound, limit+1)
	rows, err := s.query(ctx, sqlText, args...)
	if err != nil {
		return evento.Page{}, s.wrap("read", err)
	}
	events, err := readEvents(rows, make([]evento.Event, 0, limit+1))
	if err != nil {
		return evento.Page{}, s.wrap("read", err)
	}
	hasOther := false
	if bound != 0 {
		// Forward: a match at or before the After position; backward: at
		// or after the Before position.
		for i := range plan.arms {
			sqlText, args := plan.arms[i].existsSQL(!backward, bound)
			var one int
			err := s.queryRow(ctx, sqlText, args, &one)
			if err == nil {
				hasOther = true
				break
			}
			if !errors.Is(err, sql.ErrNoRows) {
				return evento.Page{}, s.wrap("read", err)
			}
		}
	}
	return storekit.NewPage(events, limit, backward, hasOther), nil
}

// checkCursor decodes a cursor and checks that the event it names is stored
// at its position; it returns the position.
func (s *Store) checkCursor(ctx context.Context, c string) (int64, error) {
	id, pos, err := storekit.DecodeCursor(c)
	if err != nil {
		return 0, fmt.Errorf("sqlite executor: read: %w", err)
	}
	if pos.Tx != 0 || pos.Seq > math.MaxInt64 {
		return 0, fmt.Errorf("sqlite executor: read: cursor position %v is not a SQLite position: %w", pos, evento.ErrInvalidCursor)
	}
	var stored []byte
	err = s.queryRow(ctx, `SELECT id FROM events WHERE position = ?`, []any{int64(pos.Seq)}, &stored)
	if errors.Is(err, sql.ErrNoRows) || (err == nil && !bytes.Equal(stored, id[:])) {
		return 0, fmt.Errorf("sqlite executor: read: cursor names event %s at position %v, which this store does not hold: %w", id, pos, evento.ErrInvalidCursor)
	}
	if err != nil {
		return 0, s.wrap("read: cursor", err)
	}
	return int64(pos.Seq), nil
}

// arm is one OR'ed filter of a query, with the index that serves it.
type arm struct {
	index string // INDEXED BY name, "" for the rowid order
	conds []string
	args  []any
}

// plan is a query turned into SQL pieces.
type plan struct {
	arms []arm
}

// planQuery picks, for each filter, the index whose prefix it fixes so
// that rows come out in position order.
func planQuery(q *evento.Query) plan {
	rk, hasRK := q.Routing.Value()
	var p plan
	if len(q.Filters) == 0 {
		a := arm{}
		if hasRK {
			a.index = "events_rk_pos"
			a.conds = []string{"routing_key = ?"}
			a.args = []any{blob(rk)}
		}
		p.arms = []arm{a}
		return p
	}
	seen := map[evento.Filter]bool{}
	for _, f := range q.Filters {
		if seen[f] {
			continue
		}
		seen[f] = true
		var a arm
		switch {
		case f.AggregateID != "":
			a.index = "events_agg_pos"
			a.conds = []string{"aggregate_type = ?", "aggregate_id = ?"}
			a.args = []any{blob(f.AggregateType), blob(f.AggregateID)}
			if f.Name != "" {
				a.conds = append(a.conds, "name = ?")
				a.args = append(a.args, blob(f.Name))
			}
			if hasRK {
				a.conds = append(a.conds, "routing_key = ?")
				a.args = append(a.args, blob(rk))
			}
		case f.Name != "" && hasRK:
			a.index = "events_rk_name_pos"
			a.conds = []string{"routing_key = ?", "aggregate_type = ?", "name = ?"}
			a.args = []any{blob(rk), blob(f.AggregateType), blob(f.Name)}
		case f.Name != "":
			a.index = "events_name_pos"
			a.conds = []string{"aggregate_type = ?", "name = ?"}
			a.args = []any{blob(f.AggregateType), blob(f.Name)}
			if hasRK {
				a.conds = append(a.conds, "routing_key = ?")
				a.args = append(a.args, blob(rk))
			}
		case hasRK:
			a.index = "events_rk_type_pos"
			a.conds = []string{"routing_key = ?", "aggregate_type = ?"}
			a.args = []any{blob(rk), blob(f.AggregateType)}
		default:
			a.index = "events_type_pos"
			a.conds = []string{"aggregate_type = ?"}
			a.args = []any{blob(f.AggregateType)}
		}
		p.arms = append(p.arms, a)
	}
	return p
}

// armSQL is "SELECT <cols> FROM events INDEXED BY … WHERE … ORDER BY
// position <dir> LIMIT ?" for one arm, with a position bound (op "" for
// none).
func (a *arm) sql(b *strings.Builder, args []any, cols string, op string, bound int64, desc bool, limit int) []any {
	b.WriteString("SELECT ")
	b.WriteString(cols)
	b.WriteString(" FROM events")
	if a.index != "" {
		b.WriteString(" INDEXED BY ")
		b.WriteString(a.index)
	}
	args = append(args, a.args...)
	conds := a.conds
	if op != "" {
		conds = append(slices.Clip(conds), "position "+op+" ?")
		args = append(args, bound)
	}
	if len(conds) > 0 {
		b.WriteString(" WHERE ")
		b.WriteString(strings.Join(conds, " AND "))
	}
	if desc {
		b.WriteString(" ORDER BY position DESC LIMIT ?")
	} else {
		b.WriteString(" ORDER BY position LIMIT ?")
	}
	return append(args, limit)
}

// pageSQL is the one statement that reads up to limit matching events past
// bound (exclusive; 0 for none) in the read direction.
//
// One arm reads its index range in position order. Several arms (an OR of
// filters) are one statement too, so that every arm reads the same
// snapshot: each arm reads at most limit positions in order from its own
// index (a co-routine), the IN list collects and deduplicates them in an
// ordered ephemeral index, and the outer loop fetches rows by position in
// that order and stops at limit. Every step is O(page); no sort.
func (p *plan) pageSQL(backward bool, bound int64, limit int) (string, []any) {
	var b strings.Builder
	op := boundOp(backward, bound)
	if len(p.arms) == 1 {
		args := p.arms[0].sql(&b, nil, eventCols, op, bound, backward, limit)
		return b.String(), args
	}
	var args []any
	b.WriteString("SELECT " + eventCols + " FROM events WHERE position IN (")
	for i := range p.arms {
		if i > 0 {
			b.WriteString(" UNION ALL ")
		}
		b.WriteString("SELECT position FROM (")
		args = p.arms[i].sql(&b, args, "position", op, bound, backward, limit)
		b.WriteString(")")
	}
	if backward {
		b.WriteString(") ORDER BY position DESC LIMIT ?")
	} else {
		b.WriteString(") ORDER BY position LIMIT ?")
	}
	return b.String(), append(args, limit)
}

func boundOp(backward bool, bound int64) string {
	switch {
	case bound == 0:
		return ""
	case backward:
		return "<"
	}
	return ">"
}

// existsSQL returns one row if the arm matches an event at or before bound
// (atOrBefore) or at or after it.
func (a *arm) existsSQL(atOrBefore bool, bound int64) (string, []any) {
	op := ">="
	if atOrBefore {
		op = "<="
	}
	var b strings.Builder
	args := a.sql(&b, nil, "1", op, bound, atOrBefore, 1)
	return b.String(), args
}
