package sqlite

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/evento-go/evento"
	"github.com/evento-go/evento/cursor"
	"github.com/evento-go/evento/executor"
	"github.com/evento-go/evento/executor/storekit"
	msqlite "modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

var _ evento.Executor = (*Store)(nil)

func init() {
	executor.Register("sqlite", executor.DriverFunc(openDSN))
}

// Store is an evento executor over one SQLite database. It is safe for
// concurrent use.
type Store struct {
	db     *sql.DB
	ownsDB bool   // Close closes db
	tmpDir string // removed at Close (OpenMemory)
	cfg    config
	ulids  *storekit.ULIDSource

	// wsem serialises write transactions in this process; wc is the one
	// write connection, nil until first needed or after it was discarded.
	wsem chan struct{}
	wc   *writeConn

	stmtMu sync.RWMutex
	stmts  map[string]*sql.Stmt // read statements, prepared on db

	closed    atomic.Bool
	closeOnce sync.Once
	closeErr  error
	done      chan struct{} // closed by Close

	notify notifier
}

// Option configures a Store.
type Option func(*config)

type config struct {
	clock        func() time.Time
	busyTimeout  time.Duration
	synchronous  string
	maxPage      int
	defaultPage  int
	defaultSet   bool
	pollInterval time.Duration
	maxConns     int
	logger       *slog.Logger
	migrate      bool
	readOnly     bool
}

func defaults() config {
	return config{
		clock:        time.Now,
		busyTimeout:  5 * time.Second,
		synchronous:  "FULL",
		maxPage:      cursor.MaxPageSize,
		defaultPage:  cursor.DefaultPageSize,
		pollInterval: 100 * time.Millisecond,
		maxConns:     8,
		logger:       slog.Default(),
		migrate:      true,
	}
}

// WithClock sets the clock that judges lease expiry and stamps lease,
// subscriber and snapshot times (default time.Now). Event timestamps always
// come from time.Now.
func WithClock(now func() time.Time) Option {
	return func(c *config) {
		if now != nil {
			c.clock = now
		}
	}
}

// WithBusyTimeout sets how long a statement waits for a lock held by
// another connection or process (default 5s).
func WithBusyTimeout(d time.Duration) Option { return func(c *config) { c.busyTimeout = d } }

// WithSynchronous sets PRAGMA synchronous: "off", "normal", "full" (the
// default: every commit is durable) or "extra". WithDurability is the
// spelling shared with the other backends; this one also reaches "extra".
func WithSynchronous(mode string) Option {
	return func(c *config) { c.synchronous = strings.ToUpper(mode) }
}

// WithDurability sets the durability of commits (the DSN option
// durability), as PRAGMA synchronous: executor.DurabilityFull is FULL (the
// default for Open: a commit survives a machine crash), DurabilityNormal is
// NORMAL (in WAL mode a machine crash may lose the latest commits, never
// consistency), DurabilityOff is OFF (the default for OpenMemory).
func WithDurability(d executor.Durability) Option {
	return func(c *config) { c.synchronous = strings.ToUpper(string(d)) }
}

// WithLockTimeout is the name shared with the other backends (DSN option
// lock_timeout) for WithBusyTimeout: how long a statement waits for a lock
// held by another connection or process (default 5s).
func WithLockTimeout(d time.Duration) Option { return WithBusyTimeout(d) }

// WithMigrate sets whether Open and New create and migrate the schema
// (default true). With false they run no DDL and fail with an error
// wrapping executor.ErrNotMigrated when the file does not exist or its
// schema is older than this code's (executor.Migrate, or opening once
// without the option, migrates it), and with evento.ErrSchemaTooNew when it
// is newer.
func WithMigrate(migrate bool) Option { return func(c *config) { c.migrate = migrate } }

// WithMaxPageSize sets the largest page Read accepts (default
// cursor.MaxPageSize).
func WithMaxPageSize(n int) Option { return func(c *config) { c.maxPage = n } }

// WithDefaultPageSize sets the page size of a Read that sets neither First
// nor Last (default cursor.DefaultPageSize, or the maximum page size when
// that is smaller). A default above the maximum is an error.
func WithDefaultPageSize(n int) Option {
	return func(c *config) { c.defaultPage, c.defaultSet = n, true }
}

