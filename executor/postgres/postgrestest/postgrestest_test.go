package postgrestest

import (
	"context"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

func TestDSNCreatesAndDropsSchema(t *testing.T) {
	var name string
	t.Run("inner", func(t *testing.T) {
		dsn := DSN(t)
		u, err := url.Parse(dsn)
		if err != nil {
			t.Fatal(err)
		}
		name = u.Query().Get("schema")
		if !strings.HasPrefix(name, "evt_") || len(name) > 63 {
			t.Fatalf("bad schema name %q", name)
		}
		if !schemaExists(t, name) {
			t.Fatalf("schema %s not created", name)
		}
		if other := DSN(t); other == dsn {
			t.Fatalf("two calls gave the same DSN %s", dsn)
		}
	})
	if name == "" {
		t.Skip("inner test skipped")
	}
	if schemaExists(t, name) {
		t.Fatalf("schema %s not dropped on cleanup", name)
	}
}

func TestWithSchema(t *testing.T) {
	got, err := WithSchema("postgres://u:p@h:5432/db?sslmode=disable&schema=old", "new")
	if err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse(got)
	if u.Query().Get("schema") != "new" || u.Query().Get("sslmode") != "disable" {
		t.Fatalf("WithSchema = %s", got)
	}
	if _, err := WithSchema("pebble:/tmp/x", "s"); err == nil {
		t.Fatal("WithSchema accepted a non-postgres DSN")
	}
}

func TestSchemaName(t *testing.T) {
	n := schemaName(strings.Repeat("TestVeryLong/Name With Spaces", 10))
	if len(n) > 63 || n != strings.ToLower(n) || strings.ContainsAny(n, " /") {
		t.Fatalf("schemaName = %q", n)
	}
}

func schemaExists(t *testing.T, name string) bool {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, BaseDSN())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var n int
	if err := conn.QueryRow(ctx, "SELECT count(*) FROM pg_namespace WHERE nspname = $1", name).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n == 1
}
