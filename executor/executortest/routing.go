package executortest

import (
	"errors"
	"testing"

	"github.com/evento-go/evento"
)

// runRouting checks the routing-key rule: an aggregate's routing key is
// fixed by its first event, later events inherit it, and a different key
// is refused by the store in the same atomic write that checks versions.
func runRouting(t *testing.T, h Harness) {
	parallel(t, h, "Inherited", testRoutingInherited)
	parallel(t, h, "DifferentKeyRefused", testRoutingDifferentKey)
	parallel(t, h, "NoKeyRefusesKey", testRoutingNoKeyRefusesKey)
	parallel(t, h, "WithinCreatingBatch", testRoutingWithinBatch)
	parallel(t, h, "MultiAggregateBatch", testRoutingMultiAggregate)
}

// wantRoutingError checks that err is a *evento.RoutingKeyError for the
// aggregate with the given key and fixed key.
func wantRoutingError(t *testing.T, err error, call, typ, id string, version uint64, given, fixed string) {
	t.Helper()
	var re *evento.RoutingKeyError
	if !errors.As(err, &re) || !errors.Is(err, evento.ErrRoutingKey) {
		t.Errorf("%s = %v (%T), want a *evento.RoutingKeyError (errors.Is evento.ErrRoutingKey)", call, err, err)
		return
	}
	if re.AggregateType != typ || re.AggregateID != id || re.Version != version || re.Given != given || re.Fixed != fixed {
		t.Errorf("%s = RoutingKeyError{%q, %q, Version: %d, Given: %q, Fixed: %q}, want {%q, %q, Version: %d, Given: %q, Fixed: %q}",
			call, re.AggregateType, re.AggregateID, re.Version, re.Given, re.Fixed, typ, id, version, given, fixed)
	}
}

// refused writes batch, expects a routing-key error and checks that the
// store did not change: the log and Head are as before.
func refused(t *testing.T, x evento.Executor, batch []evento.Event, what, typ, id string, version uint64, given, fixed string) {
	t.Helper()
	before := readAll(t, x, evento.All())
	err := x.Write(t.Context(), batch)
	wantRoutingError(t, err, "Write("+what+")", typ, id, version, given, fixed)
	checkEvents(t, "Read(All) after the refused Write("+what+")", readAll(t, x, evento.All()), before)
	var head evento.Position
	if len(before) > 0 {
		head = before[len(before)-1].Position
	}
	wantHead(t, x, head)
}

func testRoutingInherited(t *testing.T, h Harness) {
	x, _ := openStore(t, h)
	const typ = "rk/A"
	e1 := write(t, x, withRK(ev(typ, "a", 1, "Created"), "us-east-1"))
	// A later event with no key inherits the aggregate's: Write sets it on
	// the event it returns, and reads return it.
	e2 := write(t, x, ev(typ, "a", 2, "Renamed"))
	if e2[0].RoutingKey != "us-east-1" {
		t.Errorf("Write of v2 with no routing key onto an aggregate created with \"us-east-1\" set RoutingKey %q on the event, want \"us-east-1\" (inherited)", e2[0].RoutingKey)
	}
	// Giving the same key again is allowed; so is a batch mixing a given
	// key and none.
	e3 := write(t, x, withRK(ev(typ, "a", 3, "Moved"), "us-east-1"), ev(typ, "a", 4, "Moved"))
	for _, e := range e3 {
		if e.RoutingKey != "us-east-1" {
			t.Errorf("Write of %s set RoutingKey %q, want \"us-east-1\"", describe(&e), e.RoutingKey)
		}
	}
	want := append(append(e1, e2...), e3...)
	for i := range want {
		want[i].RoutingKey = "us-east-1"
	}
	got, err := x.ReadAggregate(t.Context(), typ, "a", 0, 0)
	noErr(t, err, "ReadAggregate(rk/A, a)")
	checkEvents(t, "ReadAggregate of an aggregate created with key \"us-east-1\"", got, want)
	checkEvents(t, "Read(All)", readAll(t, x, evento.All()), want)
	checkEvents(t, "Read(All, routing key \"us-east-1\")", readAll(t, x, evento.All().WithRouting(evento.RoutingKey("us-east-1"))), want)
	checkEvents(t, "Read(type+id, routing key \"us-east-1\")", readAll(t, x, evento.ByAggregate(typ, "a").WithRouting(evento.RoutingKey("us-east-1"))), want)
	checkEvents(t, "Read(type+name Renamed, routing key \"us-east-1\")", readAll(t, x, evento.ByName(typ, "Renamed").WithRouting(evento.RoutingKey("us-east-1"))), want[1:2])
	checkEvents(t, "Read(All, no routing key)", readAll(t, x, evento.All().WithRouting(evento.NoRoutingKey())), nil)
	checkEvents(t, "Read(type, no routing key)", readAll(t, x, evento.ByType(typ).WithRouting(evento.NoRoutingKey())), nil)
}

