package postgres

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"sort"
	"strconv"
	"strings"

	"github.com/evento-go/evento"
	"github.com/evento-go/evento/executor"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

//go:embed migrations/*.sql
var migrationFS embed.FS

type migration struct {
	version int
	name    string
	sql     string
}

// migrations returns the embedded migrations in version order. File names
// are NNNN_name.sql, numbered from 1 without gaps.
func migrations() ([]migration, error) {
	names, err := fs.Glob(migrationFS, "migrations/*.sql")
	if err != nil {
		return nil, err
	}
	sort.Strings(names)
	out := make([]migration, 0, len(names))
	for i, n := range names {
		base := strings.TrimPrefix(n, "migrations/")
		num, _, ok := strings.Cut(base, "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || v != i+1 {
			return nil, fmt.Errorf("postgres executor: migration file %s is misnumbered", n)
		}
		b, err := migrationFS.ReadFile(n)
		if err != nil {
			return nil, err
		}
		out = append(out, migration{version: v, name: strings.TrimSuffix(base, ".sql"), sql: string(b)})
	}
	return out, nil
}

// SchemaVersion is the schema version this code writes.
func SchemaVersion() int {
	ms, err := migrations()
	if err != nil || len(ms) == 0 {
		return 0
	}
	return ms[len(ms)-1].version
}

