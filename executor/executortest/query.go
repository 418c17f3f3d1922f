package executortest

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/evento-go/evento"
	"github.com/evento-go/evento/cursor"
	"github.com/evento-go/evento/executor/storekit"
	"github.com/oklog/ulid/v2"
)

// runQuery checks every query shape against a model: the committed events
// filtered with Query.Matches.
func runQuery(t *testing.T, h Harness) {
	parallel(t, h, "EmptyStore", testQueryEmptyStore)
	parallel(t, h, "Shapes", testQueryShapes)
	parallel(t, h, "PageLimits", testQueryPageLimits)
	parallel(t, h, "InvalidCursors", testQueryInvalidCursors)
}

// describeQuery renders a query for failure messages.
func describeQuery(q evento.Query) string {
	var fs []string
	for _, f := range q.Filters {
		var parts []string
		parts = append(parts, "type="+clip(f.AggregateType))
		if f.AggregateID != "" {
			parts = append(parts, "id="+clip(f.AggregateID))
		}
		if f.Name != "" {
			parts = append(parts, "name="+clip(f.Name))
		}
		fs = append(fs, "{"+strings.Join(parts, " ")+"}")
	}
	filters := "all"
	if len(fs) > 0 {
		filters = strings.Join(fs, " OR ")
	}
	a := q.Args
	var args []string
	if a.First != 0 {
		args = append(args, fmt.Sprintf("first=%d", a.First))
	}
	if a.After != "" {
		args = append(args, "after="+describeCursor(a.After))
	}
	if a.Last != 0 {
		args = append(args, fmt.Sprintf("last=%d", a.Last))
	}
	if a.Before != "" {
		args = append(args, "before="+describeCursor(a.Before))
	}
	if len(args) == 0 {
		args = append(args, "default args")
	}
	return fmt.Sprintf("Read(%s, routing=%s, %s)", filters, q.Routing, strings.Join(args, " "))
}

// expectPage computes the page a read of q.Args over model (the matching
// events, ascending) must return, with the PageInfo rule documented on
// evento.Query.
func expectPage(t *testing.T, model []evento.Event, a cursor.Args) (events []evento.Event, hasNext, hasPrev bool) {
	t.Helper()
	limit := a.Limit(0)
	pos := func(c string) evento.Position {
		_, p, err := storekit.DecodeCursor(c)
		if err != nil {
			t.Fatalf("suite bug: cursor %q does not decode: %v", c, err)
		}
		return p
	}
	if !a.IsBackward() {
		rest := model
		if a.After != "" {
			p := pos(a.After)
			rest = nil
			for i := range model {
				if model[i].Position.Compare(p) <= 0 {
					hasPrev = true
				} else {
					rest = append(rest, model[i])
				}
			}
		}
		return rest[:min(limit, len(rest))], len(rest) > limit, hasPrev
	}
	rest := model
	if a.Before != "" {
		p := pos(a.Before)
		rest = nil
		for i := range model {
			if model[i].Position.Compare(p) >= 0 {
				hasNext = true
			} else {
				rest = append(rest, model[i])
			}
		}
	}
	return rest[max(0, len(rest)-limit):], hasNext, len(rest) > limit
}

