// Command bank is a small bank on evento: it opens accounts, deposits,
// withdraws within an overdraft limit, transfers between accounts as one
// atomic batch, and prints balances and versions.
//
// It stores events where EVENTO_DSN says (pebble:<dir>, sqlite:<file>,
// postgres://…), by default in the embedded Pebble directory .evento/data
// under the working directory, so it runs with no setup. Each run opens new
// accounts, so it can be run again and again.
//
// With -serve ADDR it then stays up as a server: two workers (the balances
// read model and the large-movement alerts) run in the background, and
// ADDR serves the evento read API and admin UI under /evento/ (package
// evhttp), an account's balance from the read model at /balances/{id}, and
// an application handler that pages one account's events at
// /accounts/{id}/events, and Prometheus metrics at /metrics (the store's
// writes and reads, the commands, the workers' handler calls, leases,
// retries and parked events, and each subscription's lag, package
// otelevento). -allow-writes lets the UI replay and discard parked events.
//
//	go run ./examples/bank -serve 127.0.0.1:8080
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"go.opentelemetry.io/otel/metric"

	"github.com/evento-go/evento"
	"github.com/evento-go/evento/aggregator"
	"github.com/evento-go/evento/cursor"
	"github.com/evento-go/evento/evhttp"
	"github.com/evento-go/evento/executor"
	_ "github.com/evento-go/evento/executor/pebble" // registered for executor.Open
	_ "github.com/evento-go/evento/executor/postgres"
	_ "github.com/evento-go/evento/executor/sqlite"
	"github.com/evento-go/evento/otelevento"
	"github.com/evento-go/evento/otelevento/otelprom"
	"github.com/evento-go/evento/subscription"
)

// defaultDSN is the embedded Pebble directory used without EVENTO_DSN:
// .evento/data under the working directory, the same default as the evento
// CLI, so `go run ./cmd/evento events` shows what this program wrote.
func defaultDSN() string {
	return "pebble:" + filepath.Join(".evento", "data")
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	addr := flag.String("serve", "", "after the run, serve the read API and admin UI on this address (e.g. 127.0.0.1:8080) until interrupted")
	allowWrites := flag.Bool("allow-writes", false, "with -serve: let the admin UI replay and discard parked events")
	flag.Parse()
	dsn := os.Getenv("EVENTO_DSN")
	if dsn == "" {
		dsn = defaultDSN()
	}
	run := openAndRun
	if *addr != "" {
		run = func(ctx context.Context, dsn string, w io.Writer) error {
			return openAndServe(ctx, dsn, *addr, *allowWrites, w)
		}
	}
	if err := run(ctx, dsn, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "bank:", err)
		os.Exit(1)
	}
}

func openAndRun(ctx context.Context, dsn string, w io.Writer) error {
	exec, err := executor.Open(ctx, dsn)
	if err != nil {
		return err
	}
	s, err := run(ctx, exec, w)
	if err == nil {
		// The balances read model, kept effectively once by a
		// transactional subscription in the same store.
		_, err = projectBalances(ctx, exec, s, func(format string, args ...any) { fmt.Fprintf(w, format, args...) })
	}
	return errors.Join(err, exec.Close())
}

// AccountView is an account's balance and version as printed.
type AccountView struct {
	ID      string
	Owner   string
	Balance int64
	Version uint64
}

// Summary is the outcome of a run, for tests.
type Summary struct {
	Alice, Bob AccountView
	// Refused are the commands the business rules refused.
	Refused []error
}

