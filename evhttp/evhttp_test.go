package evhttp_test

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
	"strings"
	"sync/atomic"
	"testing"

	"github.com/evento-go/evento"
	"github.com/evento-go/evento/eventtype"
	"github.com/evento-go/evento/evhttp"
	"github.com/evento-go/evento/executor"
	_ "github.com/evento-go/evento/executor/pebble"
	_ "github.com/evento-go/evento/executor/postgres"
	"github.com/evento-go/evento/executor/postgres/postgrestest"
	_ "github.com/evento-go/evento/executor/sqlite"
	"github.com/evento-go/evento/subscription"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// The test's event payloads, registered as generated code would.
type opened struct {
	Owner string `json:"owner"`
	Limit int64  `json:"overdraftLimit,omitempty"`
}

type deposited struct {
	Amount int64 `json:"amount"`
	Note   string
}

const (
	accountType = "test/Account"
	ledgerType  = "test/Ledger" // not registered: renders as generic JSON
)

func init() {
	eventtype.Register(accountType, "Opened", func() any { return new(opened) })
	eventtype.Register(accountType, "Deposited", func() any { return new(deposited) })
}

// backend opens a fresh store of the named backend.
func backend(t testing.TB, name string) evento.Executor {
	t.Helper()
	var dsn string
	switch name {
	case "pebble":
		dsn = "pebble:" + t.TempDir()
	case "sqlite":
		dsn = "sqlite:" + filepath.Join(t.TempDir(), "ev.db")
	case "postgres":
		dsn = postgrestest.DSN(t)
	}
	exec, err := executor.Open(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { exec.Close() })
	return exec
}

var backends = []string{"pebble", "sqlite", "postgres"}

// fixture writes a small log: three accounts (two with routing key "eu",
// one with none), each opened and given deposits, and a ledger aggregate of
// an unregistered type. It returns the events in global order.
func fixture(t testing.TB, exec evento.Executor) []evento.Event {
	t.Helper()
	ctx := context.Background()
	mk := func(typ, id, name, rk string, v uint64, data any) evento.Event {
		b, err := evento.Marshal(data)
		if err != nil {
			t.Fatal(err)
		}
		return evento.Event{AggregateType: typ, AggregateID: id, Version: v, Name: name, RoutingKey: rk, Data: b,
			Metadata: evento.Metadata{Actor: "tester", Extra: map[string]string{"n": fmt.Sprint(v)}}}
	}
	for i, rk := range []string{"eu", "", "eu"} {
		id := fmt.Sprintf("acc-%d", i)
		batch := []evento.Event{mk(accountType, id, "Opened", rk, 1, opened{Owner: id, Limit: 100})}
		for v := uint64(2); v <= 4; v++ {
			batch = append(batch, mk(accountType, id, "Deposited", rk, v, deposited{Amount: int64(v * 10), Note: "n"}))
		}
		if err := exec.Write(ctx, batch); err != nil {
			t.Fatal(err)
		}
		if err := exec.Write(ctx, []evento.Event{mk(ledgerType, "main", "Posted", "", uint64(i+1), map[string]any{"line": i, "tags": []string{"a"}})}); err != nil {
			t.Fatal(err)
		}
	}
	var all []evento.Event
	after := ""
	for {
		p, err := exec.Read(ctx, evento.All().First(100, after))
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

func get(t testing.TB, h http.Handler, target string) (*http.Response, []byte) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, target, nil))
	res := rec.Result()
	b, _ := io.ReadAll(res.Body)
	return res, b
}

func decode[T any](t testing.TB, b []byte) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("decode %T: %v\n%s", v, err, b)
	}
	return v
}