// checkRead reads q and compares the page with the model's. It returns the
// page and whether it matched.
func checkRead(t *testing.T, x evento.Executor, q evento.Query, model []evento.Event) (evento.Page, bool) {
	t.Helper()
	call := describeQuery(q)
	page, err := x.Read(t.Context(), q)
	if err != nil {
		t.Errorf("%s = %v, want success", call, err)
		return page, false
	}
	want, next, prev := expectPage(t, model, q.Args)
	ok := true
	if len(page.Events) != len(want) {
		t.Errorf("%s: got %d events %s, want %d %s", call, len(page.Events), positions(page.Events), len(want), positions(want))
		ok = false
	} else {
		for i := range want {
			if d := eventDiff(&want[i], &page.Events[i]); d != "" {
				t.Errorf("%s: event %d (%s) differs: %s", call, i, describe(&want[i]), d)
				ok = false
			}
		}
	}
	if page.PageInfo.HasNextPage != next {
		t.Errorf("%s: HasNextPage = %v, want %v (page %s of matching %s)", call, page.PageInfo.HasNextPage, next, positions(want), positions(model))
		ok = false
	}
	if page.PageInfo.HasPreviousPage != prev {
		t.Errorf("%s: HasPreviousPage = %v, want %v (page %s of matching %s)", call, page.PageInfo.HasPreviousPage, prev, positions(want), positions(model))
		ok = false
	}
	wantStart, wantEnd := "", ""
	if len(want) > 0 {
		wantStart, wantEnd = want[0].Cursor(), want[len(want)-1].Cursor()
	}
	if page.PageInfo.StartCursor != wantStart {
		t.Errorf("%s: StartCursor = %s, want %s (the first event's cursor)", call, describeCursor(page.PageInfo.StartCursor), describeCursor(wantStart))
		ok = false
	}
	if page.PageInfo.EndCursor != wantEnd {
		t.Errorf("%s: EndCursor = %s, want %s (the last event's cursor)", call, describeCursor(page.PageInfo.EndCursor), describeCursor(wantEnd))
		ok = false
	}
	return page, ok
}

// walk pages through q with page size n (0 for the default) forward or
// backward, checking every page against the model, and checks the walk
// yields exactly the model, ascending, with no duplicates.
func walk(t *testing.T, x evento.Executor, q evento.Query, model []evento.Event, n int, backward bool) {
	t.Helper()
	var got []evento.Event
	cur := ""
	dir := "forward"
	if backward {
		dir = "backward"
	}
	for i := 0; ; i++ {
		if i > len(model)+2 {
			t.Errorf("%s walk of %s with page size %d did not end after %d pages", dir, describeQuery(q), n, i)
			return
		}
		a := cursor.Forward(n, cur)
		if backward {
			a = cursor.Backward(n, cur)
		}
		page, ok := checkRead(t, x, q.Page(a), model)
		if !ok {
			t.Errorf("%s walk of %s with page size %d stopped at page %d", dir, describeQuery(q), n, i)
			return
		}
		if backward {
			got = append(slices.Clone(page.Events), got...)
			if !page.PageInfo.HasPreviousPage {
				break
			}
			cur = page.PageInfo.StartCursor
		} else {
			got = append(got, page.Events...)
			if !page.PageInfo.HasNextPage {
				break
			}
			cur = page.PageInfo.EndCursor
		}
	}
	seen := map[ulid.ULID]bool{}
	for i := range got {
		if seen[got[i].ID] {
			t.Errorf("%s walk of %s with page size %d returned %s twice", dir, describeQuery(q), n, describe(&got[i]))
		}
		seen[got[i].ID] = true
		if i > 0 && !got[i-1].Position.Less(got[i].Position) {
			t.Errorf("%s walk of %s with page size %d: %s comes after %s, want ascending positions", dir, describeQuery(q), n, describe(&got[i]), describe(&got[i-1]))
		}
	}
	checkEvents(t, fmt.Sprintf("%s walk of %s with page size %d, all pages", dir, describeQuery(q), n), got, model)
}

func model(all []evento.Event, q evento.Query) []evento.Event {
	var out []evento.Event
	for i := range all {
		if q.Matches(&all[i]) {
			out = append(out, all[i])
		}
	}
	return out
}

func testQueryEmptyStore(t *testing.T, h Harness) {
	x, _ := openStore(t, h)
	for _, q := range []evento.Query{
		evento.All(),
		evento.ByType("q/A"),
		evento.ByAggregate("q/A", "a"),
		evento.ByName("q/A", "N"),
		evento.ByType("q/A").Or(evento.Filter{AggregateType: "q/B", AggregateID: "b"}),
		evento.All().WithRouting(evento.NoRoutingKey()),
		evento.All().WithRouting(evento.RoutingKey("r")),
	} {
		for _, a := range []cursor.Args{{}, cursor.Forward(5, ""), cursor.Backward(5, ""), cursor.Forward(cursor.MaxPageSize, "")} {
			checkRead(t, x, q.Page(a), nil)
		}
	}
}

