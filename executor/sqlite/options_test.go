package sqlite

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/evento-go/evento"
	"github.com/evento-go/evento/cursor"
	"github.com/evento-go/evento/executor"
)

const def = cursor.DefaultPageSize

// TestDSNOptionNames: every option name the sqlite DSN accepts, shared
// and deprecated, sets what it says.
func TestDSNOptionNames(t *testing.T) {
	for _, c := range []struct {
		query       string
		synchronous string
		busy        time.Duration
		maxPage     int
		defPage     int
		migrate     bool
	}{
		{"", "FULL", 5 * time.Second, 1000, def, true},
		{"durability=full", "FULL", 5 * time.Second, 1000, def, true},
		{"durability=normal", "NORMAL", 5 * time.Second, 1000, def, true},
		{"durability=OFF", "OFF", 5 * time.Second, 1000, def, true},
		{"synchronous=extra", "EXTRA", 5 * time.Second, 1000, def, true}, // deprecated alias
		{"lock_timeout=2s", "FULL", 2 * time.Second, 1000, def, true},
		{"lock_timeout=1500", "FULL", 1500 * time.Millisecond, 1000, def, true},
		{"busy_timeout=250", "FULL", 250 * time.Millisecond, 1000, def, true}, // deprecated alias
		{"max_page_size=100&default_page_size=7", "FULL", 5 * time.Second, 100, 7, true},
		{"migrate=false", "FULL", 5 * time.Second, 1000, def, false},
	} {
		_, opts, err := parseDSN("sqlite:/x.db?" + c.query)
		if err != nil {
			t.Errorf("%q: %v", c.query, err)
			continue
		}
		cfg := defaults()
		for _, o := range opts {
			o(&cfg)
		}
		got := []any{cfg.synchronous, cfg.busyTimeout, cfg.maxPage, cfg.defaultPage, cfg.migrate}
		want := []any{c.synchronous, c.busy, c.maxPage, c.defPage, c.migrate}
		for i := range got {
			if got[i] != want[i] {
				t.Errorf("%q: got %v, want %v", c.query, got, want)
				break
			}
		}
	}
}

// TestDSNOptionErrors: unknown, malformed, duplicated, inconsistent and
// inapplicable options are errors wrapping ErrInvalidDSN that name them.
func TestDSNOptionErrors(t *testing.T) {
	for _, c := range []struct{ query, names string }{
		{"bogus=1", "bogus"},
		{"durability=sometimes", "durability"},
		{"synchronous=sometimes", "synchronous"},
		{"lock_timeout=soon", "lock_timeout"},
		{"lock_timeout=-1", "lock_timeout"},
		{"busy_timeout=soon", "busy_timeout"},
		{"max_page_size=0", "max_page_size"},
		{"default_page_size=x", "default_page_size"},
		{"max_page_size=10&default_page_size=20", "default page size 20"},
		{"migrate=perhaps", "migrate"},
		{"durability=full&synchronous=off", "synchronous"},
		{"lock_timeout=1s&busy_timeout=1000", "busy_timeout"},
		{"max_page=10", "max_page_size"},
		{"schema=x", "schema"},
		{"a=%zz", "invalid URL escape"},
	} {
		_, _, err := parseDSN("sqlite:/x.db?" + c.query)
		if !errors.Is(err, executor.ErrInvalidDSN) {
			t.Errorf("%q: err = %v, want ErrInvalidDSN", c.query, err)
			continue
		}
		if !strings.Contains(err.Error(), c.names) {
			t.Errorf("%q: error %q does not name %s", c.query, err, c.names)
		}
	}
}

// TestMigrateFalse: migrate=false refuses a missing file (and does not
// create it), an older schema and a newer one, runs no DDL, and opens a
// store Migrate made.
func TestMigrateFalse(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "ev.db")
	dsn := "sqlite:" + path + "?migrate=false"
	if _, err := executor.Open(ctx, dsn); !errors.Is(err, executor.ErrNotMigrated) {
		t.Fatalf("fresh path: err = %v, want ErrNotMigrated", err)
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("migrate=false created %s: %v", path, err)
	}
	if _, err := executor.Open(ctx, "sqlite::memory:?migrate=false"); !errors.Is(err, executor.ErrNotMigrated) {
		t.Fatalf("memory: err = %v, want ErrNotMigrated", err)
	}
	// An existing file without evento's tables: refused, left without them.
	empty := filepath.Join(t.TempDir(), "empty.db")
	if err := os.WriteFile(empty, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(ctx, empty, WithMigrate(false)); !errors.Is(err, executor.ErrNotMigrated) {
		t.Fatalf("empty file: err = %v, want ErrNotMigrated", err)
	}
	if fi, err := os.Stat(empty); err != nil || fi.Size() != 0 {
		t.Fatalf("migrate=false wrote to an empty file: %v %v", fi, err)
	}

	if err := executor.Migrate(ctx, dsn); err != nil {
		t.Fatalf("Migrate: %v", err)
	}
	s, err := Open(ctx, path, WithMigrate(false))
	if err != nil {
		t.Fatalf("migrated store, migrate=false: %v", err)
	}
	latest := SchemaVersion()
	// One migration behind: refused, and not migrated.
	if _, err := s.DB().ExecContext(ctx, "DELETE FROM schema_migrations WHERE version = ?", latest); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(ctx, path, WithMigrate(false)); !errors.Is(err, executor.ErrNotMigrated) || !strings.Contains(err.Error(), "evento migrate") {
		t.Fatalf("older schema: err = %v, want ErrNotMigrated naming evento migrate", err)
	}
	var n int
	if err := s.DB().QueryRowContext(ctx, "SELECT count(*) FROM schema_migrations WHERE version = ?", latest).Scan(&n); err != nil || n != 0 {
		t.Fatalf("migrate=false migrated: %d rows, %v", n, err)
	}
	// Newer than this code: ErrSchemaTooNew, as without the option.
	if _, err := s.DB().ExecContext(ctx, "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, 'future', 0)", latest+5); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(ctx, path, WithMigrate(false)); !errors.Is(err, evento.ErrSchemaTooNew) {
		t.Fatalf("newer schema: err = %v, want ErrSchemaTooNew", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestDurabilityAndLockTimeoutReachSQLite: the DSN options become the
// connection's PRAGMAs.
func TestDurabilityAndLockTimeoutReachSQLite(t *testing.T) {
	path := filepath.Join(t.TempDir(), "p.db")
	x, err := executor.Open(t.Context(), "sqlite:"+path+"?durability=normal&lock_timeout=1234ms")
	if err != nil {
		t.Fatal(err)
	}
	defer x.Close()
	s := x.(*Store)
	// Read on the configured write connection's settings through a pool
	// connection made by Open's connector (every connection runs them).
	var sync, busy int
	if err := s.DB().QueryRowContext(t.Context(), "PRAGMA synchronous").Scan(&sync); err != nil {
		t.Fatal(err)
	}
	if err := s.DB().QueryRowContext(t.Context(), "PRAGMA busy_timeout").Scan(&busy); err != nil {
		t.Fatal(err)
	}
	if sync != 1 || busy != 1234 { // NORMAL is 1
		t.Fatalf("synchronous=%d busy_timeout=%d, want 1 and 1234", sync, busy)
	}
}