// run is the example's flow against store.
func run(ctx context.Context, store aggregator.Store, w io.Writer) (Summary, error) {
	var s Summary
	bank := NewBank(store)

	alice, err := bank.Open(ctx, "Alice", 100_00)
	if err != nil {
		return s, err
	}
	bob, err := bank.Open(ctx, "Bob", 0)
	if err != nil {
		return s, err
	}
	fmt.Fprintf(w, "opened Alice %s (overdraft limit %s) and Bob %s\n", alice, money(100_00), bob)

	res, err := bank.Deposit(ctx, alice, 500_00)
	if err != nil {
		return s, err
	}
	fmt.Fprintf(w, "Alice deposits %s: balance %s, version %d\n", money(500_00), money(res.State.Balance), res.Version)

	if res, err = bank.Withdraw(ctx, alice, 200_00); err != nil {
		return s, err
	}
	fmt.Fprintf(w, "Alice withdraws %s: balance %s, version %d\n", money(200_00), money(res.State.Balance), res.Version)

	// Past the overdraft limit: refused by the business rule.
	if _, err = bank.Withdraw(ctx, alice, 500_00); !errors.Is(err, ErrInsufficientFunds) {
		return s, fmt.Errorf("withdrawal past the limit: want ErrInsufficientFunds, got %v", err)
	}
	s.Refused = append(s.Refused, err)
	fmt.Fprintf(w, "Alice withdraws %s: refused: %v\n", money(500_00), err)

	// Into the overdraft, within the limit, in one atomic batch.
	if err := bank.Transfer(ctx, alice, bob, 350_00); err != nil {
		return s, err
	}
	fmt.Fprintf(w, "Alice transfers %s to Bob\n", money(350_00))

	if err = bank.Transfer(ctx, bob, alice, 1000_00); !errors.Is(err, ErrInsufficientFunds) {
		return s, fmt.Errorf("transfer past the limit: want ErrInsufficientFunds, got %v", err)
	}
	s.Refused = append(s.Refused, err)
	fmt.Fprintf(w, "Bob transfers %s to Alice: refused: %v\n", money(1000_00), err)

	for _, v := range []struct {
		id   string
		into *AccountView
	}{{alice, &s.Alice}, {bob, &s.Bob}} {
		a, version, err := bank.Account(ctx, v.id)
		if err != nil {
			return s, err
		}
		*v.into = AccountView{ID: a.ID, Owner: a.Owner, Balance: a.Balance, Version: version}
		fmt.Fprintf(w, "%-5s %s balance %9s  version %d\n", a.Owner, a.ID, money(a.Balance), version)
	}

	// Time travel: Alice's account as it was after her deposit.
	then, err := bank.AccountAt(ctx, alice, 2)
	if err != nil {
		return s, err
	}
	fmt.Fprintf(w, "Alice at version 2: balance %s\n", money(then.Balance))
	return s, nil
}

// ServerConfig configures the bank's HTTP server.
type ServerConfig struct {
	// AllowWrites lets the admin UI replay and discard parked events.
	AllowWrites bool
	// Notifier delivers the alerts; nil logs them.
	Notifier Notifier
	// Logger is the server's and the workers' logger; nil means
	// slog.Default().
	Logger *slog.Logger
	// MeterProvider meters the workers (otelevento.Instrument) and the
	// subscriptions' lag (otelevento.ObserveSubscriptions); nil means the
	// global provider. Wrap the executor with the same provider
	// (otelevento.Wrap) for the store's metrics.
	MeterProvider metric.MeterProvider
	// Metrics, when set, is served at /metrics (otelprom.New's handler).
	Metrics http.Handler
}

// Server is the bank's HTTP side: the workers and the handler.
type Server struct {
	// Handler serves /evento/ (the evento API and UI), /balances/{id} and
	// /accounts/{id}/events.
	Handler  http.Handler
	balances *subscription.Worker
	alerts   *subscription.Worker
	lag      metric.Registration
}

