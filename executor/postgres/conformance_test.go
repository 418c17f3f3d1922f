package postgres_test

import (
	"context"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/evento-go/evento"
	"github.com/evento-go/evento/executor/executortest"
	"github.com/evento-go/evento/executor/postgres"
	"github.com/evento-go/evento/executor/postgres/postgrestest"
	"github.com/jackc/pgx/v5"
)

// harness opens stores on a fresh schema whose DSN carries the options in
// query (ordering=lock, a session's default isolation…). The stress test's
// executors and child processes open that DSN with executor.Open.
func harness(query url.Values, opts ...postgres.Option) executortest.Harness {
	return executortest.Harness{
		NewStore: func(t *testing.T) executortest.OpenFunc {
			dsn := dsnWith(t, query)
			return func(ctx context.Context) (evento.Executor, error) {
				return postgres.Open(ctx, dsn, opts...)
			}
		},
		// The stress test opens two executors and two child processes on
		// this DSN: pools larger than the default (4 on 2 cores) let more
		// commits and reads overlap, within the server's 100 connections.
		DSN: func(t *testing.T) string {
			q := url.Values{"pool_max_conns": {"12"}}
			for k, vs := range query {
				q[k] = vs
			}
			return dsnWith(t, q)
		},
	}
}

// dsnWith returns a DSN for a fresh schema with query's options added.
func dsnWith(t *testing.T, query url.Values) string {
	t.Helper()
	dsn := postgrestest.DSN(t)
	if len(query) == 0 {
		return dsn
	}
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatalf("parse test DSN: %v", err)
	}
	q := u.Query()
	for k, vs := range query {
		q[k] = vs
	}
	// url.Values.Encode writes a space as '+', which pgx passes on as a
	// '+': spaces (in options) must be %20.
	u.RawQuery = strings.ReplaceAll(q.Encode(), "+", "%20")
	return u.String()
}

func TestConformance(t *testing.T) {
	executortest.Run(t, harness(nil))
}

func TestConformanceAdvisoryLock(t *testing.T) {
	executortest.Run(t, harness(url.Values{"ordering": {"lock"}}))
}

// isolation returns the DSN options that make every session's default
// transaction isolation level the given one, and checks on a plain
// connection that the server applies them.
func isolation(t *testing.T, level string) url.Values {
	t.Helper()
	q := url.Values{"options": {`-c default_transaction_isolation=` + escapeOption(level)}}
	u, err := url.Parse(postgrestest.BaseDSN())
	if err != nil {
		t.Fatalf("parse base DSN: %v", err)
	}
	bq := u.Query()
	bq.Set("options", q.Get("options"))
	u.RawQuery = strings.ReplaceAll(bq.Encode(), "+", "%20")
	postgrestest.Require(t)
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, u.String())
	if err != nil {
		t.Fatalf("connect with options %q: %v", q.Get("options"), err)
	}
	defer conn.Close(context.Background())
	var got string
	if err := conn.QueryRow(ctx, "SHOW default_transaction_isolation").Scan(&got); err != nil {
		t.Fatalf("SHOW default_transaction_isolation: %v", err)
	}
	if got != level {
		t.Fatalf("a session opened with options %q has default_transaction_isolation %q, want %q", q.Get("options"), got, level)
	}
	return q
}

// escapeOption escapes spaces in a -c value the way libpq's options wants.
func escapeOption(v string) string {
	out := make([]byte, 0, len(v)+2)
	for i := 0; i < len(v); i++ {
		if v[i] == ' ' || v[i] == '\\' {
			out = append(out, '\\')
		}
		out = append(out, v[i])
	}
	return string(out)
}

// TestConformanceRepeatableRead runs the event store part of the suite
// (with the stress test) with every session defaulting to repeatable read:
// evento's reads and writes must not depend on the session's default
// isolation.
func TestConformanceRepeatableRead(t *testing.T) {
	executortest.RunEvents(t, harness(isolation(t, "repeatable read")))
}

// TestConformanceSerializable is TestConformanceRepeatableRead with
// serializable.
func TestConformanceSerializable(t *testing.T) {
	executortest.RunEvents(t, harness(isolation(t, "serializable")))
}
