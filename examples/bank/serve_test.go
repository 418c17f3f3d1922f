package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/evento-go/evento"
	"github.com/evento-go/evento/evhttp"
	"github.com/evento-go/evento/evhttp/evhttptest"
	"github.com/evento-go/evento/executor"
	"github.com/evento-go/evento/executor/postgres/postgrestest"
	"github.com/evento-go/evento/otelevento"
	"github.com/evento-go/evento/otelevento/otelprom"
)

// TestServeMetrics wires the server as -serve does (otelprom, the store
// wrapped by otelevento.Wrap, the workers instrumented) and checks that
// /metrics serves the writes, the commands, the workers' handler calls and
// the subscriptions' lag.
func TestServeMetrics(t *testing.T) {
	ctx := context.Background()
	mp, metrics, err := otelprom.New()
	if err != nil {
		t.Fatal(err)
	}
	defer mp.Shutdown(ctx)
	raw, err := executor.Open(ctx, "pebble:"+t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	exec := otelevento.Wrap(raw, otelevento.WithMeterProvider(mp))
	sum, err := run(ctx, exec, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := StartServer(ctx, exec, ServerConfig{MeterProvider: mp, Metrics: metrics,
		Notifier: NotifierFunc(func(context.Context, string, string) error { return nil })})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := srv.Stop(context.Background()); err != nil {
			t.Error(err)
		}
	}()
	hs := httptest.NewServer(srv.Handler)
	defer hs.Close()
	waitFor(t, "the balances read model", func() bool {
		st, body := httpGet(t, hs.URL+"/balances/"+sum.Alice.ID)
		return st == 200 && strings.Contains(body, fmt.Sprintf(`"balance":%d`, sum.Alice.Balance))
	})
	st, body := httpGet(t, hs.URL+"/metrics")
	if st != 200 {
		t.Fatalf("GET /metrics = %d", st)
	}
	for _, name := range []string{
		`evento_write_events_total{evento_backend="pebble"`,
		"evento_command_duration_seconds_bucket{",
		`evento_handler_duration_seconds_count{evento_handler_outcome="ok",evento_subscription_key="` + BalancesKey + `"`,
		`evento_lease_gained_total{evento_subscription_key="` + BalancesKey + `"`,
		`evento_subscription_pending{evento_subscription_key="` + BalancesKey + `"`,
		"evento_read_events_total{",
	} {
		if !strings.Contains(body, name) {
			t.Errorf("/metrics lacks %s", name)
		}
	}
	if t.Failed() {
		t.Logf("/metrics:\n%s", body)
	}
}

// TestServeEndToEnd starts the bank's server on a temporary store of each
// backend, pages its events over HTTP forward and backward through every
// query shape, checks the problem+json of each kind of bad input, and
// drives the admin UI in headless Chromium, replaying the parked alerts.
func TestServeEndToEnd(t *testing.T) {
	for name, dsn := range map[string]func(t *testing.T) string{
		"pebble":   func(t *testing.T) string { return "pebble:" + t.TempDir() },
		"sqlite":   func(t *testing.T) string { return "sqlite:" + filepath.Join(t.TempDir(), "bank.db") },
		"postgres": func(t *testing.T) string { return postgrestest.DSN(t) }, // skips without a server
	} {
		t.Run(name, func(t *testing.T) { testServe(t, dsn(t)) })
	}
}

func testServe(t *testing.T, dsn string) {
	ctx := context.Background()
	exec, err := executor.Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer exec.Close()
	var runs []Summary
	for range 2 {
		s, err := run(ctx, exec, io.Discard)
		if err != nil {
			t.Fatal(err)
		}
		runs = append(runs, s)
	}
	// The notifier is down until healed: each run's 350.00 transfer is
	// retried, then parked.
	var healed atomic.Bool
	var sent atomic.Int32
	notifier := NotifierFunc(func(ctx context.Context, id, msg string) error {
		if !healed.Load() {
			return errors.New("notifier: smtp server unreachable")
		}
		sent.Add(1)
		return nil
	})
	srv, err := StartServer(ctx, exec, ServerConfig{AllowWrites: true, Notifier: notifier})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := srv.Stop(context.Background()); err != nil {
			t.Error(err)
		}
	}()
	hs := httptest.NewServer(srv.Handler)
	defer hs.Close()

	// Wait (bounded) for the workers: both alerts parked, balances built.
	waitFor(t, "two parked alerts", func() bool {
		ps, err := exec.ParkedEvents(ctx, AlertsKey)
		return err == nil && len(ps) == 2
	})
	alice := runs[1].Alice
	waitFor(t, "the balances read model", func() bool {
		st, body := httpGet(t, hs.URL+"/balances/"+alice.ID)
		return st == 200 && strings.Contains(body, fmt.Sprintf(`"balance":%d`, alice.Balance))
	})

	// Every query shape, forward and backward, against the store's own read.
	all := readAll(t, exec)
	shapes := []struct {
		q     url.Values
		match func(e *evento.Event) bool
	}{
		{url.Values{}, func(*evento.Event) bool { return true }},
		{url.Values{"type": {AccountAggregateType}}, func(e *evento.Event) bool { return e.AggregateType == AccountAggregateType }},
		{url.Values{"type": {AccountAggregateType}, "id": {alice.ID}}, func(e *evento.Event) bool { return e.AggregateID == alice.ID }},
		{url.Values{"type": {AccountAggregateType}, "name": {MoneyDepositedEventName}}, func(e *evento.Event) bool { return e.Name == MoneyDepositedEventName }},
		{url.Values{"filter": {"type=bank%2FAccount&name=TransferSent", "type=bank%2FAccount&id=" + runs[0].Bob.ID}},
			func(e *evento.Event) bool { return e.Name == TransferSentEventName || e.AggregateID == runs[0].Bob.ID }},
		{url.Values{"noRouting": {"true"}}, func(e *evento.Event) bool { return e.RoutingKey == "" }},
		{url.Values{"routing": {"eu"}, "type": {AccountAggregateType}}, func(e *evento.Event) bool { return e.RoutingKey == "eu" }},
	}
	for _, s := range shapes {
		var want []string
		for i := range all {
			if s.match(&all[i]) {
				want = append(want, all[i].ID.String())
			}
		}
		fwd, bwd := pageHTTP(t, hs.URL+"/evento/api/events", s.q, 3)
		if !slices.Equal(fwd, want) || !slices.Equal(bwd, want) {
			t.Errorf("shape %v: forward %v, backward %v; want %v", s.q, fwd, bwd, want)
		}
	}
	// The application's own handler pages the same way.
	fwd, bwd := pageHTTP(t, hs.URL+"/accounts/"+alice.ID+"/events", url.Values{}, 1)
	if len(fwd) != int(alice.Version) || !slices.Equal(fwd, bwd) {
		t.Errorf("/accounts/{id}/events: forward %v, backward %v; want %d events", fwd, bwd, alice.Version)
	}

	// Each kind of bad input: its status and problem code.
	for _, c := range []struct {
		path   string
		status int
		code   string
	}{
		{"/evento/api/events?after=not-a-cursor", 400, "invalid_cursor"},
		{"/evento/api/events?first=100000", 400, "page_too_large"},
		{"/evento/api/events?first=2&before=" + all[0].Cursor(), 400, "invalid_pagination"},
		{"/evento/api/events?name=MoneyDeposited", 400, "invalid_query"},
		{"/evento/api/aggregate?type=bank/Account&id=nobody", 404, "not_found"},
		{"/evento/api/parked", 400, "bad_request"},
		{"/accounts/" + alice.ID + "/events?last=x", 400, "invalid_pagination"},
		{"/accounts/" + alice.ID + "/events?before=xyz", 400, "invalid_cursor"},
		{"/balances/nobody", 404, "not_found"},
	} {
		res, err := http.Get(hs.URL + c.path)
		if err != nil {
			t.Fatal(err)
		}
		var p evhttp.Problem
		err = json.NewDecoder(res.Body).Decode(&p)
		res.Body.Close()
		if res.StatusCode != c.status || res.Header.Get("Content-Type") != "application/problem+json" || err != nil || p.Code != c.code || p.Status != c.status {
			t.Errorf("GET %s = %d %q %+v (%v); want %d %s", c.path, res.StatusCode, res.Header.Get("Content-Type"), p, err, c.status, c.code)
		}
	}

	// The admin UI in a browser.
	b := evhttptest.Browser(t, 2*time.Minute)
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(evhttptest.Load(b, hs.URL+"/"))
	if title, _ := evhttptest.Texts(b, "h1"); len(title) != 1 || title[0] != "Event log" {
		t.Fatalf("/ leads to %q; want the event log", title)
	}
	must(evhttptest.Load(b, hs.URL+"/evento/events?first=5"))
	var seen []string
	for range 10 {
		ids, err := evhttptest.IDs(b, "#events tbody tr[id]")
		must(err)
		seen = append(seen, ids...)
		if next, _ := evhttptest.IDs(b, "#page-next"); len(next) == 0 {
			break
		}
		must(evhttptest.ClickAndWait(b, "#page-next"))
	}
	if len(seen) != len(all) || seen[0] != "ev-"+all[0].ID.String() {
		t.Fatalf("UI forward: %d rows, want %d", len(seen), len(all))
	}
	must(evhttptest.ClickAndWait(b, "#page-prev"))
	if ids, _ := evhttptest.IDs(b, "#events tbody tr[id]"); len(ids) == 0 || !slices.Contains(seen, ids[0]) {
		t.Fatalf("UI backward: rows %v", ids)
	}
	must(evhttptest.ClickAndWait(b, "#events tbody a.agg"))
	if data, _ := evhttptest.Texts(b, "#events pre.data"); len(data) == 0 || !strings.Contains(data[0], `"Owner"`) {
		t.Fatalf("aggregate page data %q", data)
	}
	must(evhttptest.ClickAndWait(b, "#nav-subscribers"))
	must(evhttptest.ClickAndWait(b, "a.parked-link"))
	if errs, _ := evhttptest.Texts(b, "#parked td.err"); len(errs) != 2 || !strings.Contains(errs[0], "smtp server unreachable") {
		t.Fatalf("parked page: %q", errs)
	}
	healed.Store(true)
	must(evhttptest.ClickAndWait(b, "#replay-all"))
	if flash, _ := evhttptest.Texts(b, "#flash"); len(flash) != 1 || flash[0] != "replayed 2" {
		t.Fatalf("after replay: %q", flash)
	}
	if ps, err := exec.ParkedEvents(ctx, AlertsKey); err != nil || len(ps) != 0 || sent.Load() != 2 {
		t.Fatalf("after replay: %d parked (%v), %d alerts sent; want 0 and 2", len(ps), err, sent.Load())
	}
}