// WithPollInterval sets how often Notify listeners poll PRAGMA data_version
// to notice commits made by other processes (default 100ms; <= 0 disables
// the poll).
func WithPollInterval(d time.Duration) Option { return func(c *config) { c.pollInterval = d } }

// WithMaxConns caps the connections Open keeps (default 8). It does not
// apply to a handle given to New.
func WithMaxConns(n int) Option { return func(c *config) { c.maxConns = n } }

// WithLogger sets the logger for problems that cannot be returned, such as
// a failed rollback (default slog.Default()).
func WithLogger(l *slog.Logger) Option {
	return func(c *config) {
		if l != nil {
			c.logger = l
		}
	}
}

func (c *config) validate() error {
	var errs []error
	switch c.synchronous {
	case "OFF", "NORMAL", "FULL", "EXTRA":
	default:
		errs = append(errs, fmt.Errorf("sqlite executor: synchronous %q is not off, normal, full or extra", c.synchronous))
	}
	if c.busyTimeout < 0 {
		errs = append(errs, fmt.Errorf("sqlite executor: busy timeout %v is negative", c.busyTimeout))
	}
	if def, err := executor.PageSizes(c.defaultPage, c.maxPage, c.defaultSet); err != nil {
		errs = append(errs, fmt.Errorf("sqlite executor: %w", err))
	} else {
		c.defaultPage = def
	}
	if c.maxConns < 2 {
		errs = append(errs, fmt.Errorf("sqlite executor: max conns %d is below 2 (one writer and one reader)", c.maxConns))
	}
	return errors.Join(errs...)
}

// pragmas are run on every connection Open makes, and on the write
// connection of a handle given to New. busy_timeout comes first so the
// others wait for locks.
//
// With migrate=false journal_mode is not set: WAL mode is persistent, so a
// migrated file is in it already, and setting it would write the header of
// a file that is not evento's.
func (c *config) pragmas() []string {
	p := []string{fmt.Sprintf("PRAGMA busy_timeout = %d", c.busyTimeout.Milliseconds())}
	if c.migrate {
		p = append(p, "PRAGMA journal_mode = WAL")
	}
	return append(p, "PRAGMA synchronous = "+c.synchronous)
}

// connector opens modernc connections and configures each one.
type connector struct {
	base    driver.Connector
	pragmas []string
}

func (c *connector) Connect(ctx context.Context) (driver.Conn, error) {
	conn, err := c.base.Connect(ctx)
	if err != nil {
		return nil, err
	}
	ex, ok := conn.(driver.ExecerContext)
	if !ok {
		conn.Close()
		return nil, errors.New("sqlite executor: driver connection cannot exec")
	}
	for _, p := range c.pragmas {
		if _, err := ex.ExecContext(ctx, p, nil); err != nil {
			conn.Close()
			return nil, fmt.Errorf("sqlite executor: %s: %w", p, err)
		}
	}
	return conn, nil
}

func (c *connector) Driver() driver.Driver { return c.base.Driver() }

// WithReadOnly sets whether Open opens the file read-only (the DSN option
// read_only; default false): SQLite's mode=ro, no DDL, no pragma that
// writes. A missing file gives an error wrapping executor.ErrNoStore and is
// not created; a file without evento's current schema one wrapping
// executor.ErrNotMigrated. Openings by DSN also wrap the Store with
// executor.ReadOnly so every write fails with executor.ErrReadOnly.
func WithReadOnly(ro bool) Option {
	return func(c *config) { c.readOnly = ro }
}

// Open opens (creating if needed) the SQLite database file at path and
// migrates its schema.
func Open(ctx context.Context, path string, opts ...Option) (*Store, error) {
	if path == "" {
		return nil, errors.New("sqlite executor: empty database path")
	}
	cfg := defaults()
	for _, o := range opts {
		o(&cfg)
	}
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	return openPath(ctx, path, "", cfg)
}

// OpenMemory opens a private, throw-away store for tests. It is a file in a
// fresh temporary directory (so every connection sees the same data, with
// the same locking as a real file), with synchronous=OFF; Close removes it.
func OpenMemory(ctx context.Context, opts ...Option) (*Store, error) {
	cfg := defaults()
	cfg.synchronous = "OFF"
	for _, o := range opts {
		o(&cfg)
	}
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "evento-sqlite-*")
	if err != nil {
		return nil, fmt.Errorf("sqlite executor: in-memory store: %w", err)
	}
	s, err := openPath(ctx, filepath.Join(dir, "evento.db"), dir, cfg)
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	return s, nil
}

