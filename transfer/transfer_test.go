package transfer_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/evento-go/evento"
	"github.com/evento-go/evento/executor"
	_ "github.com/evento-go/evento/executor/pebble"
	_ "github.com/evento-go/evento/executor/postgres"
	"github.com/evento-go/evento/executor/postgres/postgrestest"
	_ "github.com/evento-go/evento/executor/sqlite"
	"github.com/evento-go/evento/transfer"
)

// backends are the stores a round trip runs between.
var backends = []string{"pebble", "sqlite", "postgres"}

// openBackend opens a fresh, empty store of the named backend, closed when
// the test ends.
func openBackend(t testing.TB, name string) evento.Executor {
	t.Helper()
	var dsn string
	switch name {
	case "pebble":
		dsn = "pebble:" + filepath.Join(t.TempDir(), "db")
	case "sqlite":
		dsn = "sqlite:" + filepath.Join(t.TempDir(), "evento.db")
	case "postgres":
		dsn = postgrestest.DSN(t)
	}
	x, err := executor.Open(context.Background(), dsn)
	if err != nil {
		t.Fatalf("open %s: %v", name, err)
	}
	t.Cleanup(func() { x.Close() })
	return x
}

// roundTripSize is the number of events of the backend-pair round trip:
// 100,000 with EVENTO_TRANSFER_LONG=1.
func roundTripSize(t testing.TB) int {
	if os.Getenv("EVENTO_TRANSFER_LONG") == "1" {
		return 100_000
	}
	if testing.Short() {
		return 500
	}
	return 3_000
}

// fill writes n events of varied shapes into x: three aggregate types (and
// one aggregate id under two types), routing keys, metadata, empty and
// large payloads, multi-aggregate batches. It returns the committed
// events in write order.
func fill(t testing.TB, x evento.Executor, n int) []evento.Event {
	t.Helper()
	ctx := context.Background()
	versions := map[[2]string]uint64{}
	out := make([]evento.Event, 0, n)
	for len(out) < n {
		size := 1 + len(out)%200
		if size > n-len(out) {
			size = n - len(out)
		}
		batch := make([]evento.Event, 0, size)
		for range size {
			i := len(out) + len(batch)
			typ := []string{"bank/Account", "shop/Cart", "shop/Order"}[i%3]
			id := "agg-" + strconv.Itoa(i%997)
			if i%97 == 0 {
				id = "shared" // the same id under every type
			}
			k := [2]string{typ, id}
			versions[k]++
			e := evento.Event{AggregateType: typ, AggregateID: id, Version: versions[k], Name: []string{"Opened", "Moved", "Closed"}[i%3]}
			if versions[k] == 1 && i%5 == 0 {
				e.RoutingKey = []string{"eu", "us", "ünï\x00code"}[i%3]
			}
			switch i % 4 {
			case 0: // no payload
			case 1:
				e.Data, _ = evento.Marshal(map[string]any{"n": i, "s": strings.Repeat("x", i%50)})
			case 2:
				e.Data = bytes.Repeat([]byte{byte(i), 0xff, 0}, 1+i%700)
			case 3:
				e.Data = []byte{0xc0}
			}
			if i%3 == 0 {
				e.Metadata = evento.Metadata{CorrelationID: "c" + strconv.Itoa(i), Actor: "bob", Extra: map[string]string{"k": strconv.Itoa(i)}}
			}
			batch = append(batch, e)
		}
		// ValidateBatch refuses one id under two types in a batch: split.
		for len(batch) > 0 {
			j, seen := 0, map[string]string{}
			for ; j < len(batch); j++ {
				if t0, ok := seen[batch[j].AggregateID]; ok && t0 != batch[j].AggregateType {
					break
				}
				seen[batch[j].AggregateID] = batch[j].AggregateType
			}
			if err := x.Write(ctx, batch[:j]); err != nil {
				t.Fatalf("fill: Write: %v", err)
			}
			out = append(out, batch[:j]...)
			batch = batch[j:]
		}
	}
	return out
}

