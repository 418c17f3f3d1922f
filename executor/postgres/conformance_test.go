package postgres_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/evento-go/evento"
	"github.com/evento-go/evento/executor"
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
	h := harness(isolation(t, "repeatable read"))
	t.Run("Events", func(t *testing.T) { executortest.RunEvents(t, h) })
}

// TestConformanceSerializable is TestConformanceRepeatableRead with
// serializable.
func TestConformanceSerializable(t *testing.T) {
	h := harness(isolation(t, "serializable"))
	t.Run("Events", func(t *testing.T) { executortest.RunEvents(t, h) })
}

// envAdminDSN names the environment variable holding a DSN of a role
// allowed to create roles (CREATEROLE), for TestConformanceReaderRole. By
// default the test uses the base test DSN, whose role may lack it.
const envAdminDSN = "EVENTO_POSTGRES_ADMIN_DSN"

// TestConformanceReaderRole runs the stress test with its readers connected
// as another role: not a superuser, not the schema's owner, granted only
// USAGE on the schema and SELECT on its tables, and whose sessions default
// to repeatable read. It must see every event the writers committed.
func TestConformanceReaderRole(t *testing.T) {
	postgrestest.Require(t)
	admin := strings.TrimSpace(os.Getenv(envAdminDSN))
	if admin == "" {
		admin = postgrestest.BaseDSN()
	}
	ctx := t.Context()
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		t.Fatalf("connect as the admin role (%s): %v", envAdminDSN, err)
	}
	defer conn.Close(context.Background())
	var can bool
	if err := conn.QueryRow(ctx, "SELECT rolsuper OR rolcreaterole FROM pg_roles WHERE rolname = current_user").Scan(&can); err != nil {
		t.Fatalf("read the admin role's privileges: %v", err)
	}
	if !can {
		t.Skipf("the role of %s cannot create roles: set %s to the DSN of a role with CREATEROLE (or grant it: ALTER ROLE evento CREATEROLE)", executor.Redact(admin), envAdminDSN)
	}
	var rnd [8]byte
	_, _ = rand.Read(rnd[:])
	role := "evt_reader_" + hex.EncodeToString(rnd[:4])
	password := hex.EncodeToString(rnd[4:])
	for _, sql := range []string{
		"CREATE ROLE " + role + " LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD '" + password + "'",
		"ALTER ROLE " + role + " SET default_transaction_isolation = 'repeatable read'",
	} {
		if _, err := conn.Exec(ctx, sql); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	// Registered before the schemas' cleanups, so it runs after them.
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		c, err := pgx.Connect(ctx, admin)
		if err != nil {
			t.Errorf("drop role %s: %v", role, err)
			return
		}
		defer c.Close(context.Background())
		if _, err := c.Exec(ctx, "DROP ROLE IF EXISTS "+role); err != nil {
			t.Errorf("drop role %s: %v", role, err)
		}
	})
	h := harness(nil)
	h.ReaderDSN = func(t *testing.T, dsn string) string {
		u, err := url.Parse(dsn)
		if err != nil {
			t.Fatalf("parse DSN: %v", err)
		}
		schema := pgx.Identifier{u.Query().Get("schema")}.Sanitize()
		owner, err := pgx.Connect(ctx, postgrestest.BaseDSN())
		if err != nil {
			t.Fatalf("connect as the schema's owner: %v", err)
		}
		defer owner.Close(context.Background())
		for _, sql := range []string{
			"GRANT USAGE ON SCHEMA " + schema + " TO " + role,
			"GRANT SELECT ON ALL TABLES IN SCHEMA " + schema + " TO " + role,
		} {
			if _, err := owner.Exec(ctx, sql); err != nil {
				t.Fatalf("%s: %v", sql, err)
			}
		}
		u.User = url.UserPassword(role, password)
		return u.String()
	}
	t.Run("Events", func(t *testing.T) { executortest.RunStress(t, h) })
}