// waitFor polls cond until it holds, failing the test after a minute.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func httpGet(t *testing.T, u string) (int, string) {
	t.Helper()
	res, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

func readAll(t *testing.T, exec evento.Executor) []evento.Event {
	var all []evento.Event
	after := ""
	for {
		p, err := exec.Read(context.Background(), evento.All().First(100, after))
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, p.Events...)
		if !p.PageInfo.HasNextPage {
			return all
		}
		after = p.PageInfo.EndCursor
	}
}

// pageHTTP pages u forward (first/after) to the end and backward
// (last/before) to the start, returning the event ids seen each way in
// ascending order.
func pageHTTP(t *testing.T, u string, q url.Values, size int) (fwd, bwd []string) {
	t.Helper()
	type conn struct {
		Edges []struct {
			Node evhttp.Event `json:"node"`
		} `json:"edges"`
		PageInfo evhttp.PageInfo `json:"pageInfo"`
	}
	page := func(v url.Values) conn {
		st, body := httpGet(t, u+"?"+v.Encode())
		var c conn
		if err := json.Unmarshal([]byte(body), &c); st != 200 || err != nil {
			t.Fatalf("GET %s?%s = %d %s", u, v.Encode(), st, body)
		}
		return c
	}
	with := func(k1, v1, k2, v2 string) url.Values {
		v := url.Values{}
		for k, vs := range q {
			v[k] = vs
		}
		v.Set(k1, v1)
		if v2 != "" {
			v.Set(k2, v2)
		}
		return v
	}
	for after := ""; ; {
		c := page(with("first", fmt.Sprint(size), "after", after))
		for _, e := range c.Edges {
			fwd = append(fwd, e.Node.ID)
		}
		if !c.PageInfo.HasNextPage {
			break
		}
		after = c.PageInfo.EndCursor
	}
	for before := ""; ; {
		c := page(with("last", fmt.Sprint(size), "before", before))
		var ids []string
		for _, e := range c.Edges {
			ids = append(ids, e.Node.ID)
		}
		bwd = append(ids, bwd...)
		if !c.PageInfo.HasPreviousPage {
			break
		}
		before = c.PageInfo.StartCursor
	}
	return fwd, bwd
}