// readAll reads every event of x in global order.
func readAll(t testing.TB, x evento.Executor) []evento.Event {
	t.Helper()
	var out []evento.Event
	after := ""
	for {
		p, err := x.Read(context.Background(), evento.All().First(1000, after))
		if err != nil {
			t.Fatalf("Read: %v", err)
		}
		out = append(out, p.Events...)
		if !p.PageInfo.HasNextPage {
			return out
		}
		after = p.PageInfo.EndCursor
	}
}

// sameEvents checks that got reproduces want: same IDs, aggregates,
// versions, names, routing keys, metadata, timestamps and payload bytes,
// in the same order (positions may differ between stores).
func sameEvents(t testing.TB, what string, got, want []evento.Event) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d events, want %d", what, len(got), len(want))
	}
	bad := 0
	for i := range want {
		g, w := got[i], want[i]
		g.Position, w.Position = evento.Position{}, evento.Position{}
		if !g.Equal(&w) {
			t.Errorf("%s: event %d is %s %s/%s v%d %q rk=%q ts=%s data=%x meta=%+v, want %s %s/%s v%d %q rk=%q ts=%s data=%x meta=%+v", what, i,
				g.ID, g.AggregateType, g.AggregateID, g.Version, g.Name, g.RoutingKey, g.Timestamp, g.Data, g.Metadata,
				w.ID, w.AggregateType, w.AggregateID, w.Version, w.Name, w.RoutingKey, w.Timestamp, w.Data, w.Metadata)
			if bad++; bad > 5 {
				t.FailNow()
			}
		}
	}
}

// eventLines returns the event lines of an export without their cursors
// (the one field that names the source store).
func eventLines(t testing.TB, export []byte) []string {
	t.Helper()
	var out []string
	sc := bufio.NewScanner(bytes.NewReader(export))
	sc.Buffer(nil, 64<<20)
	for sc.Scan() {
		var l map[string]any
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Fatalf("export line %q: %v", sc.Text(), err)
		}
		if _, ok := l["id"]; !ok {
			continue
		}
		delete(l, "cursor")
		b, _ := json.Marshal(l)
		out = append(out, string(b))
	}
	return out
}

func export(t testing.TB, x evento.Executor, opts transfer.ExportOptions) ([]byte, transfer.ExportResult) {
	t.Helper()
	var buf bytes.Buffer
	res, err := transfer.Export(context.Background(), x, &buf, opts)
	if err != nil {
		t.Fatalf("Export: %v", err)
	}
	if res.Bytes != int64(buf.Len()) {
		t.Errorf("Export reported %d bytes, wrote %d", res.Bytes, buf.Len())
	}
	return buf.Bytes(), res
}

// TestRoundTripBackends exports from each backend and imports into each
// backend (every ordered pair), and checks that the destination holds the
// same events in the same order with the same bytes, and exports to the
// same lines. EVENTO_TRANSFER_LONG=1 runs it at 100,000 events.
func TestRoundTripBackends(t *testing.T) {
	n := roundTripSize(t)
	for _, from := range backends {
		t.Run("from_"+from, func(t *testing.T) {
			src := openBackend(t, from)
			want := fill(t, src, n)
			if got := readAll(t, src); len(got) != n {
				t.Fatalf("source holds %d events, want %d", len(got), n)
			} else {
				want = got // with their positions' order as read
			}
			data, res := export(t, src, transfer.ExportOptions{})
			if res.Events != int64(n) || res.Cursor != want[n-1].Cursor() {
				t.Fatalf("Export = %d events, cursor %q; want %d, the last event's %q", res.Events, res.Cursor, n, want[n-1].Cursor())
			}
			srcLines := eventLines(t, data)
			for _, to := range backends {
				t.Run("to_"+to, func(t *testing.T) {
					dst := openBackend(t, to)
					ires, err := transfer.Import(context.Background(), dst, bytes.NewReader(data), transfer.ImportOptions{})
					if err != nil {
						t.Fatalf("Import: %v", err)
					}
					if ires.Events != int64(n) || ires.Bytes != int64(len(data)) || ires.Header.Backend != from {
						t.Errorf("Import = %+v, want %d events, %d bytes, backend %q", ires, n, len(data), from)
					}
					sameEvents(t, from+" -> "+to, readAll(t, dst), want)
					again, _ := export(t, dst, transfer.ExportOptions{})
					dstLines := eventLines(t, again)
					for i := range srcLines {
						if dstLines[i] != srcLines[i] {
							t.Fatalf("export of the imported store, line %d:\n%s\nwant (the source's):\n%s", i+2, dstLines[i], srcLines[i])
						}
					}
				})
			}
		})
	}
}

