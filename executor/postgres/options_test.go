package postgres_test

import (
	"context"
	"errors"
	"net/url"
	"strings"
	"testing"

	"github.com/evento-go/evento"
	"github.com/evento-go/evento/executor"
	"github.com/evento-go/evento/executor/postgres"
	"github.com/evento-go/evento/executor/postgres/postgrestest"
	"github.com/jackc/pgx/v5/pgxpool"
)

func schemaOf(t *testing.T, dsn string) string {
	t.Helper()
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	return u.Query().Get("schema")
}

// TestSchemaNameValidation: a schema name that is not a plain lower-case
// identifier is an error wrapping ErrInvalidDSN, never the default schema.
// It is checked before connecting.
func TestSchemaNameValidation(t *testing.T) {
	base := "postgres://u:p@127.0.0.1:1/db?sslmode=disable&connect_timeout=1&schema="
	for _, name := range []string{"ux_semi%3Bdrop", "ux_semi;drop", "", "Upper", "a-b", "a.b", "1abc", "a%20b", strings.Repeat("a", 64)} {
		_, err := postgres.Open(context.Background(), base+name)
		if !errors.Is(err, executor.ErrInvalidDSN) || !strings.Contains(err.Error(), "schema") {
			t.Errorf("schema=%q: err = %v, want ErrInvalidDSN naming schema", name, err)
		}
		if _, err := postgres.Open(context.Background(), "postgres://u:p@127.0.0.1:1/db", postgres.WithSchema(name)); !errors.Is(err, executor.ErrInvalidDSN) {
			t.Errorf("WithSchema(%q): err = %v, want ErrInvalidDSN", name, err)
		}
	}
	// Valid names get past validation (to the unreachable server).
	for _, name := range []string{"evento", "_x", "a1_b2", strings.Repeat("a", 63)} {
		if _, err := postgres.Open(context.Background(), base+name); err == nil || errors.Is(err, executor.ErrInvalidDSN) {
			t.Errorf("schema=%q: err = %v, want a connection error", name, err)
		}
	}
}

// TestDSNOptionErrors: malformed values, and other backends' options, are
// errors wrapping ErrInvalidDSN that name the option.
func TestDSNOptionErrors(t *testing.T) {
	base := "postgres://u:p@127.0.0.1:1/db?sslmode=disable&connect_timeout=1&"
	for _, c := range []struct{ query, names string }{
		{"durability=sometimes", "durability"},
		{"lock_timeout=soon", "lock_timeout"},
		{"lock_timeout=-5", "lock_timeout"},
		{"migrate=perhaps", "migrate"},
		{"max_page_size=0", "max_page_size"},
		{"default_page_size=ten", "default_page_size"},
		{"max_page=10", "max_page_size"},
		{"busy_timeout=10", "lock_timeout"},
		{"synchronous=off", "durability"},
		{"sync=false", "durability"},
		{"bogus=1", "bogus"},
	} {
		_, err := executor.Open(context.Background(), base+c.query)
		if !errors.Is(err, executor.ErrInvalidDSN) {
			t.Errorf("%q: err = %v, want ErrInvalidDSN", c.query, err)
			continue
		}
		if !strings.Contains(err.Error(), c.names) {
			t.Errorf("%q: error %q does not name %s", c.query, err, c.names)
		}
	}
}

// TestDurabilityAndLockTimeoutReachServer: durability and lock_timeout
// become the connections' synchronous_commit and lock_timeout.
func TestDurabilityAndLockTimeoutReachServer(t *testing.T) {
	ctx := context.Background()
	dsn := postgrestest.DSN(t)
	for _, c := range []struct{ query, sync, lock string }{
		{"&durability=normal&lock_timeout=1500ms", "off", "1500ms"},
		{"&durability=off&lock_timeout=2000", "off", "2s"},
		{"&durability=full&lock_timeout=0", "on", "0"},
	} {
		s, err := postgres.Open(ctx, dsn+c.query)
		if err != nil {
			t.Fatalf("%s: %v", c.query, err)
		}
		var sync, lock string
		if err := s.Pool().QueryRow(ctx, "SELECT current_setting('synchronous_commit'), current_setting('lock_timeout')").Scan(&sync, &lock); err != nil {
			t.Fatal(err)
		}
		s.Close()
		if sync != c.sync || lock != c.lock {
			t.Errorf("%s: synchronous_commit=%s lock_timeout=%s, want %s %s", c.query, sync, lock, c.sync, c.lock)
		}
	}
	// New does not make connections: it refuses connection settings.
	pool, err := pgxpool.New(ctx, strings.Replace(dsn, "schema=", "application_name=", 1))
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	schema := schemaOf(t, dsn)
	if _, err := postgres.New(ctx, pool, postgres.WithSchema(schema), postgres.WithDurability(executor.DurabilityNormal)); err == nil {
		t.Error("New with WithDurability: no error")
	}
}

