package executortest

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/evento-go/evento"
)

// RunEvents runs the event store part of the suite: writes and their
// validation, optimistic concurrency, atomic batches, aggregate reads, every
// query shape and its pagination, concurrent writers and readers, and the
// store's lifecycle (reopen, Close, cancelled contexts).
func RunEvents(t *testing.T, h Harness) {
	parallel(t, h, "WriteAssignsFields", testWriteAssignsFields)
	parallel(t, h, "RoundTripPayloads", testRoundTripPayloads)
	parallel(t, h, "RoundTripIdentifiers", testRoundTripIdentifiers)
	parallel(t, h, "InvalidIdentifiers", testInvalidIdentifiers)
	parallel(t, h, "InvalidBatch", testInvalidBatch)
	parallel(t, h, "VersionsContiguous", testVersionsContiguous)
	parallel(t, h, "VersionConflict", testVersionConflict)
	parallel(t, h, "MultiAggregateBatch", testMultiAggregateBatch)
	parallel(t, h, "LargeBatch", testLargeBatch)
	parallel(t, h, "ReadAggregate", testReadAggregate)
	parallel(t, h, "AggregateIDs", testAggregateIDs)
	parallel(t, h, "Head", testHead)
	parallel(t, h, "Query", runQuery)
	parallel(t, h, "Concurrency", runConcurrency)
	parallel(t, h, "Lifecycle", runLifecycle)
	parallel(t, h, "Stress", testStress)
	parallel(t, h, "Routing", runRouting)
	parallel(t, h, "Import", runImport)
}

func testWriteAssignsFields(t *testing.T, h Harness) {
	x, _ := openStore(t, h)
	if x.Capabilities().Name == "" {
		t.Errorf("Capabilities().Name is empty, want the backend's name (pebble, sqlite, postgres)")
	}
	var all []evento.Event
	all = append(all, write(t, x, ev("w/A", "a", 1, "Opened"))...)
	all = append(all, write(t, x, ev("w/A", "a", 2, "Renamed"), ev("w/B", "b", 1, "Opened"))...)
	all = append(all, write(t, x, ev("w/A", "b", 1, "Opened"))...)
	all = append(all, write(t, x, ev("w/B", "b", 2, "Closed"), ev("w/B", "b", 3, "Reopened"), ev("w/A", "a", 3, "Closed"))...)
	for i := 1; i < len(all); i++ {
		p, e := &all[i-1], &all[i]
		if !p.Position.Less(e.Position) {
			t.Errorf("positions must increase with commit order: %s committed before %s", describe(p), describe(e))
		}
		if p.ID.Compare(e.ID) >= 0 {
			t.Errorf("IDs must increase with commit order: %s committed before %s", describe(p), describe(e))
		}
	}
	checkEvents(t, "Read(All) after four writes", readAll(t, x, evento.All()), all)
	wantHead(t, x, all[len(all)-1].Position)
}

// fullMetadata uses every Metadata field, with awkward strings.
func fullMetadata() evento.Metadata {
	return evento.Metadata{
		CorrelationID: "corr-7f3a\x00✓",
		CausationID:   "cause-\"quoted\"",
		Actor:         "user:ünïcödé@example.com",
		Extra: map[string]string{
			"tenant":   "acme",
			"empty":    "",
			"ключ":     "значение",
			"nul\x00k": "v\x00",
			"":         "empty key",
		},
	}
}