// StartServer starts the balances and alerts workers on exec and returns
// the server's handler. Stop stops the workers.
func StartServer(ctx context.Context, exec evento.Executor, cfg ServerConfig) (*Server, error) {
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	n := cfg.Notifier
	if n == nil {
		n = NotifierFunc(func(ctx context.Context, id, msg string) error {
			log.InfoContext(ctx, "bank: alert", slog.String("account", id), slog.String("message", msg))
			return nil
		})
	}
	// The read model lives in the store itself, under any wrapper
	// (otelevento.Wrap).
	store := exec
	for {
		u, ok := store.(interface{ Unwrap() evento.Executor })
		if !ok {
			break
		}
		store = u.Unwrap()
	}
	rm, err := balancesOn(ctx, store)
	if err != nil {
		return nil, err
	}
	var mopts []otelevento.Option
	if cfg.MeterProvider != nil {
		mopts = append(mopts, otelevento.WithMeterProvider(cfg.MeterProvider))
	}
	s := &Server{}
	if s.lag, err = otelevento.ObserveSubscriptions(exec, mopts...); err != nil {
		return nil, err
	}
	if s.balances, err = otelevento.Instrument(Balances(rm).Logger(log), mopts...).Start(ctx, exec); err != nil {
		return nil, errors.Join(err, s.lag.Unregister())
	}
	alerts := otelevento.Instrument(Alerts(n).Logger(log), mopts...)
	if s.alerts, err = alerts.Start(ctx, exec); err != nil {
		return nil, errors.Join(err, s.balances.Stop(ctx), s.lag.Unregister())
	}
	mux := http.NewServeMux()
	mux.Handle("/evento/", http.StripPrefix("/evento", evhttp.New(exec, evhttp.Options{
		AllowWrites:   cfg.AllowWrites,
		Subscriptions: []*subscription.Subscription{alerts},
		Logger:        log,
		Title:         "bank",
	})))
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/evento/", http.StatusFound)
	})
	if cfg.Metrics != nil {
		mux.Handle("GET /metrics", cfg.Metrics)
	}
	// The read model, as an application serves it.
	mux.HandleFunc("GET /balances/{id}", func(w http.ResponseWriter, r *http.Request) {
		n, ok, err := rm.balance(r.Context(), r.PathValue("id"))
		if err == nil && !ok {
			err = fmt.Errorf("bank: no balance for %s: %w", r.PathValue("id"), evento.ErrNotFound)
		}
		if err != nil {
			evhttp.WriteError(w, r, err)
			return
		}
		evhttp.WriteJSON(w, http.StatusOK, map[string]any{"id": r.PathValue("id"), "balance": n})
	})
	// An application's own paginated handler: two calls from evhttp.
	mux.HandleFunc("GET /accounts/{id}/events", func(w http.ResponseWriter, r *http.Request) {
		args, err := cursor.FromValues(r.URL.Query(), 0)
		if err != nil {
			evhttp.WriteError(w, r, err)
			return
		}
		page, err := exec.Read(r.Context(), evento.ByAggregate(AccountAggregateType, r.PathValue("id")).Page(args))
		evhttp.WritePage(w, r, page, err)
	})
	s.Handler = mux
	return s, nil
}

// Stop stops the workers, acknowledging what they handled, and the lag
// metrics' reads of the store.
func (s *Server) Stop(ctx context.Context) error {
	return errors.Join(s.alerts.Stop(ctx), s.balances.Stop(ctx), s.lag.Unregister())
}

// openAndServe runs the example's flow, then serves until ctx ends.
// The store's calls, the commands and the workers are metered from the
// start, for /metrics.
func openAndServe(ctx context.Context, dsn, addr string, allowWrites bool, w io.Writer) error {
	mp, metrics, err := otelprom.New()
	if err != nil {
		return err
	}
	defer mp.Shutdown(context.Background())
	raw, err := executor.Open(ctx, dsn)
	if err != nil {
		return err
	}
	defer raw.Close()
	exec := otelevento.Wrap(raw, otelevento.WithMeterProvider(mp))
	if _, err := run(ctx, exec, w); err != nil {
		return err
	}
	s, err := StartServer(ctx, exec, ServerConfig{AllowWrites: allowWrites, MeterProvider: mp, Metrics: metrics})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return errors.Join(fmt.Errorf("bank: listen on %s: %w", addr, err), s.Stop(context.Background()))
	}
	srv := &http.Server{Handler: s.Handler, ReadHeaderTimeout: 10 * time.Second}
	fmt.Fprintf(w, "serving the admin UI at http://%s/evento/, the API at http://%s/evento/api/events and metrics at http://%s/metrics; interrupt to stop\n", ln.Addr(), ln.Addr(), ln.Addr())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	select {
	case err = <-done:
	case <-ctx.Done():
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		err = srv.Shutdown(sctx)
		<-done
	}
	return errors.Join(err, s.Stop(context.Background()))
}
