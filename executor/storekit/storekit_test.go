package storekit_test

import (
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/evento-go/evento"
	"github.com/evento-go/evento/executor/storekit"
	"github.com/oklog/ulid/v2"
)

func ev(typ, id string, v uint64, name string) evento.Event {
	return evento.Event{AggregateType: typ, AggregateID: id, Version: v, Name: name}
}

func TestValidateBatch(t *testing.T) {
	spans, err := storekit.ValidateBatch([]evento.Event{
		ev("bank/Account", "a", 5, "Withdrawn"),
		ev("bank/Account", "b", 1, "Opened"),
		ev("bank/Account", "a", 6, "Deposited"),
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []storekit.Span{
		{AggregateRef: evento.AggregateRef{Type: "bank/Account", ID: "a"}, Expected: 4, Last: 6},
		{AggregateRef: evento.AggregateRef{Type: "bank/Account", ID: "b"}, Expected: 0, Last: 1},
	}
	if len(spans) != len(want) || spans[0] != want[0] || spans[1] != want[1] {
		t.Fatalf("spans = %+v, want %+v", spans, want)
	}

	bad := map[string][]evento.Event{
		"empty":            nil,
		"no type":          {ev("", "a", 1, "X")},
		"no id":            {ev("t", "", 1, "X")},
		"no name":          {ev("t", "a", 1, "")},
		"version 0":        {ev("t", "a", 0, "X")},
		"gap":              {ev("t", "a", 1, "X"), ev("t", "a", 3, "X")},
		"repeat":           {ev("t", "a", 1, "X"), ev("t", "a", 1, "X")},
		"id under 2 types": {ev("t", "a", 1, "X"), ev("u", "a", 1, "X")},
		"long id":          {ev("t", strings.Repeat("x", evento.MaxIdentLen+1), 1, "X")},
		"bad utf8":         {ev("t", "a\xff", 1, "X")},
		"bad routing":      {{AggregateType: "t", AggregateID: "a", Version: 1, Name: "X", RoutingKey: "\xfe"}},
	}
	for name, batch := range bad {
		t.Run(name, func(t *testing.T) {
			_, err := storekit.ValidateBatch(batch)
			var iee *evento.InvalidEventError
			if !errors.Is(err, evento.ErrInvalidEvent) || !errors.As(err, &iee) {
				t.Fatalf("ValidateBatch = %v, want *InvalidEventError", err)
			}
		})
	}
	// NUL bytes and quotes are legal identifiers.
	if _, err := storekit.ValidateBatch([]evento.Event{ev("t\x00'\"", "a\x00b", 1, "n\x00")}); err != nil {
		t.Fatalf("NUL identifiers rejected: %v", err)
	}
}

func TestCursorRoundTripAndRejects(t *testing.T) {
	src := storekit.NewULIDSource()
	id := src.New(time.Now())
	e := evento.Event{ID: id, Position: evento.Position{Tx: 9, Seq: 77}}
	gotID, gotPos, err := storekit.DecodeCursor(e.Cursor())
	if err != nil || gotID != id || gotPos != e.Position {
		t.Fatalf("DecodeCursor = %v %v %v", gotID, gotPos, err)
	}
	zero := storekit.EncodeCursor(id, evento.Position{})
	for _, s := range []string{"", "garbage!", "AAAA", zero, e.Cursor()[:10]} {
		if _, _, err := storekit.DecodeCursor(s); !errors.Is(err, evento.ErrInvalidCursor) {
			t.Errorf("DecodeCursor(%q) = %v, want ErrInvalidCursor", s, err)
		}
	}
}

func FuzzDecodeCursor(f *testing.F) {
	f.Add(storekit.EncodeCursor(ulid.Make(), evento.Position{Seq: 1}))
	f.Add("kwEC")
	f.Fuzz(func(t *testing.T, s string) {
		id, p, err := storekit.DecodeCursor(s)
		if err != nil {
			if !errors.Is(err, evento.ErrInvalidCursor) {
				t.Fatalf("untyped error %v", err)
			}
			return
		}
		if storekit.EncodeCursor(id, p) == "" {
			t.Fatal("empty re-encoding")
		}
	})
}

func TestNewPage(t *testing.T) {
	rows := func(n int) []evento.Event {
		out := make([]evento.Event, n)
		for i := range out {
			out[i] = evento.Event{ID: ulid.Make(), Position: evento.Position{Seq: uint64(i + 1)}}
		}
		return out
	}
	p := storekit.NewPage(rows(4), 3, false, true)
	if len(p.Events) != 3 || !p.PageInfo.HasNextPage || !p.PageInfo.HasPreviousPage {
		t.Fatalf("forward page %+v", p.PageInfo)
	}
	if p.PageInfo.StartCursor != p.Events[0].Cursor() || p.PageInfo.EndCursor != p.Events[2].Cursor() {
		t.Fatal("cursors")
	}
	// Backward rows arrive descending and come out ascending.
	desc := rows(3)
	desc[0], desc[2] = desc[2], desc[0]
	p = storekit.NewPage(desc, 3, true, false)
	if p.Events[0].Position.Seq != 1 || p.Events[2].Position.Seq != 3 || p.PageInfo.HasPreviousPage || p.PageInfo.HasNextPage {
		t.Fatalf("backward page %+v %+v", p.Events, p.PageInfo)
	}
	if c := p.Connection(); len(c.Edges) != 3 || c.Edges[1].Cursor != p.Events[1].Cursor() {
		t.Fatal("Connection edges")
	}
	p = storekit.NewPage(nil, 5, false, false)
	if p.PageInfo.StartCursor != "" || p.PageInfo.HasNextPage {
		t.Fatalf("empty page %+v", p.PageInfo)
	}
}

func TestULIDSourceMonotonicUnderConcurrency(t *testing.T) {
	src := storekit.NewULIDSource()
	const g, n = 8, 2000
	out := make([][]ulid.ULID, g)
	var wg sync.WaitGroup
	for i := range g {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range n {
				out[i] = append(out[i], src.New(time.Now()))
			}
		}()
	}
	wg.Wait()
	seen := map[ulid.ULID]bool{}
	for _, ids := range out {
		for j, id := range ids {
			if seen[id] {
				t.Fatalf("duplicate %s", id)
			}
			seen[id] = true
			if j > 0 && ids[j-1].Compare(id) >= 0 {
				t.Fatalf("not increasing within a goroutine: %s then %s", ids[j-1], id)
			}
		}
	}
	// A clock that goes backwards still gives larger IDs.
	a := src.New(time.Now())
	b := src.New(time.Now().Add(-time.Hour))
	if a.Compare(b) >= 0 {
		t.Fatal("backwards clock broke monotonicity")
	}
}

func TestMetadataCodec(t *testing.T) {
	m := evento.Metadata{CorrelationID: "c", CausationID: "z", Actor: "alice", Extra: map[string]string{"k": "v\x00"}}
	b, err := storekit.EncodeMetadata(m)
	if err != nil {
		t.Fatal(err)
	}
	got, err := storekit.DecodeMetadata(b)
	if err != nil || !got.Equal(m) {
		t.Fatalf("round trip %+v %v", got, err)
	}
	if b, _ := storekit.EncodeMetadata(evento.Metadata{}); b != nil {
		t.Fatal("empty metadata should encode to nil")
	}
	if _, err := storekit.DecodeMetadata([]byte{0xc1}); !errors.Is(err, evento.ErrDecode) {
		t.Fatalf("bad metadata: %v", err)
	}
}

// TestValidateBatchRouting pins the batch half of the routing-key rule: a new
// aggregate's first event fixes the key, events with none inherit it, and a
// different key is a *RoutingKeyError; for an existing aggregate the batch's
// keys must agree and the backend checks them with Span.Routing.
func TestValidateBatchRouting(t *testing.T) {
	rk := func(e evento.Event, k string) evento.Event { e.RoutingKey = k; return e }
	// New aggregate: inherit the first event's key.
	b := []evento.Event{rk(ev("t", "a", 1, "X"), "eu"), ev("t", "a", 2, "X"), rk(ev("t", "a", 3, "X"), "eu")}
	spans, err := storekit.ValidateBatch(b)
	if err != nil {
		t.Fatalf("ValidateBatch(new aggregate under eu) = %v", err)
	}
	for i := range b {
		if b[i].RoutingKey != "eu" {
			t.Errorf("event %d has routing key %q after ValidateBatch, want the first event's %q", i, b[i].RoutingKey, "eu")
		}
	}
	if k, err := spans[0].Routing("ignored"); err != nil || k != "eu" {
		t.Errorf("Span.Routing on a new aggregate = %q, %v; want %q, nil", k, err, "eu")
	}
	// New aggregate: a later event may not switch or add a key.
	for name, batch := range map[string][]evento.Event{
		"switch": {rk(ev("t", "a", 1, "X"), "eu"), rk(ev("t", "a", 2, "X"), "us")},
		"add":    {ev("t", "a", 1, "X"), rk(ev("t", "a", 2, "X"), "us")},
		"mixed":  {rk(ev("t", "a", 4, "X"), "eu"), rk(ev("t", "a", 5, "X"), "us")},
	} {
		_, err := storekit.ValidateBatch(batch)
		var re *evento.RoutingKeyError
		if !errors.As(err, &re) || !errors.Is(err, evento.ErrRoutingKey) || re.Given != "us" {
			t.Errorf("%s: ValidateBatch = %v, want a *RoutingKeyError for the key %q", name, err, "us")
		}
	}
	// Existing aggregate with no key given: inherits the stored key.
	b = []evento.Event{ev("t", "a", 4, "X"), ev("t", "a", 5, "X")}
	spans, err = storekit.ValidateBatch(b)
	if err != nil {
		t.Fatal(err)
	}
	if k, err := spans[0].Routing("eu"); err != nil || k != "eu" {
		t.Errorf("Span.Routing(stored eu) with no key given = %q, %v; want %q, nil", k, err, "eu")
	}
	storekit.SetRouting(b, &spans[0], "eu")
	if b[0].RoutingKey != "eu" || b[1].RoutingKey != "eu" {
		t.Errorf("SetRouting left keys %q, %q; want eu", b[0].RoutingKey, b[1].RoutingKey)
	}
	// Existing aggregate, key given: must equal the stored one.
	b = []evento.Event{ev("t", "a", 4, "X"), rk(ev("t", "a", 5, "X"), "eu")}
	spans, err = storekit.ValidateBatch(b)
	if err != nil {
		t.Fatal(err)
	}
	if b[0].RoutingKey != "eu" {
		t.Errorf("event without a key in a span that gives %q has %q", "eu", b[0].RoutingKey)
	}
	if k, err := spans[0].Routing("eu"); err != nil || k != "eu" {
		t.Errorf("Span.Routing(stored eu) given eu = %q, %v", k, err)
	}
	for _, stored := range []string{"us", ""} {
		_, err := spans[0].Routing(stored)
		var re *evento.RoutingKeyError
		if !errors.As(err, &re) || re.Fixed != stored || re.Given != "eu" || re.Version != 4 {
			t.Errorf("Span.Routing(stored %q) given eu = %v, want *RoutingKeyError{Version 4, Given eu, Fixed %q}", stored, err, stored)
		}
	}
}
