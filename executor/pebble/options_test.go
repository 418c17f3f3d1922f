package pebble

import (
	"bytes"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/evento-go/evento"
	"github.com/evento-go/evento/executor"
)

// TestDSNOptionNames: every option name the pebble DSN accepts, shared
// and deprecated, sets what it says.
func TestDSNOptionNames(t *testing.T) {
	for _, c := range []struct {
		query   string
		sync    bool
		maxPage int
		migrate bool
	}{
		{"", true, 1000, true},
		{"durability=full", true, 1000, true},
		{"durability=NORMAL", false, 1000, true},
		{"durability=off", false, 1000, true},
		{"sync=false", false, 1000, true}, // deprecated alias
		{"sync=true", true, 1000, true},
		{"max_page_size=10", true, 10, true},
		{"max_page=20", true, 20, true}, // deprecated alias
		{"migrate=false", true, 1000, false},
		{"migrate=true&durability=normal&max_page_size=5", false, 5, true},
	} {
		_, opts, err := ParseDSN("pebble::memory:?" + c.query)
		if err != nil {
			t.Errorf("%q: %v", c.query, err)
			continue
		}
		cfg := newConfig(opts)
		if cfg.sync != c.sync || cfg.maxPage != c.maxPage || cfg.migrate != c.migrate {
			t.Errorf("%q: sync=%v maxPage=%d migrate=%v, want %v %d %v", c.query, cfg.sync, cfg.maxPage, cfg.migrate, c.sync, c.maxPage, c.migrate)
		}
	}
}

// TestDSNOptionErrors: unknown, malformed, duplicated and inapplicable
// options are errors wrapping ErrInvalidDSN that name the option.
func TestDSNOptionErrors(t *testing.T) {
	for _, c := range []struct{ query, names string }{
		{"bogus=1", "bogus"},
		{"durability=sometimes", "durability"},
		{"durability=extra", "durability"},
		{"sync=maybe", "sync"},
		{"max_page_size=0", "max_page_size"},
		{"max_page_size=ten", "max_page_size"},
		{"max_page=-1", "max_page"},
		{"migrate=perhaps", "migrate"},
		{"sync=false&durability=full", "durability"},
		{"max_page=1&max_page_size=2", "max_page"},
		{"default_page_size=0", "default_page_size"},
		{"lock_timeout=5s", "lock_timeout"},
		{"busy_timeout=5000", "busy_timeout"},
		{"schema=x", "schema"},
		{"a=%zz", "invalid URL escape"},
	} {
		_, _, err := ParseDSN("pebble::memory:?" + c.query)
		if !errors.Is(err, executor.ErrInvalidDSN) {
			t.Errorf("%q: err = %v, want ErrInvalidDSN", c.query, err)
			continue
		}
		if !strings.Contains(err.Error(), c.names) {
			t.Errorf("%q: error %q does not name %s", c.query, err, c.names)
		}
		if _, err := executor.Open(t.Context(), "pebble::memory:?"+c.query); !errors.Is(err, executor.ErrInvalidDSN) {
			t.Errorf("executor.Open %q: err = %v, want ErrInvalidDSN", c.query, err)
		}
	}
}

// TestMigrateFalse: migrate=false refuses a directory with no store (and
// does not create it) and an in-memory store, and opens a store Migrate
// made.
func TestMigrateFalse(t *testing.T) {
	ctx := t.Context()
	dir := filepath.Join(t.TempDir(), "ev")
	_, err := executor.Open(ctx, "pebble:"+dir+"?migrate=false")
	if !errors.Is(err, executor.ErrNotMigrated) {
		t.Fatalf("fresh directory: err = %v, want ErrNotMigrated", err)
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("migrate=false created %s: %v", dir, err)
	}
	if _, err := executor.Open(ctx, "pebble::memory:?migrate=false"); !errors.Is(err, executor.ErrNotMigrated) {
		t.Fatalf("memory: err = %v, want ErrNotMigrated", err)
	}
	// An existing Pebble database without evento's record: refused, untouched.
	empty := filepath.Join(t.TempDir(), "empty")
	if err := os.MkdirAll(empty, 0o755); err != nil {
		t.Fatal(err)
	}
	s, err := Open(ctx, empty)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.db.Delete([]byte{tagSchema}, nil); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(ctx, empty, WithMigrate(false)); !errors.Is(err, executor.ErrNotMigrated) {
		t.Fatalf("database without format record: err = %v, want ErrNotMigrated", err)
	}

	if err := executor.Migrate(ctx, "pebble:"+dir+"?migrate=false"); err != nil {
		t.Fatalf("Migrate: %v", err)
	}
	x, err := executor.Open(ctx, "pebble:"+dir+"?migrate=false")
	if err != nil {
		t.Fatalf("migrated store, migrate=false: %v", err)
	}
	if err := x.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestDefaultLoggerIsSlogDefault: without WithLogger the store logs, and
// Pebble's own lines go, through slog.Default(): Pebble's info lines at
// Debug, its errors at Error.
func TestDefaultLoggerIsSlogDefault(t *testing.T) {
	var buf bytes.Buffer
	l := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	old := slog.Default()
	slog.SetDefault(l)
	defer slog.SetDefault(old)
	cfg := newConfig(nil)
	if cfg.logger != l {
		t.Fatal("default logger is not slog.Default()")
	}
	q := quietLogger{cfg.logger}
	q.Infof("compacted %d tables", 3)
	q.Errorf("background error: %s", "disk full")
	out := buf.String()
	if !strings.Contains(out, `level=DEBUG msg="pebble: compacted 3 tables"`) {
		t.Errorf("Infof not logged at Debug: %s", out)
	}
	if !strings.Contains(out, `level=ERROR msg="pebble: background error: disk full"`) {
		t.Errorf("Errorf not logged at Error: %s", out)
	}
}

// TestDefaultPageSize: default_page_size sizes a Read without First/Last,
// and a default above the maximum is refused at Open.
func TestDefaultPageSize(t *testing.T) {
	x, err := executor.Open(t.Context(), "pebble::memory:?default_page_size=3&max_page_size=5")
	if err != nil {
		t.Fatal(err)
	}
	defer x.Close()
	for v := uint64(1); v <= 4; v++ {
		if err := x.Write(t.Context(), []evento.Event{{AggregateType: "p/A", AggregateID: "a", Version: v, Name: "N"}}); err != nil {
			t.Fatal(err)
		}
	}
	page, err := x.Read(t.Context(), evento.All())
	if err != nil || len(page.Events) != 3 || !page.PageInfo.HasNextPage {
		t.Fatalf("Read with default_page_size=3 = %d events (next %v), %v; want 3 and a next page", len(page.Events), page.PageInfo.HasNextPage, err)
	}
	if _, err := executor.Open(t.Context(), "pebble::memory:?default_page_size=10&max_page_size=5"); !errors.Is(err, executor.ErrInvalidDSN) {
		t.Fatalf("Open with default_page_size above max_page_size = %v, want ErrInvalidDSN", err)
	}
}
