package sqlite

import (
	"context"
	"embed"
	"fmt"
	"io/fs"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/evento-go/evento"
)

//go:embed migrations/*.sql
var migrationFS embed.FS

// migration is one numbered schema change.
type migration struct {
	version int
	name    string
	sql     string
}

// loadMigrations reads the embedded migrations, named NNNN_name.sql and
// numbered 1, 2, 3… without gaps.
func loadMigrations() ([]migration, error) {
	names, err := fs.Glob(migrationFS, "migrations/*.sql")
	if err != nil {
		return nil, err
	}
	var out []migration
	for _, n := range names {
		base := strings.TrimPrefix(n, "migrations/")
		num, _, ok := strings.Cut(base, "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || v <= 0 {
			return nil, fmt.Errorf("sqlite executor: migration file %q is not named NNNN_name.sql", base)
		}
		b, err := migrationFS.ReadFile(n)
		if err != nil {
			return nil, err
		}
		out = append(out, migration{version: v, name: base, sql: string(b)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].version < out[j].version })
	for i, m := range out {
		if m.version != i+1 {
			return nil, fmt.Errorf("sqlite executor: migrations are not numbered 1..%d without gaps (found %s)", len(out), m.name)
		}
	}
	return out, nil
}

// SchemaVersion is the schema version this code writes: the number of the
// last embedded migration.
func SchemaVersion() int {
	ms, err := loadMigrations()
	if err != nil || len(ms) == 0 {
		return 0
	}
	return ms[len(ms)-1].version
}

const createMigrationsTable = `CREATE TABLE IF NOT EXISTS schema_migrations (
	version    INTEGER PRIMARY KEY,
	name       TEXT    NOT NULL,
	applied_at INTEGER NOT NULL
)`

// migrate brings the schema up to date. A quick read settles the common
// case (already current); otherwise the migration runs inside BEGIN
// IMMEDIATE after re-reading the version, so concurrent openers in several
// processes apply each migration once.
func (s *Store) migrate(ctx context.Context) error {
	ms, err := loadMigrations()
	if err != nil {
		return err
	}
	latest := len(ms)
	var current int
	if err := s.db.QueryRowContext(ctx, "SELECT coalesce(max(version), 0) FROM schema_migrations").Scan(&current); err == nil {
		if current == latest {
			return nil
		}
		if current > latest {
			return schemaTooNew(current, latest)
		}
	}
	// The write connection also sets journal_mode=WAL on a new file.
	return s.writeTx(ctx, "migrate", func(w *writeConn) error {
		if _, err := w.conn.ExecContext(ctx, createMigrationsTable); err != nil {
			return s.wrap("migrate: create schema_migrations", err)
		}
		var current int
		if err := w.conn.QueryRowContext(ctx, "SELECT coalesce(max(version), 0) FROM schema_migrations").Scan(&current); err != nil {
			return s.wrap("migrate: read schema version", err)
		}
		if current > latest {
			return schemaTooNew(current, latest)
		}
		for _, m := range ms[current:] {
			if _, err := w.conn.ExecContext(ctx, m.sql); err != nil {
				return s.wrap("migrate: apply "+m.name, err)
			}
			if _, err := w.conn.ExecContext(ctx, "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
				m.version, m.name, time.Now().UnixMicro()); err != nil {
				return s.wrap("migrate: record "+m.name, err)
			}
		}
		return nil
	})
}

func schemaTooNew(current, latest int) error {
	return fmt.Errorf("sqlite executor: schema version %d is newer than this code's %d (upgrade evento): %w", current, latest, evento.ErrSchemaTooNew)
}