// migrate creates the schema and applies missing migrations in one
// transaction under a transaction-level advisory lock, so that processes
// opening the store at once are safe. It returns the schema's ordering.
func (s *Store) migrate(ctx context.Context) (Ordering, error) {
	ms, err := migrations()
	if err != nil {
		return "", err
	}
	latest := ms[len(ms)-1].version
	schema := s.schema
	// A schema already at this code's version opens with one read, no lock
	// and no DDL, so a role with only USAGE and SELECT (a reader, a
	// least-privilege service) can open a migrated store. migrate=false
	// stops here whatever the answer.
	o, err := s.checkVersion(ctx, latest)
	if !s.cfg.migrate || s.cfg.readOnly || err == nil || errors.Is(err, evento.ErrSchemaTooNew) {
		return o, err
	}
	// Not migrated, or not readable: the locked path creates and migrates,
	// or reports the real error.
	var ordering Ordering
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", lockKey("evento.migrate."+s.cfg.schema)); err != nil {
			return err
		}
		var exists bool
		if err := tx.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)", s.cfg.schema).Scan(&exists); err != nil {
			return err
		}
		if !exists {
			if _, err := tx.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
				return fmt.Errorf("create schema: %w", err)
			}
		}
		if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS `+schema+`.schema_migrations (
			version    integer PRIMARY KEY,
			name       text NOT NULL,
			applied_at timestamptz NOT NULL DEFAULT now())`); err != nil {
			return fmt.Errorf("create schema_migrations: %w", err)
		}
		var current int
		if err := tx.QueryRow(ctx, "SELECT coalesce(max(version), 0) FROM "+schema+".schema_migrations").Scan(&current); err != nil {
			return err
		}
		if current > latest {
			return fmt.Errorf("schema %s is at version %d, this code knows up to %d: %w", s.cfg.schema, current, latest, evento.ErrSchemaTooNew)
		}
		for _, m := range ms[current:] {
			if _, err := tx.Exec(ctx, strings.ReplaceAll(m.sql, "${schema}", schema)); err != nil {
				return fmt.Errorf("migration %s: %w", m.name, err)
			}
			if _, err := tx.Exec(ctx, "INSERT INTO "+schema+".schema_migrations (version, name) VALUES ($1, $2)", m.version, m.name); err != nil {
				return fmt.Errorf("migration %s: %w", m.name, err)
			}
		}
		want := OrderingTxHorizon
		if s.cfg.orderingSet {
			want = s.cfg.ordering
		}
		if _, err := tx.Exec(ctx, "INSERT INTO "+schema+".settings (name, value) VALUES ('ordering', $1) ON CONFLICT (name) DO NOTHING", string(want)); err != nil {
			return err
		}
		var got string
		if err := tx.QueryRow(ctx, "SELECT value FROM "+schema+".settings WHERE name = 'ordering'").Scan(&got); err != nil {
			return err
		}
		ordering = Ordering(got)
		if ordering != OrderingTxHorizon && ordering != OrderingAdvisoryLock {
			return fmt.Errorf("schema %s records unknown ordering %q: %w", s.cfg.schema, got, evento.ErrSchemaTooNew)
		}
		if s.cfg.orderingSet && s.cfg.ordering != ordering {
			return fmt.Errorf("schema %s was created with ordering=%s; it cannot be opened with ordering=%s", s.cfg.schema, ordering, s.cfg.ordering)
		}
		return nil
	})
	if err != nil {
		if errors.Is(err, evento.ErrSchemaTooNew) {
			return "", fmt.Errorf("postgres executor: %q: %w", s.rawDSN, err)
		}
		return "", fmt.Errorf("postgres executor: migrate schema %s on %q: %w", s.cfg.schema, s.rawDSN, err)
	}
	return ordering, nil
}

// checkVersion reads the schema's version and ordering in one statement and
// runs no DDL: nil when the schema is at version latest with a known
// ordering that agrees with the one asked for, else an error that says what
// is wrong (wrapping executor.ErrNotMigrated when migrating would mend it).
// It is all of migrate for a store opened with migrate=false, and
// migrate's fast path otherwise.
func (s *Store) checkVersion(ctx context.Context, latest int) (Ordering, error) {
	var version *int
	var got *string
	err := s.pool.QueryRow(ctx, "SELECT (SELECT max(version) FROM "+s.schema+".schema_migrations), (SELECT value FROM "+s.schema+".settings WHERE name = 'ordering')").Scan(&version, &got)
	var pe *pgconn.PgError
	switch {
	case errors.As(err, &pe) && (pe.Code == "42P01" || pe.Code == "3F000") && s.cfg.readOnly: // undefined table, schema
		return "", fmt.Errorf("postgres executor: %q read-only: schema %s has no evento tables (nothing was created): %w", s.rawDSN, s.cfg.schema, executor.ErrNoStore)
	case errors.As(err, &pe) && (pe.Code == "42P01" || pe.Code == "3F000"): // undefined table, schema
		return "", fmt.Errorf("postgres executor: %q: schema %s has no evento tables, and migrate=false forbids creating them (run executor.Migrate or evento migrate): %w", s.rawDSN, s.cfg.schema, executor.ErrNotMigrated)
	case err != nil:
		return "", fmt.Errorf("postgres executor: %q: read schema version of %s: %w", s.rawDSN, s.cfg.schema, err)
	case version == nil || *version < latest:
		v := 0
		if version != nil {
			v = *version
		}
		return "", fmt.Errorf("postgres executor: %q: schema %s is at version %d, this code needs %d, and migrate=false forbids migrating (run executor.Migrate or evento migrate): %w", s.rawDSN, s.cfg.schema, v, latest, executor.ErrNotMigrated)
	case *version > latest:
		return "", fmt.Errorf("postgres executor: %q: schema %s is at version %d, this code knows up to %d: %w", s.rawDSN, s.cfg.schema, *version, latest, evento.ErrSchemaTooNew)
	case got == nil:
		return "", fmt.Errorf("postgres executor: %q: schema %s records no ordering (run executor.Migrate): %w", s.rawDSN, s.cfg.schema, executor.ErrNotMigrated)
	}
	o := Ordering(*got)
	if o != OrderingTxHorizon && o != OrderingAdvisoryLock {
		return "", fmt.Errorf("postgres executor: %q: schema %s records unknown ordering %q: %w", s.rawDSN, s.cfg.schema, *got, evento.ErrSchemaTooNew)
	}
	if s.cfg.orderingSet && s.cfg.ordering != o {
		return "", fmt.Errorf("postgres executor: %q: schema %s was created with ordering=%s; it cannot be opened with ordering=%s", s.rawDSN, s.cfg.schema, o, s.cfg.ordering)
	}
	return o, nil
}