// queryDataset writes the events the query shapes run over: three types,
// aggregates sharing an id across types, repeated names, routing keys
// "", "r1" and "r2" (one per aggregate, fixed by its first event; later
// events give it or inherit it), in interleaved single and multi-aggregate
// batches.
func queryDataset(t *testing.T, x evento.Executor) []evento.Event {
	type agg struct{ typ, id string }
	aggs := []agg{{"q/A", "a1"}, {"q/A", "a2"}, {"q/A", "x"}, {"q/B", "b1"}, {"q/B", "x"}, {"q/C", "c1"}, {"q/C", "c2"}}
	names := []string{"Opened", "Deposited", "Withdrawn", "Deposited", "Renamed", "Deposited", "Withdrawn", "Closed"}
	rks := []string{"", "r1", "r2", "r1"}
	versions := make([]uint64, len(aggs))
	next := func(k int) evento.Event {
		versions[k]++
		v := versions[k]
		e := ev(aggs[k].typ, aggs[k].id, v, names[int(v-1)%len(names)])
		if v == 1 || v%2 == 0 {
			e.RoutingKey = rks[k%len(rks)]
		}
		e.Data = []byte(fmt.Sprintf("%s/%s#%d", aggs[k].typ, aggs[k].id, v))
		return e
	}
	var all []evento.Event
	for r := range 7 {
		// One id may not appear under two types in a batch: such an
		// aggregate starts the next batch.
		var batch []evento.Event
		typeOf := map[string]string{}
		for k := range aggs {
			if (k+r)%3 == 0 {
				continue
			}
			if t0, ok := typeOf[aggs[k].id]; ok && t0 != aggs[k].typ {
				all = append(all, write(t, x, batch...)...)
				batch, typeOf = nil, map[string]string{}
			}
			typeOf[aggs[k].id] = aggs[k].typ
			batch = append(batch, next(k))
		}
		all = append(all, write(t, x, batch...)...)
		all = append(all, write(t, x, next(r%len(aggs)))...)
	}
	return all
}

func testQueryShapes(t *testing.T, h Harness) {
	x, _ := openStore(t, h)
	all := queryDataset(t, x)
	for i := 1; i < len(all); i++ {
		if !all[i-1].Position.Less(all[i].Position) {
			t.Fatalf("positions do not increase with commit order: %s then %s", describe(&all[i-1]), describe(&all[i]))
		}
	}
	checkEvents(t, "Read(All) of the query dataset", readAll(t, x, evento.All()), all)
	if len(all) <= cursor.DefaultPageSize {
		t.Fatalf("suite bug: dataset of %d events is too small", len(all))
	}
	// Start cursors: every third event (matching a query or not), the first
	// and the last.
	var starts []string
	for i := 0; i < len(all); i += 3 {
		starts = append(starts, all[i].Cursor())
	}
	starts = append(starts, all[len(all)-1].Cursor())

	shapes := []struct {
		name string
		q    evento.Query
	}{
		{"All", evento.All()},
		{"Type", evento.ByType("q/A")},
		{"TypeNoMatch", evento.ByType("q/None")},
		{"TypeID", evento.ByAggregate("q/A", "a1")},
		{"TypeIDSharedAcrossTypes", evento.ByAggregate("q/B", "x")},
		{"TypeIDNoMatch", evento.ByAggregate("q/A", "b1")},
		{"TypeName", evento.ByName("q/A", "Deposited")},
		{"TypeNameNoMatch", evento.ByName("q/B", "Nope")},
		{"TypeIDName", evento.Query{Filters: []evento.Filter{{AggregateType: "q/A", AggregateID: "a2", Name: "Deposited"}}}},
		{"Or", evento.ByType("q/B").Or(evento.Filter{AggregateType: "q/A", AggregateID: "a2"}, evento.Filter{AggregateType: "q/C", Name: "Withdrawn"})},
		{"OrOverlapping", evento.ByType("q/A").Or(evento.Filter{AggregateType: "q/A", AggregateID: "a1"}, evento.Filter{AggregateType: "q/A", Name: "Deposited"}, evento.Filter{AggregateType: "q/A"})},
		{"OrOverlappingNames", evento.ByName("q/C", "Deposited").Or(evento.Filter{AggregateType: "q/C", AggregateID: "c1"}, evento.Filter{AggregateType: "q/B", AggregateID: "x", Name: "Deposited"}, evento.Filter{AggregateType: "q/B", Name: "Deposited"})},
		{"OrWithNoMatch", evento.ByAggregate("q/C", "c1").Or(evento.Filter{AggregateType: "q/None"})},
	}
	routings := []struct {
		name string
		r    evento.Routing
	}{
		{"AnyRouting", evento.AnyRouting()},
		{"NoRoutingKey", evento.NoRoutingKey()},
		{"RoutingKey", evento.RoutingKey("r1")},
		{"RoutingKeyNoMatch", evento.RoutingKey("r9")},
	}
	for _, s := range shapes {
		for _, r := range routings {
			q := s.q.WithRouting(r.r)
			m := model(all, q)
			t.Run(s.name+"/"+r.name, func(t *testing.T) {
				t.Parallel()
				sizes := []int{1, 3}
				if len(m) > 3 {
					sizes = append(sizes, len(m))
				}
				for _, n := range sizes {
					walk(t, x, q, m, n, false)
					walk(t, x, q, m, n, true)
				}
				walk(t, x, q, m, 0, false)
				walk(t, x, q, m, len(m)+7, false)
				for _, c := range starts {
					checkRead(t, x, q.First(2, c), m)
					checkRead(t, x, q.Last(2, c), m)
				}
				checkRead(t, x, q.Page(cursor.Args{After: starts[1]}), m)
				checkRead(t, x, q.Page(cursor.Args{Before: starts[len(starts)-2]}), m)
			})
		}
	}
}