func openPath(ctx context.Context, path, tmpDir string, cfg config) (*Store, error) {
	if cfg.readOnly {
		if tmpDir != "" {
			return nil, fmt.Errorf("sqlite executor: read_only on an in-memory store: %w", executor.ErrInvalidDSN)
		}
		if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("sqlite executor: open %q read-only: no such file: %w", path, executor.ErrNoStore)
		}
		cfg.migrate = false // no DDL, no journal_mode
	}
	if !cfg.migrate {
		// SQLite would create an empty file.
		if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("sqlite executor: open %q with migrate=false: no database there: %w", path, executor.ErrNotMigrated)
		}
	}
	u := url.URL{Scheme: "file", Opaque: (&url.URL{Path: path}).EscapedPath()}
	if cfg.readOnly {
		u.RawQuery = "mode=ro"
	}
	base, err := msqlite.NewConnector(u.String())
	if err != nil {
		return nil, fmt.Errorf("sqlite executor: open %q: %w", path, err)
	}
	db := sql.OpenDB(&connector{base: base, pragmas: cfg.pragmas()})
	db.SetMaxOpenConns(cfg.maxConns)
	db.SetMaxIdleConns(cfg.maxConns)
	db.SetConnMaxIdleTime(0)
	s, err := newStore(ctx, db, cfg)
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("sqlite executor: open %q: %w", path, err)
	}
	s.ownsDB = true
	s.tmpDir = tmpDir
	return s, nil
}

// New returns a Store over a ready handle opened with the modernc.org/sqlite
// driver, and migrates the schema. The write connection is configured
// (busy_timeout, journal_mode=WAL, synchronous); the handle's other
// connections, used for reads, keep the handle's own settings, so its DSN
// should set a busy timeout (e.g. "?_pragma=busy_timeout(5000)"). Close does
// not close db.
func New(ctx context.Context, db *sql.DB, opts ...Option) (*Store, error) {
	if db == nil {
		return nil, errors.New("sqlite executor: New with a nil *sql.DB")
	}
	cfg := defaults()
	for _, o := range opts {
		o(&cfg)
	}
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	return newStore(ctx, db, cfg)
}

func newStore(ctx context.Context, db *sql.DB, cfg config) (*Store, error) {
	s := &Store{
		db:    db,
		cfg:   cfg,
		ulids: storekit.NewULIDSource(),
		wsem:  make(chan struct{}, 1),
		stmts: map[string]*sql.Stmt{},
		done:  make(chan struct{}),
	}
	migrate := s.migrate
	if !cfg.migrate {
		migrate = s.checkVersion
	}
	if err := migrate(ctx); err != nil {
		s.closeWriteConn()
		return nil, err
	}
	return s, nil
}

// Capabilities reports what the SQLite backend supports.
func (s *Store) Capabilities() evento.Capabilities {
	return evento.Capabilities{Name: "sqlite", MultiProcess: true, CrossProcessNotify: false}
}

// DB returns the underlying handle, for inspection and tests. Writing to
// the evento tables through it bypasses the store's invariants.
func (s *Store) DB() *sql.DB { return s.db }

// Close waits for the write in flight, closes the store's connections (and
// the handle, if Open made it) and closes every Notify channel. Later calls
// return ErrClosed. Close is idempotent.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		s.closed.Store(true)
		close(s.done)
		s.notify.close()
		// Wait for the writer in flight, then keep the lock forever.
		s.wsem <- struct{}{}
		s.closeWriteConn()
		s.stmtMu.Lock()
		for _, st := range s.stmts {
			st.Close()
		}
		s.stmts = nil
		s.stmtMu.Unlock()
		var errs []error
		if s.ownsDB {
			if err := s.db.Close(); err != nil {
				errs = append(errs, fmt.Errorf("sqlite executor: close: %w", err))
			}
		}
		if s.tmpDir != "" {
			if err := os.RemoveAll(s.tmpDir); err != nil {
				errs = append(errs, fmt.Errorf("sqlite executor: remove temporary store: %w", err))
			}
		}
		s.closeErr = errors.Join(errs...)
	})
	return s.closeErr
}

