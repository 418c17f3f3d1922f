package evhttp_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/evento-go/evento/evhttp"
	"github.com/evento-go/evento/evhttp/evhttptest"
	"github.com/evento-go/evento/subscription"
)

// TestBrowser drives the UI in headless Chromium: the log pages both ways,
// the filter form narrows it, an aggregate page shows its decoded events,
// and a parked event is replayed from the parked page.
func TestBrowser(t *testing.T) {
	ctx := evhttptest.Browser(t, 90*time.Second)
	exec := backend(t, "pebble")
	all := fixture(t, exec)
	sub, healed := parkOne(t, exec)
	mux := http.NewServeMux()
	mux.Handle("/ui/", http.StripPrefix("/ui", evhttp.New(exec, evhttp.Options{
		AllowWrites: true, UIPageSize: 5, Subscriptions: []*subscription.Subscription{sub},
	})))
	srv := httptest.NewServer(mux)
	defer srv.Close()

	var want []string
	for _, e := range all {
		want = append(want, "ev-"+e.ID.String())
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	rows := func() []string {
		t.Helper()
		ids, err := evhttptest.IDs(ctx, "#events tbody tr[id]")
		must(err)
		return ids
	}

	// The log, forward with "next" to the end.
	must(evhttptest.Load(ctx, srv.URL+"/ui/"))
	var fwd []string
	for range 10 {
		fwd = append(fwd, rows()...)
		next, err := evhttptest.IDs(ctx, "#page-next")
		must(err)
		if len(next) == 0 {
			break
		}
		must(evhttptest.ClickAndWait(ctx, "#page-next"))
	}
	if !slices.Equal(fwd, want) {
		t.Fatalf("forward through the log: %v\nwant %v", fwd, want)
	}
	// Backward with "previous" from the last page.
	must(evhttptest.ClickAndWait(ctx, "#page-last"))
	var bwd []string
	for range 10 {
		bwd = append(rows(), bwd...)
		prev, err := evhttptest.IDs(ctx, "#page-prev")
		must(err)
		if len(prev) == 0 {
			break
		}
		must(evhttptest.ClickAndWait(ctx, "#page-prev"))
	}
	if !slices.Equal(bwd, want) {
		t.Fatalf("backward through the log: %v\nwant %v", bwd, want)
	}

	// The filter form: deposits of routing key eu.
	must(chromedp.Do(ctx,
		chromedp.SendKeys(chromedp.CSS("#f-type"), accountType),
		chromedp.SendKeys(chromedp.CSS("#f-name"), "Deposited"),
		chromedp.SendKeys(chromedp.CSS("#f-routing"), "eu"),
	))
	must(evhttptest.ClickAndWait(ctx, "#f-submit"))
	names, err := evhttptest.Texts(ctx, "#events tbody td.name")
	must(err)
	if len(names) != 5 || slices.ContainsFunc(names, func(n string) bool { return n != "Deposited" }) {
		t.Fatalf("filtered page: names %v; want 5 × Deposited (6 match, pages of 5)", names)
	}
	must(evhttptest.ClickAndWait(ctx, "#page-next"))
	if names, _ = evhttptest.Texts(ctx, "#events tbody td.name"); len(names) != 1 {
		t.Fatalf("second filtered page: %v; want the 6th deposit", names)
	}
	if v, err := chromedp.Run(ctx, chromedp.Value(chromedp.CSS("#f-routing"))); err != nil || v != "eu" {
		t.Fatalf("filter form lost the routing key on the next page: %q %v", v, err)
	}

	// An aggregate page, from a row's link.
	must(evhttptest.ClickAndWait(ctx, "#events tbody a.agg"))
	ver, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("#agg-version")))
	must(err)
	data, err := evhttptest.Texts(ctx, "#events pre.data")
	must(err)
	if ver != "4" || len(data) != 4 || !strings.Contains(data[1], `"amount": 20`) || !strings.Contains(data[0], `"owner"`) {
		t.Fatalf("aggregate page: version %q, data %q", ver, data)
	}

	// Subscribers, then the parked event, replayed.
	must(evhttptest.ClickAndWait(ctx, "#nav-subscribers"))
	keys, err := evhttptest.Texts(ctx, "#subscribers td.key")
	must(err)
	if !slices.Equal(keys, []string{"totals"}) {
		t.Fatalf("subscribers %v", keys)
	}
	must(evhttptest.ClickAndWait(ctx, "a.parked-link"))
	errs, err := evhttptest.Texts(ctx, "#parked td.err")
	must(err)
	if len(errs) != 1 || !strings.Contains(errs[0], "downstream unavailable") {
		t.Fatalf("parked page errors %v", errs)
	}
	healed.Store(true)
	must(evhttptest.ClickAndWait(ctx, "#replay-all"))
	flash, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("#flash")))
	must(err)
	if flash != "replayed 1" {
		t.Fatalf("after replay: flash %q", flash)
	}
	if ids, _ := evhttptest.IDs(ctx, "#no-parked"); len(ids) != 1 {
		t.Fatal("after replay the parked page still lists events")
	}
	if ps, err := exec.ParkedEvents(context.Background(), "totals"); err != nil || len(ps) != 0 {
		t.Fatalf("store after replay: %d parked, %v", len(ps), err)
	}
}