func testQueryPageLimits(t *testing.T, h Harness) {
	x, _ := openStore(t, h)
	var batch []evento.Event
	for v := uint64(1); v <= 15; v++ {
		batch = append(batch, ev("l/A", "a", v, "N"))
	}
	all := write(t, x, batch...)
	batch = batch[:0]
	for v := uint64(1); v <= 15; v++ {
		batch = append(batch, ev("l/A", "b", v, "N"))
	}
	all = append(all, write(t, x, batch...)...)
	q := evento.All()
	// Default page size in both directions.
	p, _ := checkRead(t, x, q, all)
	if len(p.Events) != cursor.DefaultPageSize {
		t.Errorf("Read with default args returned %d events, want cursor.DefaultPageSize = %d", len(p.Events), cursor.DefaultPageSize)
	}
	checkRead(t, x, q.Page(cursor.Args{After: all[2].Cursor()}), all)
	checkRead(t, x, q.Page(cursor.Args{Before: all[len(all)-2].Cursor()}), all)
	checkRead(t, x, evento.ByType("l/A").Page(cursor.Args{Before: all[len(all)-1].Cursor()}), all)
	// The maximum is allowed, past it is an error.
	checkRead(t, x, q.First(cursor.MaxPageSize, ""), all)
	checkRead(t, x, q.Last(cursor.MaxPageSize, ""), all)
	for _, a := range []cursor.Args{
		cursor.Forward(cursor.MaxPageSize+1, ""),
		cursor.Forward(cursor.MaxPageSize+1, all[0].Cursor()),
		cursor.Backward(cursor.MaxPageSize+1, ""),
		cursor.Backward(cursor.MaxPageSize+1, all[5].Cursor()),
		cursor.Forward(1<<30, ""),
	} {
		for _, qq := range []evento.Query{q, evento.ByType("l/A"), evento.ByAggregate("l/A", "a")} {
			qq = qq.Page(a)
			_, err := x.Read(t.Context(), qq)
			wantErr(t, err, evento.ErrPageTooLarge, describeQuery(qq))
		}
	}
	for _, a := range []cursor.Args{
		{First: 1, Last: 1},
		{After: all[1].Cursor(), Before: all[3].Cursor()},
		{First: 2, Before: all[3].Cursor()},
		{First: -1},
		{Last: -1},
	} {
		qq := q.Page(a)
		_, err := x.Read(t.Context(), qq)
		wantErr(t, err, evento.ErrInvalidArgs, describeQuery(qq))
	}
	for _, qq := range []evento.Query{
		{Filters: []evento.Filter{{}}},
		{Filters: []evento.Filter{{AggregateID: "a"}}},
		evento.ByType("l/A").Or(evento.Filter{Name: "N"}),
		evento.ByType(strings.Repeat("t", evento.MaxIdentLen+1)),
		evento.ByAggregate("l/A", "bad\xff"),
		evento.All().WithRouting(evento.RoutingKey("bad\xff")),
	} {
		_, err := x.Read(t.Context(), qq)
		wantErr(t, err, evento.ErrInvalidQuery, describeQuery(qq))
	}
}

