package executortest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/evento-go/evento"
	"github.com/oklog/ulid/v2"
)

// runImport checks evento.Importer, which every backend implements: events
// written with the IDs and timestamps they carry (the import half of a
// migration between stores), under the same version and routing-key checks
// as Write, in the global order after every stored event.
func runImport(t *testing.T, h Harness) {
	parallel(t, h, "KeepsIDsAndTimestamps", testImportKeeps)
	parallel(t, h, "InterleavedWithWrite", testImportInterleaved)
	parallel(t, h, "VersionConflict", testImportConflict)
	parallel(t, h, "Routing", testImportRouting)
	parallel(t, h, "Invalid", testImportInvalid)
}

// importer returns x's Importer, failing the test if x has none.
func importer(t *testing.T, x evento.Executor) evento.Importer {
	t.Helper()
	imp, ok := x.(evento.Importer)
	if !ok {
		t.Fatalf("%T does not implement evento.Importer; every backend must", x)
	}
	return imp
}

// imported returns e with a fixed ID and timestamp, as an export carries
// them.
func imported(e evento.Event, id ulid.ULID, ts time.Time) evento.Event {
	e.ID, e.Timestamp = id, ts
	return e
}

// testID returns a ULID with the given millisecond time and a tail.
func testID(t *testing.T, ms uint64, tail byte) ulid.ULID {
	t.Helper()
	var id ulid.ULID
	if err := id.SetTime(ms); err != nil {
		t.Fatal(err)
	}
	id[15] = tail
	return id
}

// importOK imports a copy of events, fails the test if Import fails, checks
// that IDs and timestamps were kept and positions increase, and returns the
// committed events.
func importOK(t *testing.T, x evento.Executor, events ...evento.Event) []evento.Event {
	t.Helper()
	batch := slices.Clone(events)
	if err := importer(t, x).Import(t.Context(), batch); err != nil {
		t.Fatalf("Import(%s) = %v, want success", describeBatch(batch), err)
	}
	for i := range batch {
		if batch[i].ID != events[i].ID || !batch[i].Timestamp.Equal(events[i].Timestamp) {
			t.Errorf("Import changed event %d's ID/timestamp to %s %s, want %s %s (kept)", i,
				batch[i].ID, batch[i].Timestamp.Format(time.RFC3339Nano), events[i].ID, events[i].Timestamp.Format(time.RFC3339Nano))
		}
		if i > 0 && !batch[i-1].Position.Less(batch[i].Position) {
			t.Errorf("Import: positions %s then %s do not increase in batch order", batch[i-1].Position, batch[i].Position)
		}
	}
	return batch
}

