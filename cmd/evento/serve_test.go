package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/evento-go/evento"
	"github.com/evento-go/evento/executor"
)

// lineWriter hands the lines written to it to a channel, for reading the
// address serve prints while it runs.
type lineWriter struct {
	mu    sync.Mutex
	buf   strings.Builder
	lines chan string
}

func (w *lineWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(p)
	for {
		s := w.buf.String()
		i := strings.IndexByte(s, '\n')
		if i < 0 {
			return len(p), nil
		}
		select {
		case w.lines <- s[:i]:
		default:
		}
		w.buf.Reset()
		w.buf.WriteString(s[i+1:])
	}
}

// startServe runs the CLI with args (a serve command) in the background and
// returns its base URL, the line it printed, and a function that interrupts
// it and returns its exit code.
func startServe(t *testing.T, args ...string) (base, line string, stop func() int) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	out := &lineWriter{lines: make(chan string, 4)}
	var errOut strings.Builder
	code := make(chan int, 1)
	go func() { code <- run(ctx, args, strings.NewReader(""), out, &errOut) }()
	select {
	case line = <-out.lines:
	case c := <-code:
		cancel()
		t.Fatalf("serve exited with %d before serving: %s", c, errOut.String())
	case <-time.After(30 * time.Second):
		cancel()
		<-code
		t.Fatal("serve printed no address")
	}
	f := strings.Fields(line) // serving http://127.0.0.1:N/prefix/ (mode); …
	if len(f) < 2 || !strings.HasPrefix(f[1], "http://") {
		cancel()
		<-code
		t.Fatalf("serve printed %q", line)
	}
	stop = func() int {
		cancel()
		select {
		case c := <-code:
			if c != 0 {
				t.Logf("serve stderr: %s", errOut.String())
			}
			return c
		case <-time.After(30 * time.Second):
			t.Fatal("serve did not stop after the interrupt")
			return -1
		}
	}
	t.Cleanup(func() { cancel() })
	return f[1], line, stop
}

func TestServeAllowWritesDiscards(t *testing.T) {
	dsn := seed(t)
	ctx := context.Background()
	exec, err := executor.Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	page, err := exec.Read(ctx, evento.All().First(1, ""))
	if err != nil {
		t.Fatal(err)
	}
	l, err := exec.ClaimLease(ctx, "balances", 0, "w1", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	ev := page.Events[0]
	if err := exec.Acknowledge(ctx, l, evento.Ack{Cursor: ev.Cursor(), Park: []evento.ParkedEvent{{Key: "balances", Event: ev, Error: "boom", Attempts: 3, ParkedAt: time.Now()}}}); err != nil {
		t.Fatal(err)
	}
	if err := exec.Close(); err != nil {
		t.Fatal(err)
	}
	base, line, stop := startServe(t, "--dsn", dsn, "serve", "--addr", "127.0.0.1:0", "--allow-writes", "--metrics=false")
	if !strings.Contains(line, "writes enabled") {
		t.Errorf("serve printed %q", line)
	}
	if res, err := http.Get(base + "metrics"); err != nil {
		t.Fatal(err)
	} else if res.Body.Close(); res.StatusCode != http.StatusNotFound {
		t.Errorf("--metrics=false: GET metrics = %d; want 404", res.StatusCode)
	}
	res, err := http.Post(base+"api/parked/discard?key=balances&partition=0&id="+ev.ID.String(), "", nil)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusNoContent {
		t.Errorf("POST discard = %d; want 204", res.StatusCode)
	}
	res, err = http.Get(base + "api/parked?key=balances")
	if err != nil {
		t.Fatal(err)
	}
	var pl struct{ Events []any }
	err = json.NewDecoder(res.Body).Decode(&pl)
	res.Body.Close()
	if err != nil || len(pl.Events) != 0 {
		t.Errorf("parked after discard: %v (%v)", pl.Events, err)
	}
	if c := stop(); c != 0 {
		t.Fatalf("exit code %d", c)
	}
}

func TestServe(t *testing.T) {
	dsn := seed(t)
	base, line, stop := startServe(t, "--dsn", dsn, "serve", "--addr", "127.0.0.1:0", "--prefix", "/evento")
	if !strings.Contains(line, "read-only") || !strings.HasSuffix(base, "/evento/") {
		t.Fatalf("serve printed %q", line)
	}
	get := func(path string) (int, string) {
		res, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, string(b)
	}
	st, body := get("api/events?type=bank/Account&first=2")
	var conn struct {
		Edges []struct {
			Node struct{ Name string }
		}
		PageInfo struct{ HasNextPage bool }
	}
	if err := json.Unmarshal([]byte(body), &conn); st != 200 || err != nil || len(conn.Edges) != 2 || conn.Edges[1].Node.Name != "MoneyDeposited" || !conn.PageInfo.HasNextPage {
		t.Errorf("GET api/events = %d %s", st, body)
	}
	if st, body = get("events"); st != 200 || !strings.Contains(body, `href="/evento/style.css"`) {
		t.Errorf("GET events (UI) = %d", st)
	}
	res, err := http.Post(base+"api/parked/discard?key=balances&id=01ARZ3NDEKTSV4RRFFQ69G5FAV", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 403 {
		t.Errorf("read-only serve: POST discard = %d; want 403", res.StatusCode)
	}
	// /metrics under the prefix: the reads above, the subscribers' state.
	st, body = get("metrics")
	for _, name := range []string{"evento_read_duration_seconds_bucket{", "evento_read_events_total{", `evento_subscription_pending{evento_subscription_key="balances"`, "go_goroutines"} {
		if st != 200 || !strings.Contains(body, name) {
			t.Errorf("GET metrics = %d, lacks %s:\n%s", st, name, body)
		}
	}
	if c := stop(); c != 0 {
		t.Fatalf("serve exit code %d", c)
	}
	if _, _, c := cli(t, "--dsn", dsn, "serve", "--prefix", "evento/"); c != 2 {
		t.Errorf("bad --prefix: exit %d; want 2", c)
	}
}
