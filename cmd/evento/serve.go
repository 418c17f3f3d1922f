package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/spf13/cobra"

	"github.com/evento-go/evento/evhttp"
	"github.com/evento-go/evento/otelevento"
	"github.com/evento-go/evento/otelevento/otelprom"
)

func init() { register(newServeCmd) }

func newServeCmd(a *app) *cobra.Command {
	var addr, prefix string
	var allowWrites, metrics bool
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Serve the store's read API and admin web UI over HTTP",
		Long: `serve serves the store over HTTP until interrupted: the JSON read API
(/api/events, /api/aggregate, /api/aggregates, /api/subscribers, /api/parked;
errors as application/problem+json) and the admin web UI (the event log with
filters and paging both ways, aggregates with their decoded events,
subscribers with their lag, parked events). Nothing is fetched from the
network; the read views work without JavaScript.

The store is opened read-only unless --allow-writes, which enables discarding
parked events from the UI and the API (same-origin POSTs only). Replay runs a
subscription's handlers, which live in the application: mount evhttp.New in the
application with Options.Subscriptions for it, or use ` + "`evento parked replay`" + `.
Bind to a public address only behind the application's own authentication.

/metrics (under --prefix too) serves Prometheus metrics unless --metrics=false:
each subscriber's pending events, lag and parked events read from the store at
every scrape (evento_subscription_pending, evento_subscription_lag_seconds,
evento_subscription_parked), the reads the API and UI make
(evento_read_duration_seconds, evento_read_events_total), and the Go runtime's.`,
		Example: `  evento serve                                  # http://127.0.0.1:8080/
  evento serve --addr :9000 --dsn sqlite:bank.db
  evento serve --allow-writes --prefix /evento`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if prefix != "" && (prefix[0] != '/' || prefix[len(prefix)-1] == '/') {
				return usagef("--prefix %q must start with / and not end with one", prefix)
			}
			ctx := cmd.Context()
			open := a.openRead
			if allowWrites {
				open = a.openWrite
			}
			exec, err := open(ctx)
			if err != nil {
				return err
			}
			defer exec.Close()
			logger := slog.New(slog.NewTextHandler(a.stderr, nil))
			mux := http.NewServeMux()
			if metrics {
				mp, mh, err := otelprom.New()
				if err != nil {
					return err
				}
				defer mp.Shutdown(context.Background())
				exec = otelevento.Wrap(exec, otelevento.WithMeterProvider(mp))
				reg, err := otelevento.ObserveSubscriptions(exec, otelevento.WithMeterProvider(mp))
				if err != nil {
					return err
				}
				defer reg.Unregister()
				mux.Handle("GET "+prefix+"/metrics", mh)
			}
			var h http.Handler = evhttp.New(exec, evhttp.Options{AllowWrites: allowWrites, Logger: logger})
			if prefix != "" {
				h = http.StripPrefix(prefix, h)
			}
			mux.Handle(prefix+"/", h)
			ln, err := net.Listen("tcp", addr)
			if err != nil {
				return fmt.Errorf("listen on %s: %w", addr, err)
			}
			srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, ErrorLog: slog.NewLogLogger(logger.Handler(), slog.LevelWarn)}
			mode := "read-only"
			if allowWrites {
				mode = "writes enabled"
			}
			fmt.Fprintf(a.stdout, "serving http://%s%s/ (%s); interrupt to stop\n", ln.Addr(), prefix, mode)
			done := make(chan error, 1)
			go func() { done <- srv.Serve(ln) }()
			select {
			case err := <-done:
				return err
			case <-ctx.Done():
			}
			sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			err = srv.Shutdown(sctx)
			if serr := <-done; !errors.Is(serr, http.ErrServerClosed) && err == nil {
				err = serr
			}
			return err
		},
	}
	f := cmd.Flags()
	f.StringVar(&addr, "addr", "127.0.0.1:8080", "address to listen on")
	f.StringVar(&prefix, "prefix", "", "path prefix to serve under (e.g. /evento)")
	f.BoolVar(&allowWrites, "allow-writes", false, "enable discarding parked events (opens the store for writing)")
	f.BoolVar(&metrics, "metrics", true, "serve Prometheus metrics at /metrics (under --prefix)")
	return cmd
}