var errClosed = fmt.Errorf("sqlite executor: %w", evento.ErrClosed)

// check returns ErrClosed after Close, or ctx's error.
func (s *Store) check(ctx context.Context) error {
	if s.closed.Load() {
		return errClosed
	}
	return ctx.Err()
}

// wrap turns a database error into the store's error, ErrClosed when the
// store was closed under the call.
func (s *Store) wrap(op string, err error) error {
	if err == nil {
		return nil
	}
	if s.closed.Load() {
		return errClosed
	}
	return fmt.Errorf("sqlite executor: %s: %w", op, err)
}

// stmt returns a read statement prepared on the pool, preparing and caching
// it on first use.
func (s *Store) stmt(ctx context.Context, query string) (*sql.Stmt, error) {
	s.stmtMu.RLock()
	st, ok := s.stmts[query]
	s.stmtMu.RUnlock()
	if ok {
		return st, nil
	}
	s.stmtMu.Lock()
	defer s.stmtMu.Unlock()
	if s.stmts == nil {
		return nil, errClosed
	}
	if st, ok := s.stmts[query]; ok {
		return st, nil
	}
	st, err := s.db.PrepareContext(ctx, query)
	if err != nil {
		return nil, err
	}
	if len(s.stmts) < 512 {
		s.stmts[query] = st
	}
	return st, nil
}

// query runs a read statement through the statement cache.
func (s *Store) query(ctx context.Context, q string, args ...any) (*sql.Rows, error) {
	st, err := s.stmt(ctx, q)
	if err != nil {
		return nil, err
	}
	return st.QueryContext(ctx, args...)
}

// queryRow runs a one-row read statement through the statement cache.
func (s *Store) queryRow(ctx context.Context, q string, args []any, dest ...any) error {
	st, err := s.stmt(ctx, q)
	if err != nil {
		return err
	}
	return st.QueryRowContext(ctx, args...).Scan(dest...)
}

// isUniqueViolation reports whether err is a UNIQUE or PRIMARY KEY
// constraint failure, by SQLite's extended result code.
func isUniqueViolation(err error) bool {
	var se *msqlite.Error
	if !errors.As(err, &se) {
		return false
	}
	c := se.Code()
	return c == sqlite3.SQLITE_CONSTRAINT_UNIQUE || c == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY
}

// openDSN is the executor.Driver for the "sqlite" scheme.
func openDSN(ctx context.Context, dsn string) (evento.Executor, error) {
	path, opts, err := parseDSN(dsn)
	if err != nil {
		return nil, err
	}
	if path == ":memory:" {
		return OpenMemory(ctx, opts...)
	}
	s, err := Open(ctx, path, opts...)
	if err != nil {
		return nil, err
	}
	if s.cfg.readOnly {
		return executor.ReadOnly(s), nil
	}
	return s, nil
}