func testImportKeeps(t *testing.T, h Harness) {
	x, open := openStore(t, h)
	old := time.Date(2001, 2, 3, 4, 5, 6, 789012000, time.UTC)
	far := time.Date(9999, 12, 31, 23, 59, 59, 999999000, time.UTC)
	meta := evento.Metadata{CorrelationID: "c-1", CausationID: "z-1", Actor: "importer", Extra: map[string]string{"k": "v"}}
	batch := []evento.Event{
		imported(withData(ev("imp/A", "a", 1, "Opened"), []byte{0x81, 0xa1, 'x', 0x01}), testID(t, 1000, 3), old),
		imported(withRK(ev("imp/B", "b", 1, "Opened"), "eu"), testID(t, 5000, 1), old.Add(time.Hour)),
		// IDs need not increase: an export of a PostgreSQL store, ordered
		// by position, may carry a smaller ID after a larger one.
		imported(ev("imp/A", "a", 2, "Renamed"), testID(t, 900, 9), old.Add(-time.Hour)),
		imported(withData(ev("imp/B", "b", 2, "Moved"), bigPayload(70_000)), testID(t, 6000, 2), far),
	}
	batch[0].Metadata = meta
	got := importOK(t, x, batch...)
	if got[3].RoutingKey != "eu" {
		t.Errorf("Import of imp/B v2 with no routing key set RoutingKey %q, want \"eu\" (inherited)", got[3].RoutingKey)
	}
	// Sub-microsecond and non-UTC timestamps are stored as Write's are.
	local := time.FixedZone("X", 3600)
	odd := imported(ev("imp/C", "c", 1, "Opened"), testID(t, 7000, 1), time.Date(2020, 1, 1, 12, 0, 0, 123456789, local))
	oddBatch := []evento.Event{odd}
	noErr(t, importer(t, x).Import(t.Context(), oddBatch), "Import(timestamp with nanoseconds in +01:00)")
	if want := time.Date(2020, 1, 1, 11, 0, 0, 123456000, time.UTC); !oddBatch[0].Timestamp.Equal(want) || oddBatch[0].Timestamp.Location() != time.UTC {
		t.Errorf("Import set Timestamp %s, want %s (UTC, truncated to microseconds)", oddBatch[0].Timestamp.Format(time.RFC3339Nano), want.Format(time.RFC3339Nano))
	}
	want := append(got, oddBatch...)
	checkEvents(t, "Read(All) after Import", readAll(t, x, evento.All()), want)
	agg, err := x.ReadAggregate(t.Context(), "imp/B", "b", 0, 0)
	noErr(t, err, "ReadAggregate(imp/B, b)")
	checkEvents(t, "ReadAggregate(imp/B, b) after Import", agg, []evento.Event{want[1], want[3]})
	checkEvents(t, "Read(ByName imp/A Renamed) after Import", readAll(t, x, evento.ByName("imp/A", "Renamed")), want[2:3])
	wantHead(t, x, want[len(want)-1].Position)
	// A later Write continues the aggregates and gets an ID of its own.
	w := write(t, x, ev("imp/A", "a", 3, "Closed"))
	for i := range want {
		if want[i].ID == w[0].ID {
			t.Errorf("Write after Import assigned ID %s, which imported event %d has", w[0].ID, i)
		}
	}
	want = append(want, w...)
	// Everything survives a reopen.
	noErr(t, x.Close(), "Close")
	x = reopen(t, open)
	checkEvents(t, "Read(All) after Import and reopen", readAll(t, x, evento.All()), want)
}

func testImportInterleaved(t *testing.T, h Harness) {
	x, _ := openStore(t, h)
	var want []evento.Event
	want = append(want, write(t, x, ev("il/A", "a", 1, "Opened"))...)
	want = append(want, importOK(t, x, imported(ev("il/A", "a", 2, "Moved"), testID(t, 10, 1), time.Unix(10, 0).UTC()))...)
	want = append(want, write(t, x, ev("il/A", "a", 3, "Moved"))...)
	want = append(want, importOK(t, x, imported(ev("il/B", "b", 1, "Opened"), testID(t, 20, 1), time.Unix(20, 0).UTC()),
		imported(ev("il/A", "a", 4, "Moved"), testID(t, 30, 1), time.Unix(30, 0).UTC()))...)
	for i := 1; i < len(want); i++ {
		if !want[i-1].Position.Less(want[i].Position) {
			t.Errorf("positions %s then %s: Write and Import must take positions in call order", want[i-1].Position, want[i].Position)
		}
	}
	checkEvents(t, "Read(All) after Write, Import, Write, Import", readAll(t, x, evento.All()), want)
	wantVersion(t, x, "il/A", "a", 4)
}

func testImportConflict(t *testing.T, h Harness) {
	x, _ := openStore(t, h)
	base := write(t, x, ev("ic/A", "a", 1, "Opened"), ev("ic/A", "a", 2, "Renamed"))
	at := time.Unix(1_000_000, 0).UTC()
	cases := []struct {
		name     string
		batch    []evento.Event
		typ, id  string
		exp, act uint64
	}{
		{"existing aggregate from version 1 (an import into a non-empty store)",
			[]evento.Event{imported(ev("ic/A", "a", 1, "Opened"), testID(t, 1, 1), at)}, "ic/A", "a", 0, 2},
		{"gap", []evento.Event{imported(ev("ic/A", "a", 4, "X"), testID(t, 1, 2), at)}, "ic/A", "a", 3, 2},
		{"new aggregate then a stale one",
			[]evento.Event{imported(ev("ic/B", "b", 1, "Opened"), testID(t, 1, 3), at), imported(ev("ic/A", "a", 2, "X"), testID(t, 1, 4), at)}, "ic/A", "a", 1, 2},
	}
	for _, c := range cases {
		err := importer(t, x).Import(t.Context(), slices.Clone(c.batch))
		checkConflict(t, err, fmt.Sprintf("Import(%s) (%s)", describeBatch(c.batch), c.name), c.typ, c.id, c.exp, c.act)
		checkUnchanged(t, x, base, "after a conflicting Import ("+c.name+")")
	}
	wantVersion(t, x, "ic/B", "b", 0)
	importOK(t, x, imported(ev("ic/A", "a", 3, "X"), testID(t, 1, 5), at))
	wantVersion(t, x, "ic/A", "a", 3)
}