// written is a small store's content for the refusal tests.
func small(t *testing.T, name string, n int) (evento.Executor, []evento.Event, []byte) {
	t.Helper()
	x := openBackend(t, name)
	fill(t, x, n)
	events := readAll(t, x)
	data, _ := export(t, x, transfer.ExportOptions{})
	return x, events, data
}

func TestImportRefusesNonEmptyStore(t *testing.T) {
	_, _, data := small(t, "pebble", 50)
	dst := openBackend(t, "sqlite")
	pre := fill(t, dst, 1) // bank/Account shared v1
	_, err := transfer.Import(t.Context(), dst, bytes.NewReader(data), transfer.ImportOptions{})
	if !errors.Is(err, transfer.ErrNotEmpty) {
		t.Fatalf("Import into a non-empty store = %v, want ErrNotEmpty", err)
	}
	sameEvents(t, "store after the refused import", readAll(t, dst), pre)

	// Append still checks versions: the export creates bank/Account
	// "shared" at version 1 again.
	res, err := transfer.Import(t.Context(), dst, bytes.NewReader(data), transfer.ImportOptions{Append: true, BatchSize: 10})
	var ce *evento.VersionConflictError
	if !errors.As(err, &ce) || ce.AggregateType != "bank/Account" || ce.AggregateID != "shared" || ce.Expected != 0 || ce.Actual != 1 {
		t.Fatalf("Import(Append) of a conflicting export = %v, want a version conflict on bank/Account/shared expected 0 actual 1", err)
	}
	if res.Events != 0 {
		t.Errorf("Import(Append) refused at the first batch reported %d events imported", res.Events)
	}
	sameEvents(t, "store after the conflicting append", readAll(t, dst), pre)
}