// TestMigrateFalse: migrate=false opens without DDL: an empty or missing
// schema and an older one fail with ErrNotMigrated and stay as they were,
// a newer one with ErrSchemaTooNew; after executor.Migrate it opens.
func TestMigrateFalse(t *testing.T) {
	ctx := context.Background()
	dsn := postgrestest.DSN(t) // an empty schema
	schema := schemaOf(t, dsn)
	tables := func() int {
		pool, err := pgxpool.New(ctx, strings.Replace(dsn, "schema=", "application_name=", 1))
		if err != nil {
			t.Fatal(err)
		}
		defer pool.Close()
		var n int
		if err := pool.QueryRow(ctx, "SELECT count(*) FROM pg_tables WHERE schemaname = $1", schema).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	_, err := executor.Open(ctx, dsn+"&migrate=false")
	if !errors.Is(err, executor.ErrNotMigrated) || !strings.Contains(err.Error(), "evento migrate") {
		t.Fatalf("empty schema: err = %v, want ErrNotMigrated naming evento migrate", err)
	}
	if n := tables(); n != 0 {
		t.Fatalf("migrate=false created %d tables", n)
	}
	missing, err := postgrestest.WithSchema(dsn, schema+"_missing")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := executor.Open(ctx, missing+"&migrate=false"); !errors.Is(err, executor.ErrNotMigrated) {
		t.Fatalf("missing schema: err = %v, want ErrNotMigrated", err)
	}

	if err := executor.Migrate(ctx, dsn+"&migrate=false"); err != nil {
		t.Fatalf("Migrate: %v", err)
	}
	s, err := postgres.Open(ctx, dsn, postgres.WithMigrate(false))
	if err != nil {
		t.Fatalf("migrated schema, migrate=false: %v", err)
	}
	defer s.Close()
	latest := postgres.SchemaVersion()
	if _, err := s.Pool().Exec(ctx, "DELETE FROM "+schema+".schema_migrations WHERE version = $1", latest); err != nil {
		t.Fatal(err)
	}
	if _, err := postgres.Open(ctx, dsn, postgres.WithMigrate(false)); !errors.Is(err, executor.ErrNotMigrated) {
		t.Fatalf("older schema: err = %v, want ErrNotMigrated", err)
	}
	var n int
	if err := s.Pool().QueryRow(ctx, "SELECT count(*) FROM "+schema+".schema_migrations WHERE version = $1", latest).Scan(&n); err != nil || n != 0 {
		t.Fatalf("migrate=false migrated: %d, %v", n, err)
	}
	if _, err := s.Pool().Exec(ctx, "INSERT INTO "+schema+".schema_migrations (version, name) VALUES ($1, 'future')", latest+5); err != nil {
		t.Fatal(err)
	}
	if _, err := postgres.Open(ctx, dsn, postgres.WithMigrate(false)); !errors.Is(err, evento.ErrSchemaTooNew) {
		t.Fatalf("newer schema: err = %v, want ErrSchemaTooNew", err)
	}
}

// TestPageSizeOptions: max_page_size and default_page_size mean what they
// mean on the other backends.
func TestPageSizeOptions(t *testing.T) {
	ctx := context.Background()
	dsn := postgrestest.DSN(t)
	x, err := executor.Open(ctx, dsn+"&default_page_size=3&max_page_size=5")
	if err != nil {
		t.Fatal(err)
	}
	defer x.Close()
	for v := uint64(1); v <= 4; v++ {
		if err := x.Write(ctx, []evento.Event{{AggregateType: "p/A", AggregateID: "a", Version: v, Name: "N"}}); err != nil {
			t.Fatal(err)
		}
	}
	page, err := x.Read(ctx, evento.All())
	if err != nil || len(page.Events) != 3 || !page.PageInfo.HasNextPage {
		t.Fatalf("Read with default_page_size=3 = %d events (next %v), %v; want 3 and a next page", len(page.Events), page.PageInfo.HasNextPage, err)
	}
	if _, err := x.Read(ctx, evento.All().First(6, "")); !errors.Is(err, evento.ErrPageTooLarge) {
		t.Fatalf("Read(First 6) with max_page_size=5 = %v, want ErrPageTooLarge", err)
	}
	if y, err := executor.Open(ctx, dsn+"&default_page_size=10&max_page_size=5"); !errors.Is(err, executor.ErrInvalidDSN) {
		if y != nil {
			y.Close()
		}
		t.Fatalf("Open with default_page_size above max_page_size = %v, want ErrInvalidDSN", err)
	}
}
