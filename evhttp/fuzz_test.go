package evhttp_test

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"

	"github.com/evento-go/evento/evhttp"
)

// FuzzQueryParams sends arbitrary query strings to every read route of the
// API and the UI: no panic, and every answer is 200 or a 4xx problem, never
// a 5xx (the store is open and healthy, so any failure is the input's).
func FuzzQueryParams(f *testing.F) {
	exec := backend(f, "pebble")
	all := fixture(f, exec)
	h := evhttp.New(exec, evhttp.Options{})
	for _, s := range []string{
		"", "first=2", "last=2&before=" + all[3].Cursor(), "after=" + all[1].Cursor() + "&first=1",
		"type=test/Account&id=acc-1", "type=test/Account&name=Deposited&routing=eu", "noRouting=true",
		"filter=type%3Dtest%252FLedger", "filter=%25", "first=99999999999999999999", "after=AAAA",
		"type=%00", "routing=eu&noRouting=on", "first=1&last=1", "before=" + all[0].Cursor()[:5],
	} {
		f.Add(s)
	}
	routes := []string{"/api/events", "/api/aggregate", "/api/aggregates", "/api/parked", "/events", "/aggregate", "/aggregates", "/parked"}
	f.Fuzz(func(t *testing.T, raw string) {
		if _, err := url.ParseQuery(raw); err != nil {
			// Go's server also answers bad escapes in the query; the
			// handler must still not fail on what it then sees.
			raw = url.Values{"after": {raw}}.Encode()
		}
		for _, route := range routes {
			req := httptest.NewRequest(http.MethodGet, "/", nil)
			req.URL.Path = route
			req.URL.RawQuery = raw
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != 200 && (rec.Code < 400 || rec.Code > 499) {
				t.Fatalf("GET %s?%s = %d %s", route, raw, rec.Code, rec.Body)
			}
			if rec.Code >= 400 && route[:5] == "/api/" && rec.Header().Get("Content-Type") != "application/problem+json" {
				t.Fatalf("GET %s?%s = %d with content type %q", route, raw, rec.Code, rec.Header().Get("Content-Type"))
			}
		}
	})
}