func TestImportAppend(t *testing.T) {
	src := openBackend(t, "pebble")
	ctx := t.Context()
	first := []evento.Event{{AggregateType: "a/A", AggregateID: "1", Version: 1, Name: "Opened"}}
	if err := src.Write(ctx, first); err != nil {
		t.Fatal(err)
	}
	part1, r1 := export(t, src, transfer.ExportOptions{})
	second := []evento.Event{{AggregateType: "a/A", AggregateID: "1", Version: 2, Name: "Moved"}, {AggregateType: "a/B", AggregateID: "2", Version: 1, Name: "Opened", Data: []byte{1}}}
	if err := src.Write(ctx, second); err != nil {
		t.Fatal(err)
	}
	// A resumed export starts after the first one's last cursor.
	part2, r2 := export(t, src, transfer.ExportOptions{After: r1.Cursor})
	if r2.Events != 2 {
		t.Fatalf("Export(After=first export's cursor) wrote %d events, want 2", r2.Events)
	}
	var h transfer.Header
	if err := json.Unmarshal(part2[:bytes.IndexByte(part2, '\n')], &h); err != nil || h.After != r1.Cursor {
		t.Errorf("resumed export header = %+v (%v), want After %q", h, err, r1.Cursor)
	}
	dst := openBackend(t, "sqlite")
	if _, err := transfer.Import(ctx, dst, bytes.NewReader(part1), transfer.ImportOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := transfer.Import(ctx, dst, bytes.NewReader(part2), transfer.ImportOptions{}); !errors.Is(err, transfer.ErrNotEmpty) {
		t.Fatalf("second part without Append = %v, want ErrNotEmpty", err)
	}
	res, err := transfer.Import(ctx, dst, bytes.NewReader(part2), transfer.ImportOptions{Append: true})
	if err != nil || res.Events != 2 {
		t.Fatalf("second part with Append = %+v, %v; want 2 events", res, err)
	}
	sameEvents(t, "two parts appended", readAll(t, dst), readAll(t, src))
}

func TestImportResume(t *testing.T) {
	_, want, data := small(t, "sqlite", 300)
	lines := bytes.SplitAfter(data, []byte("\n"))
	cut := bytes.Join(lines[:1+170], nil) // header and 170 events, no trailer
	dst := openBackend(t, "pebble")
	res, err := transfer.Import(t.Context(), dst, bytes.NewReader(cut), transfer.ImportOptions{BatchSize: 50})
	if !errors.Is(err, transfer.ErrTruncated) {
		t.Fatalf("Import of a truncated export = %v, want ErrTruncated", err)
	}
	if res.Events != 170 {
		t.Errorf("Import of 170 lines reported %d events", res.Events)
	}
	sameEvents(t, "after the truncated import", readAll(t, dst), want[:170])
	res, err = transfer.Import(t.Context(), dst, bytes.NewReader(data), transfer.ImportOptions{Resume: true, BatchSize: 50})
	if err != nil || res.Skipped != 170 || res.Events != 130 {
		t.Fatalf("Import(Resume) = %+v, %v; want 170 skipped, 130 imported", res, err)
	}
	sameEvents(t, "after the resumed import", readAll(t, dst), want)
	// Resuming a complete import imports nothing.
	res, err = transfer.Import(t.Context(), dst, bytes.NewReader(data), transfer.ImportOptions{Resume: true})
	if err != nil || res.Events != 0 || res.Skipped != 300 {
		t.Fatalf("Import(Resume) of a finished import = %+v, %v; want 300 skipped, none imported", res, err)
	}
	// A store of another history cannot resume.
	other := openBackend(t, "pebble")
	fill(t, other, 3)
	if _, err := transfer.Import(t.Context(), other, bytes.NewReader(data), transfer.ImportOptions{Resume: true}); !errors.Is(err, transfer.ErrResume) {
		t.Fatalf("Import(Resume) into a store of another history = %v, want ErrResume", err)
	}
	if got := readAll(t, other); len(got) != 3 {
		t.Errorf("store of another history holds %d events after the refused resume, want 3", len(got))
	}
}

func TestImportFormatErrors(t *testing.T) {
	_, _, data := small(t, "pebble", 5)
	lines := strings.SplitAfter(string(data), "\n")
	header, ev1, trailer := lines[0], lines[1], lines[len(lines)-2]
	events := strings.Join(lines[1:len(lines)-2], "")
	cases := []struct {
		name  string
		input string
		line  int64
		want  error
	}{
		{"empty input", "", 1, transfer.ErrFormat},
		{"header not JSON", "nope\n" + events + trailer, 1, transfer.ErrFormat},
		{"other format", strings.Replace(header, "evento-export", "other", 1) + events + trailer, 1, transfer.ErrFormat},
		{"newer version", strings.Replace(header, `"version":1`, `"version":2`, 1) + events + trailer, 1, transfer.ErrFormat},
		{"event not JSON", header + "{\n" + trailer, 2, transfer.ErrFormat},
		{"bad id", header + strings.Replace(ev1, `"id":"`, `"id":"!`, 1) + trailer, 2, transfer.ErrFormat},
		{"bad timestamp", header + regexpReplace(ev1, `"timestamp":"`, `"timestamp":"x`) + trailer, 2, transfer.ErrFormat},
		{"trailer miscounts", header + events + `{"end":true,"events":9}` + "\n", 7, transfer.ErrFormat},
		{"line after trailer", header + events + trailer + ev1, 8, transfer.ErrFormat},
		{"no trailer", header + events, 0, transfer.ErrTruncated},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dst := openBackend(t, "pebble")
			_, err := transfer.Import(t.Context(), dst, strings.NewReader(c.input), transfer.ImportOptions{})
			if !errors.Is(err, c.want) {
				t.Fatalf("Import = %v, want %v", err, c.want)
			}
			var fe *transfer.FormatError
			if c.line > 0 && (!errors.As(err, &fe) || fe.Line != c.line) {
				t.Errorf("Import = %v, want a *FormatError at line %d", err, c.line)
			}
		})
	}
	t.Run("line too long", func(t *testing.T) {
		dst := openBackend(t, "pebble")
		_, err := transfer.Import(t.Context(), dst, strings.NewReader(data2str(data)), transfer.ImportOptions{MaxLineSize: 64})
		var fe *transfer.FormatError
		if !errors.As(err, &fe) || fe.Line != 1 {
			t.Fatalf("Import with MaxLineSize 64 = %v, want a *FormatError at line 1", err)
		}
	})
	t.Run("invalid event", func(t *testing.T) {
		dst := openBackend(t, "pebble")
		bad := strings.Replace(ev1, `"version":1`, `"version":0`, 1)
		_, err := transfer.Import(t.Context(), dst, strings.NewReader(header+bad+`{"end":true,"events":1}`+"\n"), transfer.ImportOptions{})
		if !errors.Is(err, evento.ErrInvalidEvent) {
			t.Fatalf("Import of an event with version 0 = %v, want evento.ErrInvalidEvent", err)
		}
		if got := readAll(t, dst); len(got) != 0 {
			t.Errorf("store holds %d events after the refused import", len(got))
		}
	})
}

