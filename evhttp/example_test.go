package evhttp_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"

	"github.com/evento-go/evento"
	"github.com/evento-go/evento/cursor"
	"github.com/evento-go/evento/evhttp"
	"github.com/evento-go/evento/executor"
)

// An application's own handler that pages an aggregate type's events:
// the Relay arguments from the query string, the read, and one call that
// writes the JSON connection or the problem.
func ExampleWritePage() {
	ctx := context.Background()
	exec, err := executor.Open(ctx, "pebble::memory:")
	if err != nil {
		panic(err)
	}
	defer exec.Close()
	data, _ := evento.Marshal(map[string]any{"owner": "ada"})
	if err := exec.Write(ctx, []evento.Event{{AggregateType: "shop/Cart", AggregateID: "c1", Version: 1, Name: "CartOpened", Data: data}}); err != nil {
		panic(err)
	}

	carts := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		args, err := cursor.FromValues(r.URL.Query(), 0)
		if err != nil {
			evhttp.WriteError(w, r, err)
			return
		}
		page, err := exec.Read(r.Context(), evento.ByType("shop/Cart").Page(args))
		evhttp.WritePage(w, r, page, err)
	})

	for _, target := range []string{"/carts?first=10", "/carts?after=garbage"} {
		rec := httptest.NewRecorder()
		carts.ServeHTTP(rec, httptest.NewRequest("GET", target, nil))
		fmt.Println(rec.Code, rec.Header().Get("Content-Type"))
	}
	st, msg := evhttp.Status(fmt.Errorf("sqlite executor: read: %w", evento.ErrInvalidCursor))
	fmt.Println(st, msg)
	// Output:
	// 200 application/json
	// 400 application/problem+json
	// 400 invalid cursor
}