func testRoundTripPayloads(t *testing.T, h Harness) {
	x, _ := openStore(t, h)
	mib := bigPayload(1 << 20)
	batch := []evento.Event{
		withData(ev("p/A", "unicode", 1, "Unicode"), []byte("héllo, 世界 — 😀 \x00 end")),
		withData(ev("p/A", "nil", 1, "Empty"), nil),
		withData(ev("p/A", "empty", 1, "Empty"), []byte{}),
		withData(ev("p/A", "mib", 1, "Big"), mib),
		withData(ev("p/A", "msgpack", 1, "Packed"), mustMarshal(t, map[string]any{"amount": 42, "note": "ok"})),
	}
	batch[0].Metadata = fullMetadata()
	batch[3].Metadata = evento.Metadata{Actor: "only-actor"}
	batch[4].Metadata = evento.Metadata{Extra: map[string]string{"k": "v"}}
	batch[4].RoutingKey = "tenant-1"
	got := write(t, x, batch...)
	for i := range got {
		if !bytes.Equal(got[i].Data, batch[i].Data) || !got[i].Metadata.Equal(batch[i].Metadata) {
			t.Errorf("Write changed the caller's Data or Metadata of batch element %d", i)
		}
	}
	checkEvents(t, "Read(All)", readAll(t, x, evento.All()), got)
	for i := range got {
		e := &got[i]
		agg, err := x.ReadAggregate(t.Context(), e.AggregateType, e.AggregateID, 0, 0)
		noErr(t, err, fmt.Sprintf("ReadAggregate(%s, %s)", clip(e.AggregateType), clip(e.AggregateID)))
		checkEvents(t, fmt.Sprintf("ReadAggregate(%s, %s)", clip(e.AggregateType), clip(e.AggregateID)), agg, got[i:i+1])
	}
	// A big payload in a second write, to an aggregate with history.
	more := write(t, x, withData(ev("p/A", "mib", 2, "Big"), mib[:len(mib)-1]))
	agg, err := x.ReadAggregate(t.Context(), "p/A", "mib", 0, 0)
	noErr(t, err, `ReadAggregate("p/A", "mib")`)
	checkEvents(t, `ReadAggregate("p/A", "mib") after a second 1 MiB event`, agg, []evento.Event{got[3], more[0]})
}

func mustMarshal(t *testing.T, v any) []byte {
	t.Helper()
	b, err := evento.Marshal(v)
	noErr(t, err, "evento.Marshal")
	return b
}

