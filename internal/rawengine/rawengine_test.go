package rawengine_test

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"path/filepath"
	"testing"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/evento-go/evento"
	"github.com/evento-go/evento/executor/postgres/postgrestest"
	"github.com/evento-go/evento/internal/rawengine"
)

func engines(t *testing.T) map[string]func(t *testing.T) rawengine.Engine {
	return map[string]func(t *testing.T) rawengine.Engine{
		"pebble": func(t *testing.T) rawengine.Engine {
			e, err := rawengine.OpenPebble("", &pebble.Options{FS: vfs.NewMem()})
			if err != nil {
				t.Fatal(err)
			}
			return e
		},
		"sqlite": func(t *testing.T) rawengine.Engine {
			e, err := rawengine.OpenSQLite(context.Background(), filepath.Join(t.TempDir(), "raw.db"))
			if err != nil {
				t.Fatal(err)
			}
			return e
		},
		"postgres": func(t *testing.T) rawengine.Engine {
			u, err := url.Parse(postgrestest.DSN(t))
			if err != nil {
				t.Fatal(err)
			}
			e, err := rawengine.OpenPostgres(context.Background(), postgrestest.BaseDSN(), u.Query().Get("schema"))
			if err != nil {
				t.Fatal(err)
			}
			return e
		},
	}
}

func ev(id string, v uint64) evento.Event {
	return evento.Event{AggregateType: "bank/Account", AggregateID: id, Version: v, Name: "Deposited",
		RoutingKey: "eu", Data: []byte{0x81, 0xa1, 'n', v2b(v)}, Metadata: evento.Metadata{CorrelationID: "c-" + id}}
}

func v2b(v uint64) byte { return byte(v % 100) }

func TestEngines(t *testing.T) {
	ctx := context.Background()
	for name, open := range engines(t) {
		t.Run(name, func(t *testing.T) {
			e := open(t)
			defer e.Close()
			// Interleave two aggregates: single appends and a batch.
			for v := uint64(1); v <= 3; v++ {
				if err := e.Append(ctx, []evento.Event{ev("a", v)}); err != nil {
					t.Fatal(err)
				}
			}
			batch := []evento.Event{ev("b", 1), ev("b", 2), ev("a", 4)}
			if err := e.Append(ctx, batch); err != nil {
				t.Fatal(err)
			}
			if batch[0].ID == batch[1].ID || batch[0].Timestamp.IsZero() {
				t.Fatalf("Append did not assign IDs and time: %+v", batch[:2])
			}
			// A clashing version is a typed conflict and writes nothing.
			err := e.Append(ctx, []evento.Event{ev("b", 3), ev("a", 2)})
			if !errors.Is(err, evento.ErrVersionConflict) {
				t.Fatalf("duplicate version: err = %v, want ErrVersionConflict", err)
			}
			a, err := e.Load(ctx, "bank/Account", "a", nil)
			if err != nil {
				t.Fatal(err)
			}
			if len(a) != 4 {
				t.Fatalf("load a: %d events, want 4", len(a))
			}
			for i, x := range a {
				if x.Version != uint64(i+1) || x.AggregateID != "a" || x.RoutingKey != "eu" || x.Name != "Deposited" ||
					x.Metadata.CorrelationID != "c-a" || len(x.Data) != 4 || x.Data[3] != v2b(x.Version) || x.Timestamp.IsZero() {
					t.Fatalf("load a[%d] = %+v", i, x)
				}
			}
			b, err := e.Load(ctx, "bank/Account", "b", nil)
			if err != nil || len(b) != 2 {
				t.Fatalf("load b: %d events, %v (the failed batch must leave nothing)", len(b), err)
			}
			// Scan in pages of 2: all six, in position order, appends in order.
			var got []string
			n, err := rawengine.ScanAll(ctx, e, 2, func(page []evento.Event) error {
				for _, x := range page {
					got = append(got, fmt.Sprintf("%s%d", x.AggregateID, x.Version))
				}
				return nil
			})
			if err != nil || n != 6 {
				t.Fatalf("ScanAll: %d events, %v", n, err)
			}
			if fmt.Sprint(got) != "[a1 a2 a3 b1 b2 a4]" {
				t.Fatalf("scan order %v", got)
			}
			if _, err := rawengine.ScanAll(ctx, e, 0, nil); err == nil {
				t.Fatal("ScanAll with page 0: no error")
			}
		})
	}
}

// A reopened Pebble engine continues positions and versions.
func TestPebbleReopen(t *testing.T) {
	ctx := context.Background()
	fs := vfs.NewMem()
	e, err := rawengine.OpenPebble("db", &pebble.Options{FS: fs})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Append(ctx, []evento.Event{ev("a", 1), ev("a", 2)}); err != nil {
		t.Fatal(err)
	}
	e.Close()
	if e, err = rawengine.OpenPebble("db", &pebble.Options{FS: fs}); err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	if err := e.Append(ctx, []evento.Event{ev("a", 2)}); !errors.Is(err, evento.ErrVersionConflict) {
		t.Fatalf("after reopen, version 2 again: %v", err)
	}
	x := []evento.Event{ev("a", 3)}
	if err := e.Append(ctx, x); err != nil {
		t.Fatal(err)
	}
	if x[0].Position.Seq != 3 {
		t.Fatalf("position after reopen = %d, want 3", x[0].Position.Seq)
	}
	if _, err := e.Scan(ctx, 0, 10, nil); err != nil {
		t.Fatal(err)
	}
	e.Close()
	if _, err := e.Scan(ctx, 0, 10, nil); !errors.Is(err, rawengine.ErrClosed) {
		t.Fatalf("Scan after Close: %v", err)
	}
}