func TestEventJSONShape(t *testing.T) {
	exec := backend(t, "pebble")
	all := fixture(t, exec)
	// The exact members of an event, camelCase, and no position.
	b, err := json.Marshal(evhttp.NewEvent(&all[1]))
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	want := []string{"id", "aggregateType", "aggregateId", "version", "name", "routingKey", "timestamp", "metadata", "cursor", "data"}
	if len(m) != len(want) {
		t.Errorf("event has members %v; want exactly %v", keys(m), want)
	}
	for _, k := range want {
		if _, ok := m[k]; !ok {
			t.Errorf("event lacks %q: %s", k, b)
		}
	}
	if strings.Contains(strings.ToLower(string(b)), "position") {
		t.Errorf("event JSON shows a position: %s", b)
	}
	// Data through the registered type: its json tags and Go field names.
	if got := string(m["data"]); got != `{"amount":20,"Note":"n"}` {
		t.Errorf("registered data = %s; want {\"amount\":20,\"Note\":\"n\"}", got)
	}
	if got := string(m["metadata"]); got != `{"actor":"tester","extra":{"n":"2"}}` {
		t.Errorf("metadata = %s", got)
	}
	ev := evhttp.NewEvent(&all[1])
	if ev.Cursor != all[1].Cursor() || ev.ID != all[1].ID.String() || ev.Version != 2 || ev.RoutingKey != "eu" || !ev.Timestamp.Equal(all[1].Timestamp) {
		t.Errorf("view %+v does not match event %+v", ev, all[1])
	}
	// An unregistered type renders its msgpack as generic JSON.
	for _, e := range all {
		if e.AggregateType == ledgerType {
			v := evhttp.NewEvent(&e)
			var d map[string]any
			if err := json.Unmarshal(v.Data, &d); err != nil || d["line"] == nil || fmt.Sprint(d["tags"]) != "[a]" {
				t.Errorf("generic data = %s (%v)", v.Data, err)
			}
			break
		}
	}
	// Bytes that are not msgpack: data null and a reason, never a panic.
	bad := all[0]
	bad.Data = []byte{0xc1, 0xff}
	if v := evhttp.NewEvent(&bad); string(v.Data) != "null" || v.DataError == "" {
		t.Errorf("undecodable payload: data %s, dataError %q", v.Data, v.DataError)
	}
	bad.Data = nil
	if v := evhttp.NewEvent(&bad); string(v.Data) != "null" || v.DataError != "" {
		t.Errorf("empty payload: data %s, dataError %q", v.Data, v.DataError)
	}
	// A registered type whose payload does not fit falls back to generic.
	odd := all[0]
	odd.Data, _ = evento.Marshal(map[string]any{"Owner": []int{1, 2}})
	if v := evhttp.NewEvent(&odd); string(v.Data) != `{"Owner":[1,2]}` {
		t.Errorf("misfit payload = %s; want the generic form", v.Data)
	}
}

func keys(m map[string]json.RawMessage) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