func testRoutingDifferentKey(t *testing.T, h Harness) {
	x, _ := openStore(t, h)
	const typ = "rk/A"
	write(t, x, withRK(ev(typ, "a", 1, "Created"), "us-east-1"))
	write(t, x, ev(typ, "a", 2, "Renamed"))
	refused(t, x, []evento.Event{withRK(ev(typ, "a", 3, "Moved"), "eu")}, `v3 with key "eu"`, typ, "a", 3, "eu", "us-east-1")
	wantVersion(t, x, typ, "a", 2)
	// A batch whose first event inherits and whose second gives another
	// key is refused whole.
	refused(t, x, []evento.Event{ev(typ, "a", 3, "Moved"), withRK(ev(typ, "a", 4, "Moved"), "eu")}, `v3 with no key, v4 with key "eu"`, typ, "a", 3, "eu", "us-east-1")
	wantVersion(t, x, typ, "a", 2)
	// The aggregate still takes events under its key.
	e := write(t, x, ev(typ, "a", 3, "Moved"))
	if e[0].RoutingKey != "us-east-1" {
		t.Errorf("Write of v3 after the refusals set RoutingKey %q, want \"us-east-1\"", e[0].RoutingKey)
	}
}

func testRoutingNoKeyRefusesKey(t *testing.T, h Harness) {
	x, _ := openStore(t, h)
	const typ = "rk/A"
	write(t, x, ev(typ, "n", 1, "Created"))
	refused(t, x, []evento.Event{withRK(ev(typ, "n", 2, "Moved"), "us-east-1")}, `v2 with key "us-east-1" onto an aggregate created with no key`, typ, "n", 2, "us-east-1", "")
	wantVersion(t, x, typ, "n", 1)
	e := write(t, x, ev(typ, "n", 2, "Moved"))
	if e[0].RoutingKey != "" {
		t.Errorf("Write of v2 with no key onto an aggregate with no key set RoutingKey %q, want none", e[0].RoutingKey)
	}
	checkEvents(t, "Read(type+id, routing key \"us-east-1\") of an aggregate with no key", readAll(t, x, evento.ByAggregate(typ, "n").WithRouting(evento.RoutingKey("us-east-1"))), nil)
	if got := readAll(t, x, evento.ByAggregate(typ, "n").WithRouting(evento.NoRoutingKey())); len(got) != 2 {
		t.Errorf("Read(type+id, no routing key) of an aggregate with no key returned %d events, want 2:%s", len(got), describeEvents(got))
	}
}

func testRoutingWithinBatch(t *testing.T, h Harness) {
	x, _ := openStore(t, h)
	const typ = "rk/A"
	refused(t, x, []evento.Event{withRK(ev(typ, "b", 1, "Created"), "us-east-1"), withRK(ev(typ, "b", 2, "Moved"), "eu")},
		`v1 with key "us-east-1", v2 with key "eu"`, typ, "b", 2, "eu", "us-east-1")
	wantVersion(t, x, typ, "b", 0)
	refused(t, x, []evento.Event{ev(typ, "c", 1, "Created"), withRK(ev(typ, "c", 2, "Moved"), "eu")},
		`v1 with no key, v2 with key "eu"`, typ, "c", 2, "eu", "")
	wantVersion(t, x, typ, "c", 0)
	// In a creating batch, later events with no key take the first's.
	es := write(t, x, withRK(ev(typ, "d", 1, "Created"), "us-east-1"), ev(typ, "d", 2, "Moved"))
	if es[1].RoutingKey != "us-east-1" {
		t.Errorf("Write of a creating batch: v2 with no key got RoutingKey %q, want the first event's \"us-east-1\"", es[1].RoutingKey)
	}
}

func testRoutingMultiAggregate(t *testing.T, h Harness) {
	x, _ := openStore(t, h)
	write(t, x, withRK(ev("rk/A", "x", 1, "Created"), "k1"), ev("rk/B", "z", 1, "Created"))
	// A batch creating y and appending to x and z, where only the key given
	// for x is wrong: nothing is written.
	refused(t, x, []evento.Event{
		withRK(ev("rk/A", "y", 1, "Created"), "k2"),
		ev("rk/B", "z", 2, "Moved"),
		withRK(ev("rk/A", "x", 2, "Moved"), "k2"),
	}, `y v1 "k2", z v2, x v2 "k2" where x has "k1"`, "rk/A", "x", 2, "k2", "k1")
	wantVersion(t, x, "rk/A", "y", 0)
	wantVersion(t, x, "rk/A", "x", 1)
	wantVersion(t, x, "rk/B", "z", 1)
	// The same with the wrong aggregate first.
	refused(t, x, []evento.Event{
		ev("rk/B", "z", 2, "Moved"),
		withRK(ev("rk/B", "z", 3, "Moved"), "k1"),
		withRK(ev("rk/A", "y", 1, "Created"), "k2"),
	}, `z v2, z v3 "k1" where z has none, y v1 "k2"`, "rk/B", "z", 2, "k1", "")
	wantVersion(t, x, "rk/A", "y", 0)
	wantVersion(t, x, "rk/B", "z", 1)
}
