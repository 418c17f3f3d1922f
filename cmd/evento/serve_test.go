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

func TestServe(t *testing.T) {
	dsn := seed(t)
	ctx, cancel := context.WithCancel(context.Background())
	out := &lineWriter{lines: make(chan string, 4)}
	var errOut strings.Builder
	code := make(chan int, 1)
	go func() {
		code <- run(ctx, []string{"--dsn", dsn, "serve", "--addr", "127.0.0.1:0", "--prefix", "/evento"}, strings.NewReader(""), out, &errOut)
	}()
	var line string
	select {
	case line = <-out.lines:
	case c := <-code:
		cancel()
		t.Fatalf("serve exited with %d before serving: %s", c, errOut.String())
	case <-time.After(30 * time.Second):
		cancel()
		t.Fatal("serve printed no address")
	}
	f := strings.Fields(line) // serving http://127.0.0.1:N/evento/ (read-only); …
	if len(f) < 2 || !strings.HasPrefix(f[1], "http://") || !strings.Contains(line, "read-only") {
		cancel()
		t.Fatalf("serve printed %q", line)
	}
	base := f[1]
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
	cancel()
	select {
	case c := <-code:
		if c != 0 {
			t.Fatalf("serve exit code %d: %s", c, errOut.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("serve did not stop after the interrupt")
	}
	if _, _, c := cli(t, "--dsn", dsn, "serve", "--prefix", "evento/"); c != 2 {
		t.Errorf("bad --prefix: exit %d; want 2", c)
	}
}