func data2str(b []byte) string { return string(b) }

// regexpReplace replaces the first old in s with new.
func regexpReplace(s, old, new string) string { return strings.Replace(s, old, new, 1) }

// noImporter hides an executor's Import method.
type noImporter struct{ evento.Executor }

func TestImportNeedsImporter(t *testing.T) {
	_, _, data := small(t, "pebble", 3)
	dst := openBackend(t, "pebble")
	_, err := transfer.Import(t.Context(), noImporter{dst}, bytes.NewReader(data), transfer.ImportOptions{})
	if !errors.Is(err, transfer.ErrNotImporter) {
		t.Fatalf("Import into an executor without Import = %v, want ErrNotImporter", err)
	}
}

func TestProgressAndCancel(t *testing.T) {
	src, _, data := small(t, "pebble", 1200)
	var calls []transfer.Progress
	_, res := export(t, src, transfer.ExportOptions{PageSize: 500, Progress: func(p transfer.Progress) { calls = append(calls, p) }})
	if len(calls) != 3 || calls[2].Events != 1200 || calls[0].Events != 500 || calls[2].Bytes > res.Bytes || calls[0].Bytes >= calls[1].Bytes {
		t.Errorf("Export progress calls = %+v, want 500, 1000, 1200 events with growing bytes", calls)
	}
	calls = nil
	dst := openBackend(t, "sqlite")
	if _, err := transfer.Import(t.Context(), dst, bytes.NewReader(data), transfer.ImportOptions{BatchSize: 400, Progress: func(p transfer.Progress) { calls = append(calls, p) }}); err != nil {
		t.Fatal(err)
	}
	for i := 1; i < len(calls); i++ {
		if calls[i].Events <= calls[i-1].Events || calls[i].Bytes < calls[i-1].Bytes {
			t.Errorf("Import progress calls %+v then %+v: events must grow, bytes not shrink", calls[i-1], calls[i])
		}
	}
	if len(calls) < 3 || calls[len(calls)-1].Events != 1200 || calls[len(calls)-1].Bytes != int64(len(data)) {
		t.Errorf("Import progress calls = %+v, want at least 3 (batches of 400) ending at 1200 events and %d bytes", calls, len(data))
	}

	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := transfer.Export(ctx, src, &bytes.Buffer{}, transfer.ExportOptions{}); !errors.Is(err, context.Canceled) {
		t.Errorf("Export with a cancelled context = %v, want context.Canceled", err)
	}
	dst2 := openBackend(t, "sqlite")
	if _, err := transfer.Import(ctx, dst2, bytes.NewReader(data), transfer.ImportOptions{}); !errors.Is(err, context.Canceled) {
		t.Errorf("Import with a cancelled context = %v, want context.Canceled", err)
	}
}

func TestExportQuery(t *testing.T) {
	src, events, _ := small(t, "pebble", 90)
	data, res := export(t, src, transfer.ExportOptions{Query: evento.ByType("shop/Cart")})
	var want []evento.Event
	for _, e := range events {
		if e.AggregateType == "shop/Cart" {
			want = append(want, e)
		}
	}
	if res.Events != int64(len(want)) {
		t.Fatalf("Export(ByType shop/Cart) wrote %d events, want %d", res.Events, len(want))
	}
	dst := openBackend(t, "sqlite")
	if _, err := transfer.Import(t.Context(), dst, bytes.NewReader(data), transfer.ImportOptions{}); err != nil {
		t.Fatal(err)
	}
	sameEvents(t, "import of a filtered export", readAll(t, dst), want)
	_ = fmt.Sprint()
}
