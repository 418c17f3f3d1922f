// Package postgrestest gives tests a fresh PostgreSQL schema to run against.
//
// The server comes from the environment variable EVENTO_POSTGRES_DSN, by
// default postgres://evento:evento@127.0.0.1:5432/evento_test?sslmode=disable.
// When the server is unreachable the test is skipped with a message that says
// how to enable it, unless EVENTO_REQUIRE_POSTGRES=1, which makes it a
// failure instead (use that in CI).
//
//	func TestX(t *testing.T) {
//		dsn := postgrestest.DSN(t) // …&schema=evt_testx_1a2b3c4d
//		store, err := postgres.Open(ctx, dsn)
//		…
//	}
package postgrestest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/evento-go/evento/executor"
	"github.com/jackc/pgx/v5"
)

// DefaultDSN is the base DSN used when EVENTO_POSTGRES_DSN is unset.
const DefaultDSN = "postgres://evento:evento@127.0.0.1:5432/evento_test?sslmode=disable"

// EnvDSN names the environment variable holding the base DSN.
const EnvDSN = "EVENTO_POSTGRES_DSN"

// EnvRequire names the environment variable that, set to 1, turns an
// unreachable server into a test failure instead of a skip.
const EnvRequire = "EVENTO_REQUIRE_POSTGRES"

// BaseDSN returns the base DSN from EVENTO_POSTGRES_DSN or DefaultDSN.
func BaseDSN() string {
	if s := strings.TrimSpace(os.Getenv(EnvDSN)); s != "" {
		return s
	}
	return DefaultDSN
}

// howTo is the hint printed when the server is unreachable.
const howTo = `PostgreSQL tests need a server: start PostgreSQL (e.g. "pg_ctlcluster 15 main start", or run .ci/postgres.sh as root), ` +
	`create the role and database ("CREATE ROLE evento LOGIN PASSWORD 'evento'; CREATE DATABASE evento_test OWNER evento;"), ` +
	`and set EVENTO_POSTGRES_DSN if not the default ` + DefaultDSN + `; set EVENTO_REQUIRE_POSTGRES=1 to fail instead of skip`

// DSN returns a DSN naming a fresh, uniquely named schema on the test server
// (the base DSN with the option schema=<name> added). The schema is created
// now and dropped with CASCADE when the test and its cleanups finish; close
// stores opened on it in a t.Cleanup registered after calling DSN, or before
// the test returns.
func DSN(t testing.TB) string {
	t.Helper()
	base := BaseDSN()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := connect(ctx, base)
	if err != nil {
		unreachable(t, err)
		return ""
	}
	defer conn.Close(context.Background())

	name := schemaName(t.Name())
	if _, err := conn.Exec(ctx, "CREATE SCHEMA "+pgx.Identifier{name}.Sanitize()); err != nil {
		t.Fatalf("postgrestest: create schema %s: %v", name, err)
	}
	t.Cleanup(func() { drop(t, base, name) })
	dsn, err := WithSchema(base, name)
	if err != nil {
		t.Fatalf("postgrestest: %v", err)
	}
	return dsn
}

// Available reports whether the test server is reachable, without skipping.
func Available() bool {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, err := connect(ctx, BaseDSN())
	if err != nil {
		return false
	}
	conn.Close(context.Background())
	return true
}

// Require skips (or fails, with EVENTO_REQUIRE_POSTGRES=1) t when the test
// server is unreachable.
func Require(t testing.TB) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := connect(ctx, BaseDSN())
	if err != nil {
		unreachable(t, err)
		return
	}
	conn.Close(context.Background())
}

// WithSchema returns dsn with its schema option set to schema.
func WithSchema(dsn, schema string) (string, error) {
	u, err := url.Parse(dsn)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		return "", fmt.Errorf("postgrestest: base DSN must be a postgres:// URL (%s=%q)", EnvDSN, redact(dsn))
	}
	q := u.Query()
	q.Set("schema", schema)
	u.RawQuery = q.Encode()
	return u.String(), nil
}

func connect(ctx context.Context, dsn string) (*pgx.Conn, error) {
	cfg, err := pgx.ParseConfig(stripSchema(dsn))
	if err != nil {
		return nil, fmt.Errorf("parse %s: %w", redact(dsn), err)
	}
	if cfg.ConnectTimeout == 0 || cfg.ConnectTimeout > 5*time.Second {
		cfg.ConnectTimeout = 5 * time.Second
	}
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("connect %s: %w", redact(dsn), err)
	}
	return conn, nil
}

// Unreachable skips t with a message that says how to enable the
// PostgreSQL tests, or fails it when EVENTO_REQUIRE_POSTGRES=1. Tests that
// dial the server themselves call it when the dial fails.
func Unreachable(t testing.TB, err error) { t.Helper(); unreachable(t, err) }

func unreachable(t testing.TB, err error) {
	t.Helper()
	if os.Getenv(EnvRequire) == "1" {
		t.Fatalf("postgrestest: PostgreSQL unreachable and %s=1: %v\n%s", EnvRequire, err, howTo)
	}
	t.Skipf("postgrestest: PostgreSQL unreachable, skipping: %v\n%s", err, howTo)
}

func drop(t testing.TB, base, name string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := connect(ctx, base)
	if err != nil {
		t.Errorf("postgrestest: drop schema %s: %v", name, err)
		return
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, "SET lock_timeout = '20s'"); err != nil {
		t.Errorf("postgrestest: drop schema %s: %v", name, err)
		return
	}
	if _, err := conn.Exec(ctx, "DROP SCHEMA IF EXISTS "+pgx.Identifier{name}.Sanitize()+" CASCADE"); err != nil {
		t.Errorf("postgrestest: drop schema %s (is a store on it still open?): %v", name, err)
	}
}

// schemaName derives a valid, unique, lower-case identifier of at most 63
// bytes from a test name.
func schemaName(testName string) string {
	var b strings.Builder
	b.WriteString("evt_")
	for _, r := range strings.ToLower(testName) {
		if b.Len() >= 40 {
			break
		}
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
			b.WriteRune(r)
		default:
			b.WriteByte('_')
		}
	}
	var rnd [6]byte
	_, _ = rand.Read(rnd[:])
	b.WriteByte('_')
	b.WriteString(hex.EncodeToString(rnd[:]))
	return b.String()
}

// stripSchema removes the evento-only schema option, which pgx would send
// to the server as a run-time parameter.
func stripSchema(dsn string) string {
	u, err := url.Parse(dsn)
	if err != nil {
		return dsn
	}
	q := u.Query()
	if !q.Has("schema") {
		return dsn
	}
	q.Del("schema")
	u.RawQuery = q.Encode()
	return u.String()
}

func redact(dsn string) string { return executor.Redact(dsn) }
