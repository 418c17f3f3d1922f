package otelprom_test

import (
	"bufio"
	"context"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"

	"github.com/evento-go/evento"
	"github.com/evento-go/evento/executor/pebble"
	"github.com/evento-go/evento/otelevento"
	"github.com/evento-go/evento/otelevento/otelprom"
)

// Expose evento's metrics at /metrics for Prometheus: wrap the executor
// with a meter provider from otelprom.New, observe the subscriptions'
// lag, and serve the handler.
func Example() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "evento-otelprom")
	defer os.RemoveAll(dir)
	store, err := pebble.Open(ctx, dir)
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close()

	mp, metrics, err := otelprom.New()
	if err != nil {
		log.Fatal(err)
	}
	defer mp.Shutdown(ctx)
	exec := otelevento.Wrap(store, otelevento.WithMeterProvider(mp))
	lag, err := otelevento.ObserveSubscriptions(exec, otelevento.WithMeterProvider(mp))
	if err != nil {
		log.Fatal(err)
	}
	defer lag.Unregister()

	mux := http.NewServeMux()
	mux.Handle("/metrics", metrics)
	srv := httptest.NewServer(mux) // in a program: http.ListenAndServe(addr, mux)
	defer srv.Close()

	err = exec.Write(ctx, []evento.Event{
		{AggregateType: "bank/Account", AggregateID: "a1", Version: 1, Name: "Opened"},
		{AggregateType: "bank/Account", AggregateID: "a1", Version: 2, Name: "Deposited"},
	})
	if err != nil {
		log.Fatal(err)
	}

	resp, err := http.Get(srv.URL + "/metrics")
	if err != nil {
		log.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "evento_write_events_total") || strings.HasPrefix(line, "evento_write_duration_seconds_count") {
			// Drop the labels for a stable output.
			name, _, _ := strings.Cut(line, "{")
			fields := strings.Fields(line)
			fmt.Println(name, fields[len(fields)-1])
		}
	}
	// Output:
	// evento_write_duration_seconds_count 1
	// evento_write_events_total 2
}