func TestConnectionShape(t *testing.T) {
	exec := backend(t, "pebble")
	all := fixture(t, exec)
	page, err := exec.Read(context.Background(), evento.All().First(2, ""))
	if err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	evhttp.WritePage(rec, httptest.NewRequest("GET", "/", nil), page, nil)
	if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
		t.Errorf("content type %q", ct)
	}
	var c struct {
		Edges []struct {
			Cursor string
			Node   map[string]any
		}
		PageInfo map[string]any `json:"pageInfo"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &c); err != nil {
		t.Fatal(err)
	}
	if len(c.Edges) != 2 || c.Edges[0].Cursor != all[0].Cursor() || c.Edges[1].Node["id"] != all[1].ID.String() {
		t.Fatalf("edges %+v", c.Edges)
	}
	if c.PageInfo["hasNextPage"] != true || c.PageInfo["hasPreviousPage"] != false || c.PageInfo["startCursor"] != all[0].Cursor() || c.PageInfo["endCursor"] != all[1].Cursor() {
		t.Errorf("pageInfo %v", c.PageInfo)
	}
	// An error instead of a page: problem+json.
	rec = httptest.NewRecorder()
	evhttp.WritePage(rec, httptest.NewRequest("GET", "/x", nil), evento.Page{}, fmt.Errorf("read: %w", evento.ErrInvalidCursor))
	if rec.Code != 400 || rec.Header().Get("Content-Type") != "application/problem+json" {
		t.Errorf("WritePage(err) = %d %q", rec.Code, rec.Header().Get("Content-Type"))
	}
}

func TestStatus(t *testing.T) {
	cases := []struct {
		err    error
		status int
		msg    string
	}{
		{nil, 200, "OK"},
		{fmt.Errorf("x: %w", evento.ErrInvalidCursor), 400, "invalid cursor"},
		{fmt.Errorf("x: %w", evento.ErrPageTooLarge), 400, "page size over the maximum"},
		{fmt.Errorf("x: %w", evento.ErrInvalidArgs), 400, "invalid pagination arguments"},
		{fmt.Errorf("x: %w", evento.ErrInvalidQuery), 400, "invalid query"},
		{&evento.InvalidEventError{Index: 1, Reason: "no name"}, 400, "invalid event"},
		{fmt.Errorf("x: %w", evento.ErrNotFound), 404, "not found"},
		{&evento.VersionConflictError{AggregateType: "a", AggregateID: "b"}, 409, "version conflict"},
		{&evento.RoutingKeyError{}, 409, "routing key differs from the aggregate's"},
		{fmt.Errorf("x: %w", evento.ErrLeaseLost), 409, "lease lost"},
		{fmt.Errorf("pebble executor: %w", evento.ErrClosed), 503, "store closed"},
		{fmt.Errorf("x: %w", executor.ErrNotMigrated), 503, "store schema is not migrated"},
		{fmt.Errorf("x: %w", context.DeadlineExceeded), 504, "timed out"},
		{fmt.Errorf("x: %w", evento.ErrDecode), 500, "stored data does not decode"},
		{errors.New("pq: relation evento.events does not exist (dsn postgres://u:secret@h)"), 500, "internal error"},
		{errors.Join(errors.New("other"), evento.ErrInvalidArgs), 400, "invalid pagination arguments"},
	}
	for _, c := range cases {
		st, msg := evhttp.Status(c.err)
		if st != c.status || msg != c.msg {
			t.Errorf("Status(%v) = %d %q; want %d %q", c.err, st, msg, c.status, c.msg)
		}
	}
}

// connection is the decoded shape of an events response.
type connection struct {
	Edges []struct {
		Cursor string       `json:"cursor"`
		Node   evhttp.Event `json:"node"`
	} `json:"edges"`
	PageInfo evhttp.PageInfo `json:"pageInfo"`
}

// pageAll pages the API forward with first=size to the end, then backward
// with last=size from the end, and returns the ids seen each way (the
// backward ones in ascending order).
func pageAll(t testing.TB, h http.Handler, path string, q url.Values, size int) (fwd, bwd []string) {
	t.Helper()
	after := ""
	for i := 0; ; i++ {
		v := cloneValues(q)
		v.Set("first", fmt.Sprint(size))
		if after != "" {
			v.Set("after", after)
		}
		res, b := get(t, h, path+"?"+v.Encode())
		if res.StatusCode != 200 {
			t.Fatalf("GET %s?%s = %d %s", path, v.Encode(), res.StatusCode, b)
		}
		c := decode[connection](t, b)
		for _, e := range c.Edges {
			fwd = append(fwd, e.Node.ID)
		}
		if i > 0 && !c.PageInfo.HasPreviousPage && len(c.Edges) > 0 {
			t.Errorf("forward page %d of %v: hasPreviousPage false after a cursor", i, q)
		}
		if !c.PageInfo.HasNextPage {
			break
		}
		after = c.PageInfo.EndCursor
	}
	before := ""
	for {
		v := cloneValues(q)
		v.Set("last", fmt.Sprint(size))
		if before != "" {
			v.Set("before", before)
		}
		res, b := get(t, h, path+"?"+v.Encode())
		if res.StatusCode != 200 {
			t.Fatalf("GET %s?%s = %d %s", path, v.Encode(), res.StatusCode, b)
		}
		c := decode[connection](t, b)
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

func cloneValues(v url.Values) url.Values {
	out := url.Values{}
	for k, vs := range v {
		out[k] = append([]string(nil), vs...)
	}
	return out
}

// shapes are the query shapes the API takes, with the filter that selects
// the same events in Go.
func shapes() []struct {
	name  string
	q     url.Values
	match func(e *evento.Event) bool
} {
	or := url.Values{}
	or.Add("filter", "type="+url.QueryEscape(accountType)+"&name=Opened")
	or.Add("filter", "type="+url.QueryEscape(ledgerType))
	orType := url.Values{"type": {accountType}, "id": {"acc-1"}, "filter": {"type=" + url.QueryEscape(ledgerType)}}
	return []struct {
		name  string
		q     url.Values
		match func(e *evento.Event) bool
	}{
		{"all", url.Values{}, func(e *evento.Event) bool { return true }},
		{"type", url.Values{"type": {accountType}}, func(e *evento.Event) bool { return e.AggregateType == accountType }},
		{"type+id", url.Values{"type": {accountType}, "id": {"acc-2"}}, func(e *evento.Event) bool { return e.AggregateID == "acc-2" }},
		{"type+name", url.Values{"type": {accountType}, "name": {"Deposited"}}, func(e *evento.Event) bool { return e.Name == "Deposited" }},
		{"routing", url.Values{"routing": {"eu"}}, func(e *evento.Event) bool { return e.RoutingKey == "eu" }},
		{"noRouting", url.Values{"noRouting": {"true"}}, func(e *evento.Event) bool { return e.RoutingKey == "" }},
		{"type+routing", url.Values{"type": {accountType}, "routing": {"eu"}}, func(e *evento.Event) bool { return e.AggregateType == accountType && e.RoutingKey == "eu" }},
		{"or", or, func(e *evento.Event) bool { return e.Name == "Opened" || e.AggregateType == ledgerType }},
		{"or+type+id+noRouting", func() url.Values { v := cloneValues(orType); v.Set("noRouting", "1"); return v }(), func(e *evento.Event) bool {
			return (e.AggregateID == "acc-1" || e.AggregateType == ledgerType) && e.RoutingKey == ""
		}},
	}
}

func TestAPIEventsEveryShapeBothWays(t *testing.T) {
	exec := backend(t, "pebble")
	all := fixture(t, exec)
	h := evhttp.New(exec, evhttp.Options{})
	for _, s := range shapes() {
		var want []string
		for i := range all {
			if s.match(&all[i]) {
				want = append(want, all[i].ID.String())
			}
		}
		if len(want) == 0 {
			t.Fatalf("%s: fixture has no matching events", s.name)
		}
		for _, size := range []int{1, 3, 100} {
			fwd, bwd := pageAll(t, h, "/api/events", s.q, size)
			if strings.Join(fwd, ",") != strings.Join(want, ",") {
				t.Errorf("%s, pages of %d forward: %v; want %v", s.name, size, fwd, want)
			}
			if strings.Join(bwd, ",") != strings.Join(want, ",") {
				t.Errorf("%s, pages of %d backward: %v; want %v", s.name, size, bwd, want)
			}
		}
	}
}

// badInputs are requests the API must refuse with a 4xx problem, with the
// code and status each gets on every backend.
var badInputs = []struct {
	target string
	status int
	code   string
}{
	{"/api/events?after=garbage", 400, "invalid_cursor"},
	{"/api/events?before=AAAA", 400, "invalid_cursor"},
	{"/api/events?first=5000", 400, "page_too_large"},
	{"/api/events?first=abc", 400, "invalid_pagination"},
	{"/api/events?first=-1", 400, "invalid_pagination"},
	{"/api/events?first=2&last=2", 400, "invalid_pagination"},
	{"/api/events?id=x", 400, "invalid_query"},
	{"/api/events?routing=eu&noRouting=true", 400, "invalid_query"},
	{"/api/events?noRouting=maybe", 400, "invalid_query"},
	{"/api/events?type=a&type=b", 400, "invalid_query"},
	{"/api/events?typo=1", 400, "invalid_query"},
	{"/api/events?filter=%25zz", 400, "invalid_query"},
	{"/api/events?filter=id%3Dx", 400, "invalid_query"},
	{"/api/events?filter=colour%3Dred", 400, "invalid_query"},
	{"/api/events?type=%FF", 400, "invalid_query"},
	{"/api/aggregate?type=test/Account", 400, "bad_request"},
	{"/api/aggregate?type=test/Account&id=nobody", 404, "not_found"},
	{"/api/aggregate?type=test/Account&id=acc-1&after=zzz", 400, "invalid_cursor"},
	{"/api/aggregates", 400, "bad_request"},
	{"/api/aggregates?type=test/Account&first=0", 400, "invalid_pagination"},
	{"/api/parked", 400, "bad_request"},
	{"/api/nothing", 404, "not_found"},
}

func TestAPIProblemsOnEveryBackend(t *testing.T) {
	for _, name := range backends {
		t.Run(name, func(t *testing.T) {
			exec := backend(t, name)
			fixture(t, exec)
			h := evhttp.New(exec, evhttp.Options{})
			// A cursor of another backend's shape must still be 400.
			for _, bi := range badInputs {
				res, b := get(t, h, bi.target)
				if res.StatusCode != bi.status {
					t.Errorf("GET %s = %d %s; want %d", bi.target, res.StatusCode, b, bi.status)
					continue
				}
				if ct := res.Header.Get("Content-Type"); ct != "application/problem+json" {
					t.Errorf("GET %s: content type %q", bi.target, ct)
				}
				p := decode[evhttp.Problem](t, b)
				_, title := evhttp.Status(nil)
				if p.Code != bi.code || p.Status != bi.status || p.Type != "about:blank" || p.Title == "" || p.Title == title {
					t.Errorf("GET %s: problem %+v; want code %s", bi.target, p, bi.code)
				}
				if p.Instance != strings.SplitN(bi.target, "?", 2)[0] {
					t.Errorf("GET %s: instance %q", bi.target, p.Instance)
				}
				// The title is the stable message of Status, whatever the backend.
				if _, msg := evhttp.Status(problemErr(p.Code)); msg != p.Title && problemErr(p.Code) != nil {
					t.Errorf("GET %s: title %q; Status says %q", bi.target, p.Title, msg)
				}
			}
			// Methods.
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/api/events", nil))
			if rec.Code != 405 || rec.Header().Get("Allow") == "" {
				t.Errorf("POST /api/events = %d, Allow %q", rec.Code, rec.Header().Get("Allow"))
			}
			// A closed store: 503, on every read route.
			if err := exec.Close(); err != nil {
				t.Fatal(err)
			}
			for _, target := range []string{"/api/events", "/api/aggregate?type=test/Account&id=acc-1", "/api/subscribers", "/api/parked?key=k", "/api/aggregates?type=test/Account"} {
				res, b := get(t, h, target)
				if res.StatusCode != 503 || decode[evhttp.Problem](t, b).Code != "store_closed" {
					t.Errorf("closed store: GET %s = %d %s; want 503 store_closed", target, res.StatusCode, b)
				}
			}
		})
	}
}

func problemErr(code string) error {
	switch code {
	case "invalid_cursor":
		return evento.ErrInvalidCursor
	case "page_too_large":
		return evento.ErrPageTooLarge
	case "invalid_pagination":
		return evento.ErrInvalidArgs
	case "invalid_query":
		return evento.ErrInvalidQuery
	case "not_found":
		return evento.ErrNotFound
	}
	return nil
}

func TestAPIAggregate(t *testing.T) {
	exec := backend(t, "pebble")
	all := fixture(t, exec)
	h := evhttp.New(exec, evhttp.Options{})
	res, b := get(t, h, "/api/aggregate?type=test/Account&id=acc-1&first=2")
	if res.StatusCode != 200 {
		t.Fatalf("%d %s", res.StatusCode, b)
	}
	a := decode[evhttp.Aggregate](t, b)
	if a.Version != 4 || a.AggregateID != "acc-1" || len(a.Events.Edges) != 2 || a.Events.Edges[1].Node.Version != 2 || !a.Events.PageInfo.HasNextPage {
		t.Fatalf("aggregate %+v", a)
	}
	// Page the history backward from the end.
	res, b = get(t, h, "/api/aggregate?type=test/Account&id=acc-1&last=3")
	a = decode[evhttp.Aggregate](t, b)
	if res.StatusCode != 200 || len(a.Events.Edges) != 3 || a.Events.Edges[0].Node.Version != 2 || !a.Events.PageInfo.HasPreviousPage {
		t.Fatalf("backward history %d %+v", res.StatusCode, a)
	}
	// Aggregate ids of a type, paged.
	res, b = get(t, h, "/api/aggregates?type=test/Account&first=2")
	ids := decode[evhttp.AggregateIDs](t, b)
	if res.StatusCode != 200 || strings.Join(ids.IDs, ",") != "acc-0,acc-1" || ids.Next != "acc-1" {
		t.Fatalf("ids %+v", ids)
	}
	_, b = get(t, h, "/api/aggregates?type=test/Account&first=2&after="+ids.Next)
	if ids = decode[evhttp.AggregateIDs](t, b); strings.Join(ids.IDs, ",") != "acc-2" || ids.Next != "" {
		t.Fatalf("second page of ids %+v", ids)
	}
	_ = all
}

// parkOne runs a subscription whose handler fails on acc-1's deposit of
// version 3 until healed, so that event is parked.
func parkOne(t testing.TB, exec evento.Executor) (*subscription.Subscription, *atomic.Bool) {
	t.Helper()
	healed := new(atomic.Bool)
	sub := subscription.New("totals").
		HandleAll(accountType, func(ctx context.Context, e *evento.Event) error {
			if e.AggregateID == "acc-1" && e.Version == 3 && !healed.Load() {
				return errors.New("totals: downstream unavailable")
			}
			return nil
		}).
		Retry(subscription.RetryPolicy{Initial: 1, Max: 1, MaxAttempts: 1}).
		OnExhausted(subscription.ParkEvent)
	if err := sub.CatchUp(context.Background(), exec); err != nil {
		t.Fatal(err)
	}
	ps, err := exec.ParkedEvents(context.Background(), "totals")
	if err != nil || len(ps) != 1 {
		t.Fatalf("parked %v, %v; want one event", ps, err)
	}
	return sub, healed
}

func post(h http.Handler, target string, form url.Values, header map[string]string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(http.MethodPost, target, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for k, v := range header {
		req.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

func TestSubscribersParkedReplayDiscard(t *testing.T) {
	exec := backend(t, "pebble")
	fixture(t, exec)
	sub, healed := parkOne(t, exec)

	ro := evhttp.New(exec, evhttp.Options{Subscriptions: []*subscription.Subscription{sub}})
	res, b := get(t, ro, "/api/subscribers")
	subs := decode[[]evhttp.Subscriber](t, b)
	if res.StatusCode != 200 || len(subs) != 1 || subs[0].Key != "totals" || subs[0].Parked != 1 || subs[0].Cursor == "" || subs[0].Token == 0 || subs[0].Pending != 0 || !strings.Contains(subs[0].Selection, accountType) {
		t.Fatalf("subscribers %d %+v", res.StatusCode, subs)
	}
	res, b = get(t, ro, "/api/parked?key=totals")
	pl := decode[evhttp.ParkedList](t, b)
	if res.StatusCode != 200 || len(pl.Events) != 1 || pl.Events[0].Event.AggregateID != "acc-1" || pl.Events[0].Event.Version != 3 ||
		!strings.Contains(pl.Events[0].Error, "downstream unavailable") || pl.Replayable || pl.Writable {
		t.Fatalf("parked %d %+v", res.StatusCode, pl)
	}
	// Read-only: every write is 403 problem+json and changes nothing.
	for _, target := range []string{"/api/parked/replay", "/api/parked/discard", "/parked/replay", "/parked/discard"} {
		rec := post(ro, target, url.Values{"key": {"totals"}, "id": {pl.Events[0].Event.ID}}, nil)
		if rec.Code != 403 || rec.Header().Get("Content-Type") != "application/problem+json" || decode[evhttp.Problem](t, rec.Body.Bytes()).Code != "writes_disabled" {
			t.Errorf("read-only POST %s = %d %s", target, rec.Code, rec.Body)
		}
	}
	rw := evhttp.New(exec, evhttp.Options{AllowWrites: true, Subscriptions: []*subscription.Subscription{sub}})
	// Cross-origin browser posts are refused even with writes enabled.
	for _, hdr := range []map[string]string{{"Sec-Fetch-Site": "cross-site"}, {"Origin": "https://evil.example", "Host": "example.com"}} {
		rec := post(rw, "/api/parked/replay", url.Values{"key": {"totals"}}, hdr)
		if rec.Code != 403 || decode[evhttp.Problem](t, rec.Body.Bytes()).Code != "cross_origin" {
			t.Errorf("cross-origin POST %v = %d %s", hdr, rec.Code, rec.Body)
		}
	}
	if rec := post(rw, "/api/parked/replay", url.Values{"key": {"other"}}, nil); rec.Code != 404 {
		t.Errorf("replay of an unregistered key = %d %s; want 404", rec.Code, rec.Body)
	}
	if rec := post(rw, "/api/parked/discard", url.Values{"key": {"totals"}, "id": {"nope"}}, nil); rec.Code != 400 {
		t.Errorf("discard with a bad id = %d; want 400", rec.Code)
	}
	if rec := post(rw, "/api/parked/discard", url.Values{"key": {"totals"}, "id": {"01ARZ3NDEKTSV4RRFFQ69G5FAV"}}, nil); rec.Code != 404 {
		t.Errorf("discard of a missing event = %d; want 404", rec.Code)
	}
	// Replay while the handler still fails: it stays parked.
	rec := post(rw, "/api/parked/replay", url.Values{"key": {"totals"}}, map[string]string{"Sec-Fetch-Site": "same-origin"})
	if rr := decode[evhttp.ReplayResult](t, rec.Body.Bytes()); rec.Code != 200 || rr.Replayed != 0 || rr.Failed != 1 {
		t.Fatalf("failing replay = %d %s", rec.Code, rec.Body)
	}
	healed.Store(true)
	rec = post(rw, "/api/parked/replay?key=totals", nil, nil)
	if rr := decode[evhttp.ReplayResult](t, rec.Body.Bytes()); rec.Code != 200 || rr.Replayed != 1 || rr.Failed != 0 {
		t.Fatalf("replay = %d %s", rec.Code, rec.Body)
	}
	if ps, _ := exec.ParkedEvents(context.Background(), "totals"); len(ps) != 0 {
		t.Fatalf("after replay %d parked", len(ps))
	}
	// Discard: park another and discard it through the UI's form.
	healed.Store(false)
	if err := exec.ResetSubscriber(context.Background(), "totals", 0, ""); err != nil {
		t.Fatal(err)
	}
	if err := sub.CatchUp(context.Background(), exec); err != nil {
		t.Fatal(err)
	}
	ps, _ := exec.ParkedEvents(context.Background(), "totals")
	if len(ps) != 1 {
		t.Fatalf("parked again: %d", len(ps))
	}
	rec = post(rw, "/parked/discard", url.Values{"key": {"totals"}, "partition": {"0"}, "id": {ps[0].Event.ID.String()}}, nil)
	if rec.Code != http.StatusSeeOther || !strings.HasPrefix(rec.Header().Get("Location"), "/parked?") {
		t.Fatalf("UI discard = %d, Location %q", rec.Code, rec.Header().Get("Location"))
	}
	if ps, _ := exec.ParkedEvents(context.Background(), "totals"); len(ps) != 0 {
		t.Fatalf("after discard %d parked", len(ps))
	}
}

func TestUIPagesUnderPrefix(t *testing.T) {
	exec := backend(t, "pebble")
	all := fixture(t, exec)
	parkOne(t, exec)
	mux := http.NewServeMux()
	mux.Handle("/admin/evento/", http.StripPrefix("/admin/evento", evhttp.New(exec, evhttp.Options{UIPageSize: 4})))
	srv := httptest.NewServer(mux)
	defer srv.Close()
	fetch := func(path string) (int, string, string) {
		res, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, res.Header.Get("Content-Type"), string(b)
	}
	for _, c := range []struct {
		path   string
		status int
		has    []string
	}{
		{"/admin/evento/", 200, []string{`href="/admin/evento/style.css"`, all[0].ID.String(), `id="page-next"`, "read-only", "acc-0"}},
		{"/admin/evento/events?type=test%2FAccount&name=Deposited&first=2", 200, []string{"Deposited", `value="Deposited"`, `id="page-next"`}},
		{"/admin/evento/events?type=test%2FLedger", 200, []string{"&#34;line&#34;"}},
		{"/admin/evento/aggregate?type=test%2FAccount&id=acc-2", 200, []string{`id="agg-version">4<`, "&#34;amount&#34;: 40", "actor tester"}},
		{"/admin/evento/aggregates?type=test%2FAccount", 200, []string{`/admin/evento/aggregate?type=test%2fAccount&amp;id=acc-1`}},
		{"/admin/evento/subscribers", 200, []string{"totals", `href="/admin/evento/parked?key=totals"`}},
		{"/admin/evento/parked?key=totals", 200, []string{"downstream unavailable", "writes enabled (Options.AllowWrites"}},
		{"/admin/evento/aggregate?type=test%2FAccount&id=nobody", 404, []string{"404 · not found"}},
		{"/admin/evento/events?after=bogus", 400, []string{"400 · invalid cursor"}},
		{"/admin/evento/nowhere", 404, []string{"not found"}},
	} {
		st, ct, body := fetch(c.path)
		if st != c.status {
			t.Errorf("GET %s = %d; want %d\n%s", c.path, st, c.status, body)
			continue
		}
		if !strings.HasPrefix(ct, "text/html") {
			t.Errorf("GET %s: content type %q", c.path, ct)
		}
		for _, s := range c.has {
			if !strings.Contains(body, s) {
				t.Errorf("GET %s: body lacks %q", c.path, s)
			}
		}
		if strings.Contains(body, "http://") || strings.Contains(body, "https://") {
			t.Errorf("GET %s: page refers to the network", c.path)
		}
		if strings.Contains(body, "<script") {
			t.Errorf("GET %s: page needs JavaScript", c.path)
		}
	}
	// A problem's instance is the path the client asked for, prefix included.
	if st, ct, body := fetch("/admin/evento/api/events?after=x"); st != 400 || ct != "application/problem+json" || decode[evhttp.Problem](t, []byte(body)).Instance != "/admin/evento/api/events" {
		t.Errorf("problem under a prefix: %d %q %s", st, ct, body)
	}
	if st, ct, body := fetch("/admin/evento/style.css"); st != 200 || !strings.HasPrefix(ct, "text/css") || !strings.Contains(body, "table") {
		t.Errorf("style.css: %d %q", st, ct)
	}
}

func TestUIPagingLinksWalkTheLogBothWays(t *testing.T) {
	exec := backend(t, "pebble")
	all := fixture(t, exec)
	h := evhttp.New(exec, evhttp.Options{UIPageSize: 3})
	// Follow "next" from the first page, then "previous" from the last.
	var fwd []string
	target := "/events"
	for range 20 {
		_, b := get(t, h, target)
		body := string(b)
		fwd = append(fwd, rowIDs(body)...)
		next := attr(body, `id="page-next"`)
		if next == "" {
			break
		}
		target = next
	}
	var bwd []string
	_, b := get(t, h, attr(string(b(t, h, "/events")), `id="page-last"`))
	body := string(b)
	for range 20 {
		bwd = append(rowIDs(body), bwd...)
		prev := attr(body, `id="page-prev"`)
		if prev == "" {
			break
		}
		_, bb := get(t, h, prev)
		body = string(bb)
	}
	var want []string
	for _, e := range all {
		want = append(want, e.ID.String())
	}
	if strings.Join(fwd, ",") != strings.Join(want, ",") || strings.Join(bwd, ",") != strings.Join(want, ",") {
		t.Fatalf("UI paging: forward %v\nbackward %v\nwant %v", fwd, bwd, want)
	}
}

func b(t testing.TB, h http.Handler, target string) []byte {
	_, body := get(t, h, target)
	return body
}

// rowIDs returns the event ids of a page's rows (id="ev-<ulid>").
func rowIDs(body string) []string {
	var out []string
	for _, part := range strings.Split(body, `id="ev-`)[1:] {
		out = append(out, part[:26])
	}
	return out
}

// attr returns the unescaped href of the element marked by marker.
func attr(body, marker string) string {
	i := strings.Index(body, marker)
	if i < 0 {
		return ""
	}
	j := strings.LastIndex(body[:i], `href="`)
	if j < 0 {
		return ""
	}
	href := body[j+len(`href="`):]
	href = href[:strings.IndexByte(href, '"')]
	return strings.ReplaceAll(href, "&amp;", "&")
}