// parseDSN splits "sqlite:<path>?opt=v&…" into a path and options:
//
//	durability=full|normal|off   PRAGMA synchronous FULL (default), NORMAL, OFF
//	lock_timeout=<d>             PRAGMA busy_timeout: 5s, 250ms or milliseconds
//	max_page_size=<n>            largest page a Read may ask for
//	default_page_size=<n>        page size of a Read that sets neither First nor Last
//	migrate=true|false           false: no DDL; ErrNotMigrated if not current
//	read_only=true|false         true: open the file read-only, create nothing
//	                             (ErrNoStore if missing; writes ErrReadOnly)
//
// synchronous=off|normal|full|extra and busy_timeout=<ms> (and their
// _-prefixed and sync spellings) are deprecated aliases of durability and
// lock_timeout. Unknown, malformed, inconsistent or inapplicable options
// give an error wrapping executor.ErrInvalidDSN.
func parseDSN(dsn string) (string, []Option, error) {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("sqlite executor: DSN %q: %s: %w", executor.Redact(dsn), fmt.Sprintf(format, a...), executor.ErrInvalidDSN)
	}
	scheme, err := executor.Scheme(dsn)
	if err != nil {
		return "", nil, err
	}
	if scheme != "sqlite" {
		return "", nil, bad("scheme %q is not sqlite", scheme)
	}
	rest := dsn[len("sqlite:"):]
	rest = strings.TrimPrefix(rest, "//")
	path, rawQuery, _ := strings.Cut(rest, "?")
	if path == "" {
		return "", nil, bad("no database path (want sqlite:<path> or sqlite::memory:)")
	}
	q, err := url.ParseQuery(rawQuery)
	if err != nil {
		return "", nil, bad("options: %v", err)
	}
	const known = "known: durability, lock_timeout, max_page_size, default_page_size, migrate, read_only"
	var opts []Option
	var errs []error
	seen := map[string]string{} // canonical name -> spelling used
	for k, vs := range q {
		v := vs[len(vs)-1]
		lk := strings.ToLower(k)
		canon := lk
		switch lk {
		case "synchronous", "_synchronous", "sync":
			canon = "durability"
		case "busy_timeout", "_busy_timeout":
			canon = "lock_timeout"
		}
		if prev, dup := seen[canon]; dup {
			errs = append(errs, bad("options %s and %s set the same thing", prev, k))
			continue
		}
		seen[canon] = k
		switch lk {
		case "durability":
			d, err := executor.ParseDurability(v)
			if err != nil {
				errs = append(errs, bad("option durability=%q: %v", v, err))
				continue
			}
			opts = append(opts, WithDurability(d))
		case "synchronous", "_synchronous", "sync": // deprecated: durability
			m := strings.ToUpper(v)
			switch m {
			case "OFF", "NORMAL", "FULL", "EXTRA":
				opts = append(opts, WithSynchronous(m))
			default:
				errs = append(errs, bad("option %s=%q is not off, normal, full or extra (deprecated: use durability=full|normal|off)", k, v))
			}
		case "lock_timeout", "busy_timeout", "_busy_timeout":
			d, err := executor.ParseTimeout(v)
			if err != nil {
				errs = append(errs, bad("option %s=%q: %v", k, v, err))
				continue
			}
			opts = append(opts, WithBusyTimeout(d))
		case "max_page_size", "default_page_size":
			n, err := strconv.Atoi(v)
			if err != nil || n <= 0 {
				errs = append(errs, bad("option %s=%q is not a positive number", k, v))
				continue
			}
			if lk == "max_page_size" {
				opts = append(opts, WithMaxPageSize(n))
			} else {
				opts = append(opts, WithDefaultPageSize(n))
			}
		case "migrate":
			b, err := strconv.ParseBool(v)
			if err != nil {
				errs = append(errs, bad("option migrate=%q is not a boolean", v))
				continue
			}
			opts = append(opts, WithMigrate(b))
		case "read_only":
			b, err := strconv.ParseBool(v)
			if err != nil {
				errs = append(errs, bad("option read_only=%q is not a boolean", v))
				continue
			}
			opts = append(opts, WithReadOnly(b))
		case "max_page":
			errs = append(errs, bad("unknown option %q (did you mean max_page_size?)", k))
		case "schema", "ordering":
			errs = append(errs, bad("option %q does not apply to the sqlite backend (%s)", k, known))
		default:
			errs = append(errs, bad("unknown option %q (%s)", k, known))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return "", nil, err
	}
	// Options that parse alone but not together (default_page_size above
	// max_page_size) are the DSN's fault too.
	cfg := defaults()
	for _, o := range opts {
		o(&cfg)
	}
	if err := cfg.validate(); err != nil {
		return "", nil, bad("%v", err)
	}
	return path, opts, nil
}

// checkVersion is migrate for a store opened with migrate=false: it reads
// the schema version and runs no DDL.
func (s *Store) checkVersion(ctx context.Context) error {
	latest := SchemaVersion()
	// The version, or 0 when the file has no schema_migrations table
	// (asked of sqlite_master, not guessed from an error's text).
	var current int
	var exists bool
	if err := s.db.QueryRowContext(ctx, "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations')").Scan(&exists); err != nil {
		return s.wrap("read schema version", err)
	}
	if exists {
		if err := s.db.QueryRowContext(ctx, "SELECT coalesce(max(version), 0) FROM schema_migrations").Scan(&current); err != nil {
			return s.wrap("read schema version", err)
		}
	}
	switch {
	case current > latest:
		return schemaTooNew(current, latest)
	case current < latest:
		return fmt.Errorf("sqlite executor: schema version %d, this code needs %d, and migrate=false forbids migrating (run executor.Migrate or evento migrate): %w", current, latest, executor.ErrNotMigrated)
	}
	return nil
}