func testImportRouting(t *testing.T, h Harness) {
	x, _ := openStore(t, h)
	at := time.Unix(2_000_000, 0).UTC()
	base := write(t, x, withRK(ev("ir/A", "a", 1, "Opened"), "k1"))
	err := importer(t, x).Import(t.Context(), []evento.Event{imported(withRK(ev("ir/A", "a", 2, "Moved"), "k2"), testID(t, 1, 1), at)})
	wantRoutingError(t, err, "Import(ir/A v2 with key k2 onto an aggregate fixed to k1)", "ir/A", "a", 2, "k2", "k1")
	checkUnchanged(t, x, base, "after an Import refused for its routing key")
	got := importOK(t, x, imported(ev("ir/A", "a", 2, "Moved"), testID(t, 1, 2), at))
	if got[0].RoutingKey != "k1" {
		t.Errorf("Import of ir/A v2 with no key set RoutingKey %q, want \"k1\" (inherited)", got[0].RoutingKey)
	}
	checkEvents(t, "Read(All, key k1)", readAll(t, x, evento.All().WithRouting(evento.RoutingKey("k1"))), append(base, got...))
}

func testImportInvalid(t *testing.T, h Harness) {
	x, _ := openStore(t, h)
	base := write(t, x, ev("ii/A", "a", 1, "Opened"))
	at := time.Unix(3_000_000, 0).UTC()
	good := func(id string, v uint64, tail byte) evento.Event {
		return imported(ev("ii/B", id, v, "Opened"), testID(t, 5, tail), at)
	}
	cases := []struct {
		name  string
		batch []evento.Event
		index int
	}{
		{"empty batch", nil, -1},
		{"zero ID", []evento.Event{good("b", 1, 1), imported(ev("ii/B", "c", 1, "Opened"), ulid.ULID{}, at)}, 1},
		{"repeated ID", []evento.Event{good("b", 1, 1), good("c", 1, 1)}, 1},
		{"zero timestamp", []evento.Event{imported(ev("ii/B", "b", 1, "Opened"), testID(t, 5, 1), time.Time{})}, 0},
		{"timestamp past year 9999", []evento.Event{imported(ev("ii/B", "b", 1, "Opened"), testID(t, 5, 1), time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC))}, 0},
		{"version 0", []evento.Event{good("b", 0, 1)}, 0},
		{"missing name", []evento.Event{imported(ev("ii/B", "b", 1, ""), testID(t, 5, 1), at)}, 0},
	}
	for _, c := range cases {
		err := importer(t, x).Import(t.Context(), slices.Clone(c.batch))
		call := fmt.Sprintf("Import(%s) (%s)", describeBatch(c.batch), c.name)
		if wantErr(t, err, evento.ErrInvalidEvent, call) {
			var ie *evento.InvalidEventError
			if !errors.As(err, &ie) || ie.Index != c.index {
				t.Errorf("%s = %v, want an *evento.InvalidEventError with Index %d", call, err, c.index)
			}
		}
		checkUnchanged(t, x, base, "after an invalid Import ("+c.name+")")
	}
	err := importer(t, x).Import(cancelled(), []evento.Event{good("b", 1, 1)})
	wantErr(t, err, context.Canceled, "Import with a cancelled context")
	checkUnchanged(t, x, base, "after an Import with a cancelled context")
}