func testQueryInvalidCursors(t *testing.T, h Harness) {
	x, _ := openStore(t, h)
	all := write(t, x, ev("z/A", "a", 1, "N"), ev("z/A", "a", 2, "N"), ev("z/A", "b", 1, "N"))
	all = append(all, write(t, x, ev("z/A", "a", 3, "N"), ev("z/A", "b", 2, "N"))...)
	other, _ := openStore(t, h)
	var foreign []evento.Event
	for v := uint64(1); v <= 4; v++ {
		foreign = append(foreign, write(t, other, ev("z/A", "a", v, "N"), ev("z/A", "b", v, "N"))...)
	}
	good := all[2].Cursor()
	head := all[len(all)-1].Position
	mapCursor, err := cursor.Encode(map[string]int{"a": 1})
	noErr(t, err, "cursor.Encode")
	arrCursor, err := cursor.Encode([]any{"x", 1, 2})
	noErr(t, err, "cursor.Encode")
	id := all[1].ID
	v2Cursor, err := cursor.Encode([]any{uint8(2), id[:], head.Tx, head.Seq})
	noErr(t, err, "cursor.Encode")
	cases := []struct{ name, c string }{
		{"garbage", "garbage!!"},
		{"not base64", "%%%%"},
		{"truncated", good[:len(good)-3]},
		{"truncated by one", good[:len(good)-1]},
		{"trailing bytes", good + "AA"},
		{"base64 of a msgpack map", mapCursor},
		{"base64 of a msgpack array of another shape", arrCursor},
		{"evento cursor of another version", v2Cursor},
		{"zero position", storekit.EncodeCursor(all[0].ID, evento.Position{})},
		{"position past the head", storekit.EncodeCursor(all[0].ID, evento.Position{Tx: head.Tx, Seq: head.Seq + 1000})},
		{"huge position", storekit.EncodeCursor(all[0].ID, evento.Position{Tx: 1 << 62, Seq: 1 << 62})},
		{"existing position, another event's ULID", storekit.EncodeCursor(all[1].ID, all[2].Position)},
		{"existing position, a random ULID", storekit.EncodeCursor(ulid.Make(), all[3].Position)},
		{"cursor from another store (first event)", foreign[0].Cursor()},
		{"cursor from another store (third event)", foreign[2].Cursor()},
		{"cursor from another store (past this head)", foreign[len(foreign)-1].Cursor()},
	}
	for _, c := range cases {
		for _, q := range []evento.Query{
			evento.All().First(2, c.c),
			evento.All().Last(2, c.c),
			evento.All().Page(cursor.Args{After: c.c}),
			evento.ByType("z/A").First(2, c.c),
			evento.ByAggregate("z/A", "a").Last(2, c.c),
			evento.ByName("z/A", "N").WithRouting(evento.NoRoutingKey()).First(2, c.c),
		} {
			page, err := x.Read(t.Context(), q)
			if wantErr(t, err, evento.ErrInvalidCursor, fmt.Sprintf("%s with a %s cursor", describeQuery(q), c.name)) {
				continue
			}
			if err == nil {
				t.Errorf("  … and it returned %d events %s", len(page.Events), positions(page.Events))
			}
		}
	}
	// The same cursors are fine in the store that made them.
	checkRead(t, other, evento.All().First(2, foreign[2].Cursor()), foreign)
}