// awkwardIdents are identifiers every backend must store and match exactly:
// quotes, SQL and LIKE metacharacters, NUL bytes, unicode, prefixes of each
// other, and the maximum length.
func awkwardIdents() []string {
	return []string{
		"a",
		"a\x00",
		"a\x00b",
		"ab",
		"A",
		"\x00",
		"'; DROP TABLE events; --",
		`"double" 'single' ` + "`back`",
		"%", "_", "a%", "a_",
		`\`, `\\x00`,
		"日本語/ключ/😀",
		"tab\tnew\nline",
		strings.Repeat("x", evento.MaxIdentLen),
		strings.Repeat("é", evento.MaxIdentLen/2),
		strings.Repeat("z", evento.MaxIdentLen-1) + "\x00",
	}
}

func testRoundTripIdentifiers(t *testing.T, h Harness) {
	x, _ := openStore(t, h)
	idents := awkwardIdents()
	type probe struct {
		what string
		q    evento.Query
		idx  int // index into the committed batch
	}
	var batch []evento.Event
	var probes []probe
	for k, s := range idents {
		probes = append(probes, probe{fmt.Sprintf("aggregate type %s", clip(s)), evento.ByType(s), len(batch)})
		batch = append(batch, ev(s, fmt.Sprintf("id-%d", k), 1, "N"))
		probes = append(probes, probe{fmt.Sprintf("aggregate id %s", clip(s)), evento.ByAggregate("i/T", s), len(batch)})
		batch = append(batch, ev("i/T", s, 1, "N"))
		probes = append(probes, probe{fmt.Sprintf("event name %s", clip(s)), evento.ByName("i/N", s), len(batch)})
		batch = append(batch, ev("i/N", fmt.Sprintf("n-%d", k), 1, s))
		probes = append(probes, probe{fmt.Sprintf("routing key %s", clip(s)), evento.All().WithRouting(evento.RoutingKey(s)), len(batch)})
		batch = append(batch, withRK(ev("i/R", fmt.Sprintf("r-%d", k), 1, "N"), s))
	}
	got := write(t, x, batch...)
	checkEvents(t, "Read(All) of events with awkward identifiers", readAll(t, x, evento.All()), got)
	for _, p := range probes {
		checkEvents(t, fmt.Sprintf("Read of the one event with %s", p.what), readAll(t, x, p.q), got[p.idx:p.idx+1])
	}
	for i := range got {
		e := &got[i]
		agg, err := x.ReadAggregate(t.Context(), e.AggregateType, e.AggregateID, 0, 0)
		noErr(t, err, fmt.Sprintf("ReadAggregate(%s, %s)", clip(e.AggregateType), clip(e.AggregateID)))
		checkEvents(t, fmt.Sprintf("ReadAggregate(%s, %s)", clip(e.AggregateType), clip(e.AggregateID)), agg, got[i:i+1])
		wantVersion(t, x, e.AggregateType, e.AggregateID, 1)
	}
	// Aggregate ids of one type, in byte order, and nothing of the types
	// whose names extend it.
	want := slices.Clone(idents)
	slices.Sort(want)
	ids, err := x.AggregateIDs(t.Context(), "i/T", "", 1000)
	noErr(t, err, `AggregateIDs("i/T")`)
	if !slices.Equal(ids, want) {
		t.Errorf("AggregateIDs(\"i/T\", \"\", 1000) = %q, want %q (byte order)", ids, want)
	}
	for k, s := range idents {
		ids, err := x.AggregateIDs(t.Context(), s, "", 1000)
		noErr(t, err, fmt.Sprintf("AggregateIDs(%s)", clip(s)))
		if w := []string{fmt.Sprintf("id-%d", k)}; !slices.Equal(ids, w) {
			t.Errorf("AggregateIDs(%s, \"\", 1000) = %q, want %q", clip(s), ids, w)
		}
	}
}

func testInvalidIdentifiers(t *testing.T, h Harness) {
	x, _ := openStore(t, h)
	base := write(t, x, ev("v/A", "existing", 1, "Opened"))
	long := strings.Repeat("x", evento.MaxIdentLen+1)
	longUnicode := strings.Repeat("é", evento.MaxIdentLen/2) + "x"
	bad := "bad\xff\xfeutf8"
	cases := []struct {
		name string
		e    evento.Event
	}{
		{"type over MaxIdentLen", ev(long, "a", 1, "N")},
		{"type over MaxIdentLen in unicode", ev(longUnicode, "a", 1, "N")},
		{"id over MaxIdentLen", ev("v/A", long, 1, "N")},
		{"name over MaxIdentLen", ev("v/A", "a", 1, long)},
		{"routing key over MaxIdentLen", withRK(ev("v/A", "a", 1, "N"), long)},
		{"type invalid UTF-8", ev(bad, "a", 1, "N")},
		{"id invalid UTF-8", ev("v/A", bad, 1, "N")},
		{"name invalid UTF-8", ev("v/A", "a", 1, bad)},
		{"routing key invalid UTF-8", withRK(ev("v/A", "a", 1, "N"), bad)},
	}
	for _, c := range cases {
		// A valid event first, so that a partial write would show.
		batch := []evento.Event{ev("v/A", "fresh", 1, "Opened"), c.e}
		err := x.Write(t.Context(), batch)
		checkInvalidEvent(t, err, fmt.Sprintf("Write of a batch with %s", c.name))
		checkUnchanged(t, x, base, "after Write of a batch with "+c.name)
	}
}

// checkInvalidEvent checks that err is an *evento.InvalidEventError.
func checkInvalidEvent(t *testing.T, err error, call string) {
	t.Helper()
	if !wantErr(t, err, evento.ErrInvalidEvent, call) {
		return
	}
	var ie *evento.InvalidEventError
	if !errors.As(err, &ie) {
		t.Errorf("%s = %v (%T): wraps ErrInvalidEvent but errors.As finds no *evento.InvalidEventError", call, err, err)
	}
}

// checkUnchanged checks that the store holds exactly the events want.
func checkUnchanged(t *testing.T, x evento.Executor, want []evento.Event, when string) {
	t.Helper()
	checkEvents(t, "Read(All) "+when+" (nothing may be written)", readAll(t, x, evento.All()), want)
	if len(want) > 0 {
		wantHead(t, x, want[len(want)-1].Position)
	} else {
		wantHead(t, x, evento.Position{})
	}
}

func testInvalidBatch(t *testing.T, h Harness) {
	x, _ := openStore(t, h)
	base := write(t, x, ev("b/A", "a", 1, "Opened"), ev("b/A", "a", 2, "Renamed"))
	cases := []struct {
		name  string
		batch []evento.Event
	}{
		{"nil batch", nil},
		{"empty batch", []evento.Event{}},
		{"missing aggregate type", []evento.Event{ev("b/A", "new", 1, "N"), ev("", "x", 1, "N")}},
		{"missing aggregate id", []evento.Event{ev("b/A", "new", 1, "N"), ev("b/A", "", 1, "N")}},
		{"missing name", []evento.Event{ev("b/A", "new", 1, "N"), ev("b/A", "x", 1, "")}},
		{"version 0", []evento.Event{ev("b/A", "new", 1, "N"), ev("b/A", "x", 0, "N")}},
		{"version 0 on an existing aggregate", []evento.Event{ev("b/A", "a", 0, "N")}},
		{"non-contiguous versions in batch", []evento.Event{ev("b/A", "new", 1, "N"), ev("b/A", "new", 3, "N")}},
		{"repeated version in batch", []evento.Event{ev("b/A", "a", 3, "N"), ev("b/A", "a", 3, "N")}},
		{"decreasing versions in batch", []evento.Event{ev("b/A", "a", 4, "N"), ev("b/A", "a", 3, "N")}},
		{"one id under two types", []evento.Event{ev("b/A", "same", 1, "N"), ev("b/B", "same", 1, "N")}},
	}
	for _, c := range cases {
		err := x.Write(t.Context(), slices.Clone(c.batch))
		checkInvalidEvent(t, err, fmt.Sprintf("Write(%s) (%s)", describeBatch(c.batch), c.name))
		checkUnchanged(t, x, base, "after an invalid batch ("+c.name+")")
	}
	wantVersion(t, x, "b/A", "new", 0)
	wantVersion(t, x, "b/A", "a", 2)
}

func testVersionsContiguous(t *testing.T, h Harness) {
	x, _ := openStore(t, h)
	wantVersion(t, x, "c/A", "a", 0)
	var all []evento.Event
	for v := uint64(1); v <= 3; v++ {
		all = append(all, write(t, x, ev("c/A", "a", v, "Step"))...)
		wantVersion(t, x, "c/A", "a", v)
	}
	all = append(all, write(t, x, ev("c/A", "a", 4, "Step"), ev("c/A", "a", 5, "Step"), ev("c/A", "a", 6, "Step"))...)
	wantVersion(t, x, "c/A", "a", 6)
	// The same id under another type is another aggregate.
	all = append(all, write(t, x, ev("c/B", "a", 1, "Other"))...)
	wantVersion(t, x, "c/B", "a", 1)
	wantVersion(t, x, "c/A", "a", 6)
	agg, err := x.ReadAggregate(t.Context(), "c/A", "a", 0, 0)
	noErr(t, err, `ReadAggregate("c/A", "a", 0, 0)`)
	for i := range agg {
		if agg[i].Version != uint64(i+1) {
			t.Errorf("ReadAggregate(\"c/A\", \"a\") event %d has version %d, want %d", i, agg[i].Version, i+1)
		}
	}
	checkEvents(t, `ReadAggregate("c/A", "a", 0, 0)`, agg, all[:6])
	// A gap is a conflict, not a write.
	err = x.Write(t.Context(), []evento.Event{ev("c/A", "a", 8, "Gap")})
	checkConflict(t, err, "Write of version 8 over version 6", "c/A", "a", 7, 6)
	err = x.Write(t.Context(), []evento.Event{ev("c/A", "fresh", 2, "Gap")})
	checkConflict(t, err, "Write of version 2 to a new aggregate", "c/A", "fresh", 1, 0)
	checkUnchanged(t, x, all, "after writes with version gaps")
}

// checkConflict checks err is a *evento.VersionConflictError with the
// given fields.
func checkConflict(t *testing.T, err error, call, typ, id string, expected, actual uint64) {
	t.Helper()
	if !wantErr(t, err, evento.ErrVersionConflict, call) {
		return
	}
	var ce *evento.VersionConflictError
	if !errors.As(err, &ce) {
		t.Errorf("%s = %v (%T): wraps ErrVersionConflict but errors.As finds no *evento.VersionConflictError", call, err, err)
		return
	}
	if ce.AggregateType != typ || ce.AggregateID != id || ce.Expected != expected || ce.Actual != actual {
		t.Errorf("%s: VersionConflictError{Type: %s, ID: %s, Expected: %d, Actual: %d}, want {Type: %s, ID: %s, Expected: %d, Actual: %d}",
			call, clip(ce.AggregateType), clip(ce.AggregateID), ce.Expected, ce.Actual, clip(typ), clip(id), expected, actual)
	}
}

func testVersionConflict(t *testing.T, h Harness) {
	x, _ := openStore(t, h)
	base := write(t, x, ev("k/A", "a1", 1, "Opened"), ev("k/A", "a1", 2, "Renamed"), ev("k/B", "b1", 1, "Opened"))
	cases := []struct {
		name     string
		batch    []evento.Event
		typ, id  string
		exp, act uint64
	}{
		{"stale version", []evento.Event{ev("k/A", "a1", 2, "X")}, "k/A", "a1", 1, 2},
		{"version from the future", []evento.Event{ev("k/A", "a1", 4, "X")}, "k/A", "a1", 3, 2},
		{"stale first version", []evento.Event{ev("k/A", "a1", 1, "X"), ev("k/A", "a1", 2, "X"), ev("k/A", "a1", 3, "X")}, "k/A", "a1", 0, 2},
		{"new aggregate then stale one", []evento.Event{ev("k/C", "c1", 1, "X"), ev("k/A", "a1", 2, "X"), ev("k/A", "a1", 3, "X")}, "k/A", "a1", 1, 2},
		{"one stale among several current", []evento.Event{ev("k/B", "b1", 2, "X"), ev("k/A", "a1", 3, "X"), ev("k/C", "c1", 2, "X"), ev("k/D", "d1", 1, "X")}, "k/C", "c1", 1, 0},
		{"two stale: the first in batch order is reported", []evento.Event{ev("k/B", "b1", 2, "X"), ev("k/A", "a1", 1, "X"), ev("k/B", "b2", 3, "X")}, "k/A", "a1", 0, 2},
	}
	for _, c := range cases {
		err := x.Write(t.Context(), slices.Clone(c.batch))
		checkConflict(t, err, fmt.Sprintf("Write(%s) (%s)", describeBatch(c.batch), c.name), c.typ, c.id, c.exp, c.act)
		checkUnchanged(t, x, base, "after a conflicting batch ("+c.name+")")
	}
	wantVersion(t, x, "k/C", "c1", 0)
	wantVersion(t, x, "k/D", "d1", 0)
	wantVersion(t, x, "k/B", "b1", 1)
	// The store still accepts the right versions.
	write(t, x, ev("k/A", "a1", 3, "X"), ev("k/B", "b1", 2, "X"))
	wantVersion(t, x, "k/A", "a1", 3)
}

func testMultiAggregateBatch(t *testing.T, h Harness) {
	x, _ := openStore(t, h)
	pre := write(t, x, ev("m/A", "a", 1, "Opened"), ev("m/B", "b", 1, "Opened"))
	batch := []evento.Event{
		ev("m/A", "a", 2, "Moved"),
		ev("m/B", "b", 2, "Moved"),
		ev("m/A", "a", 3, "Moved"),
		withRK(ev("m/C", "c", 1, "Opened"), "rk"),
		ev("m/B", "b", 3, "Moved"),
		ev("m/C", "c", 2, "Moved"), // inherits "rk" from c's first event
	}
	got := write(t, x, batch...)
	if got[5].RoutingKey != "rk" {
		t.Errorf("Write set routing key %q on m/C v2, want %q inherited from the aggregate's first event in the batch", got[5].RoutingKey, "rk")
	}
	all := append(slices.Clone(pre), got...)
	checkEvents(t, "Read(All) after a batch over three aggregates", readAll(t, x, evento.All()), all)
	wantVersion(t, x, "m/A", "a", 3)
	wantVersion(t, x, "m/B", "b", 3)
	wantVersion(t, x, "m/C", "c", 2)
	for _, ref := range []evento.AggregateRef{{Type: "m/A", ID: "a"}, {Type: "m/B", ID: "b"}, {Type: "m/C", ID: "c"}} {
		var want []evento.Event
		for i := range all {
			if all[i].AggregateType == ref.Type && all[i].AggregateID == ref.ID {
				want = append(want, all[i])
			}
		}
		agg, err := x.ReadAggregate(t.Context(), ref.Type, ref.ID, 0, 0)
		noErr(t, err, fmt.Sprintf("ReadAggregate(%q, %q)", ref.Type, ref.ID))
		checkEvents(t, fmt.Sprintf("ReadAggregate(%q, %q) after a multi-aggregate batch", ref.Type, ref.ID), agg, want)
	}
	// One stale aggregate among several: nothing of the batch lands.
	stale := []evento.Event{
		ev("m/A", "a", 4, "X"),
		ev("m/D", "d", 1, "X"),
		ev("m/B", "b", 3, "X"), // b is at 3
		ev("m/C", "c", 3, "X"),
	}
	err := x.Write(t.Context(), stale)
	checkConflict(t, err, fmt.Sprintf("Write(%s)", describeBatch(stale)), "m/B", "b", 2, 3)
	checkUnchanged(t, x, all, "after a multi-aggregate batch with one stale aggregate")
	wantVersion(t, x, "m/A", "a", 3)
	wantVersion(t, x, "m/D", "d", 0)
	wantVersion(t, x, "m/C", "c", 2)
}

func testReadAggregate(t *testing.T, h Harness) {
	x, _ := openStore(t, h)
	var all []evento.Event
	for v := uint64(1); v <= 7; v += 2 {
		all = append(all, write(t, x,
			ev("r/A", "a", v, "E"), ev("r/A", "ab", v, "E"), ev("r/A", "a", v+1, "E"), ev("r/A", "ab", v+1, "E"),
			ev("r/B", "x", v, "E"), ev("r/AB", "x2", v, "E"), ev("r/B", "x", v+1, "E"), ev("r/AB", "x2", v+1, "E"))...)
	}
	var a []evento.Event
	for i := range all {
		if all[i].AggregateType == "r/A" && all[i].AggregateID == "a" {
			a = append(a, all[i])
		}
	}
	if len(a) != 8 {
		t.Fatalf("setup: %d events of r/A a, want 8", len(a))
	}
	cases := []struct {
		after uint64
		limit int
		want  []evento.Event
	}{
		{0, 0, a},
		{0, -1, a},
		{0, 100, a},
		{0, 3, a[:3]},
		{2, 0, a[2:]},
		{2, 3, a[2:5]},
		{5, 3, a[5:8]},
		{7, 1, a[7:]},
		{7, 5, a[7:]},
		{8, 0, nil},
		{20, 2, nil},
	}
	for _, c := range cases {
		call := fmt.Sprintf(`ReadAggregate("r/A", "a", after=%d, limit=%d)`, c.after, c.limit)
		got, err := x.ReadAggregate(t.Context(), "r/A", "a", c.after, c.limit)
		noErr(t, err, call)
		checkEvents(t, call, got, c.want)
	}
	got, err := x.ReadAggregate(t.Context(), "r/A", "missing", 0, 0)
	noErr(t, err, `ReadAggregate("r/A", "missing", 0, 0)`)
	if len(got) != 0 {
		t.Errorf(`ReadAggregate("r/A", "missing", 0, 0) = %d events, want none:%s`, len(got), describeEvents(got))
	}
	got, err = x.ReadAggregate(t.Context(), "r/Missing", "a", 0, 0)
	noErr(t, err, `ReadAggregate("r/Missing", "a", 0, 0)`)
	if len(got) != 0 {
		t.Errorf(`ReadAggregate("r/Missing", "a", 0, 0) = %d events, want none:%s`, len(got), describeEvents(got))
	}
	wantVersion(t, x, "r/A", "a", 8)
	wantVersion(t, x, "r/A", "ab", 8)
	wantVersion(t, x, "r/A", "missing", 0)
	wantVersion(t, x, "r/B", "a", 0)
}

func testAggregateIDs(t *testing.T, h Harness) {
	x, _ := openStore(t, h)
	ids := []string{"b", "a", "B", "_", "é", "Z", "a\x00", "aa", "ab", "a b", "~", "0", "10", "9", "日本", "a%"}
	var batch []evento.Event
	for _, id := range ids {
		batch = append(batch, ev("g/T", id, 1, "N"))
	}
	write(t, x, batch...)
	// More versions of some, and same ids under other types.
	write(t, x, ev("g/T", "a", 2, "N"), ev("g/T2", "zz", 1, "N"), ev("g/T", "b", 2, "N"), ev("g/", "only", 1, "N"), ev("g/TT", "q", 1, "N"))
	want := slices.Clone(ids)
	slices.Sort(want) // byte order
	got, err := x.AggregateIDs(t.Context(), "g/T", "", 100)
	noErr(t, err, `AggregateIDs("g/T", "", 100)`)
	if !slices.Equal(got, want) {
		t.Errorf("AggregateIDs(\"g/T\", \"\", 100) =\n\t%q\nwant (byte order, each id once, no other type's ids):\n\t%q", got, want)
	}
	for _, limit := range []int{1, 3, 5, len(want), len(want) + 1} {
		var walked []string
		after := ""
		for range len(want) + 2 {
			page, err := x.AggregateIDs(t.Context(), "g/T", after, limit)
			noErr(t, err, fmt.Sprintf("AggregateIDs(\"g/T\", %q, %d)", after, limit))
			if len(page) > limit {
				t.Errorf("AggregateIDs(\"g/T\", %q, %d) returned %d ids, over the limit", after, limit, len(page))
			}
			walked = append(walked, page...)
			if len(page) < limit {
				break
			}
			after = page[len(page)-1]
		}
		if !slices.Equal(walked, want) {
			t.Errorf("walking AggregateIDs(\"g/T\") with limit %d gave\n\t%q\nwant\n\t%q", limit, walked, want)
		}
	}
	// After an id that does not exist.
	got, err = x.AggregateIDs(t.Context(), "g/T", "a\x00\x00", 3)
	noErr(t, err, `AggregateIDs("g/T", "a\x00\x00", 3)`)
	if w := []string{"a b", "a%", "aa"}; !slices.Equal(got, w) {
		t.Errorf("AggregateIDs(\"g/T\", %q, 3) = %q, want %q", "a\x00\x00", got, w)
	}
	got, err = x.AggregateIDs(t.Context(), "g/T", "日本", 3)
	noErr(t, err, `AggregateIDs("g/T", "日本", 3)`)
	if len(got) != 0 {
		t.Errorf("AggregateIDs(\"g/T\", %q, 3) = %q, want none", "日本", got)
	}
	got, err = x.AggregateIDs(t.Context(), "g/Missing", "", 3)
	noErr(t, err, `AggregateIDs("g/Missing", "", 3)`)
	if len(got) != 0 {
		t.Errorf("AggregateIDs(\"g/Missing\", \"\", 3) = %q, want none", got)
	}
	got, err = x.AggregateIDs(t.Context(), "g/", "", 10)
	noErr(t, err, `AggregateIDs("g/", "", 10)`)
	if w := []string{"only"}; !slices.Equal(got, w) {
		t.Errorf("AggregateIDs(\"g/\", \"\", 10) = %q, want %q", got, w)
	}
}

func testHead(t *testing.T, h Harness) {
	x, _ := openStore(t, h)
	wantHead(t, x, evento.Position{})
	a := write(t, x, ev("h/A", "a", 1, "N"))
	wantHead(t, x, a[0].Position)
	b := write(t, x, ev("h/A", "a", 2, "N"), ev("h/A", "b", 1, "N"))
	wantHead(t, x, b[1].Position)
	if err := x.Write(t.Context(), []evento.Event{ev("h/A", "a", 1, "N")}); err == nil {
		t.Fatal("Write of a stale version succeeded")
	}
	wantHead(t, x, b[1].Position)
}

// testLargeBatch writes one batch of 10,000 events over ten aggregates, past
// the bind-parameter limits of SQL drivers that insert a batch in one
// statement.
func testLargeBatch(t *testing.T, h Harness) {
	const aggs, per = 10, 1000
	x, _ := openStore(t, h)
	pre := write(t, x, withRK(ev("big/A", "a0", 1, "Opened"), "rk"))
	var batch []evento.Event
	for v := uint64(1); v <= per; v++ {
		for a := range aggs {
			if a == 0 {
				// a0's key is fixed by its first event: half the batch
				// repeats it, half inherits it.
				e := withData(ev("big/A", "a0", v+1, "Tick"), bigPayload(64))
				if v%2 == 0 {
					e = withRK(e, "rk")
				}
				batch = append(batch, e)
				continue
			}
			batch = append(batch, withData(ev("big/A", fmt.Sprintf("a%d", a), v, "Tick"), bigPayload(64)))
		}
	}
	got := write(t, x, batch...)
	all := readAll(t, x, evento.All())
	checkEvents(t, "Read(All) after a batch of 10,000 events", all, append(pre, got...))
	for a := range aggs {
		want := uint64(per)
		if a == 0 {
			want++
		}
		wantVersion(t, x, "big/A", fmt.Sprintf("a%d", a), want)
	}
	agg, err := x.ReadAggregate(t.Context(), "big/A", "a0", 500, 0)
	noErr(t, err, `ReadAggregate("big/A", "a0", 500, 0)`)
	if len(agg) != per+1-500 || len(agg) > 0 && agg[0].Version != 501 {
		t.Errorf(`ReadAggregate("big/A", "a0", 500, 0) = %d events %s, want %d starting at version 501`, len(agg), positions(agg), per+1-500)
	}
	// A large batch with a conflict at its very end writes nothing.
	batch = batch[:0]
	for v := uint64(1); v <= 3000; v++ {
		batch = append(batch, ev("big/B", "b", v, "Tick"))
	}
	batch = append(batch, ev("big/A", "a1", 1, "Stale"))
	err = x.Write(t.Context(), batch)
	checkConflict(t, err, "Write of 3,000 new events then one stale", "big/A", "a1", 0, per)
	wantVersion(t, x, "big/B", "b", 0)
	wantHead(t, x, got[len(got)-1].Position)
}
