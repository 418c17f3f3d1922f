package postgres

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/evento-go/evento"
	"github.com/evento-go/evento/cursor"
	"github.com/evento-go/evento/executor"
	"github.com/evento-go/evento/executor/storekit"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

func init() {
	d := executor.DriverFunc(func(ctx context.Context, dsn string) (evento.Executor, error) {
		s, err := Open(ctx, dsn)
		if err != nil {
			return nil, err
		}
		if s.cfg.readOnly {
			return executor.ReadOnly(s), nil
		}
		return s, nil
	})
	executor.Register("postgres", d)
	executor.Register("postgresql", d)
}

var _ evento.Executor = (*Store)(nil)

// DefaultSchema is the schema used when the DSN and the options name none.
const DefaultSchema = "evento"

// Ordering is how a store makes the global order agree with commit order.
// See the package documentation for the trade-offs.
type Ordering string

const (
	// OrderingTxHorizon orders events by (writing transaction id, sequence)
	// and hides events of transactions at or above the oldest running
	// transaction id. Writers run concurrently. It is the default.
	OrderingTxHorizon Ordering = "xid"
	// OrderingAdvisoryLock serialises appends with a transaction-level
	// advisory lock held until commit, and orders by a plain sequence.
	OrderingAdvisoryLock Ordering = "lock"
)

// Option configures Open and New.
type Option func(*config)

type config struct {
	schema       string
	ordering     Ordering
	orderingSet  bool
	logger       *slog.Logger
	pollInterval time.Duration
	listen       bool
	migrate      bool
	readOnly     bool
	// durability and lockTimeout become the server settings
	// synchronous_commit and lock_timeout of the connections Open makes.
	durability     executor.Durability
	lockTimeout    time.Duration
	lockTimeoutSet bool
	// maxPage and defaultPage bound and size Read's pages.
	maxPage     int
	defaultPage int
	defaultSet  bool
	// beforeInsert, for tests, returns a select-list expression that a
	// write evaluates after taking its ordering lock, before inserting (""
	// for none).
	beforeInsert func(ctx context.Context) string
	// explain, for tests, receives each page query of Read.
	explain func(sql string, args []any)
}

// WithSchema sets the PostgreSQL schema holding evento's tables (default
// DefaultSchema, or the DSN's schema option). It is created if missing. The
// name must be a plain lower-case identifier, [a-z_][a-z0-9_]*, at most 63
// bytes: anything else (upper case, which PostgreSQL would fold unless
// quoted, dashes, dots, ';', an empty name) is an error wrapping
// executor.ErrInvalidDSN rather than a schema whose name surprises whoever
// types it into psql.
func WithSchema(name string) Option { return func(c *config) { c.schema = name } }

// WithOrdering chooses the ordering strategy for a new schema. A schema
// remembers the strategy it was created with; opening it with another one is
// an error. Without this option an existing schema's strategy is used, and a
// new schema gets OrderingTxHorizon.
func WithOrdering(o Ordering) Option {
	return func(c *config) { c.ordering = o; c.orderingSet = true }
}

// WithLogger sets the logger for background problems (a lost LISTEN
// connection). The default is slog.Default().
func WithLogger(l *slog.Logger) Option { return func(c *config) { c.logger = l } }

// WithMigrate sets whether Open and New create and migrate the schema
// (default true). With false they run no DDL: a schema that is missing or
// older than this code's fails with an error wrapping
// executor.ErrNotMigrated (run executor.Migrate or `evento migrate` first),
// one that is newer with evento.ErrSchemaTooNew. A current schema opens
// without DDL either way.
func WithMigrate(migrate bool) Option { return func(c *config) { c.migrate = migrate } }

// WithReadOnly sets whether the store is opened read-only (the DSN option
// read_only; default false): no DDL whatever migrate says, a missing schema
// or one without evento's tables gives an error wrapping executor.ErrNoStore
// (nothing is created), and Open's connections run with
// default_transaction_read_only=on. Openings by DSN also wrap the Store with
// executor.ReadOnly so every write fails with executor.ErrReadOnly.
func WithReadOnly(ro bool) Option { return func(c *config) { c.readOnly = ro } }

// WithDurability sets the durability of commits (the DSN option
// durability) as the server setting synchronous_commit of the connections
// Open makes: executor.DurabilityFull is on; DurabilityNormal and
// DurabilityOff are off (a server crash may lose the latest acknowledged
// commits, never consistency). Without it the server's setting applies.
// New, whose pool the caller configured, refuses it.
func WithDurability(d executor.Durability) Option { return func(c *config) { c.durability = d } }

// WithLockTimeout sets the server setting lock_timeout of the connections
// Open makes (the DSN option lock_timeout): a statement waiting longer for
// a lock fails. 0 waits forever. Without it the server's setting applies.
// New refuses it.
func WithLockTimeout(d time.Duration) Option {
	return func(c *config) { c.lockTimeout = d; c.lockTimeoutSet = true }
}

// WithPollInterval sets how often Notify's fallback polls the store while the
// LISTEN connection is down (default 250ms).
func WithPollInterval(d time.Duration) Option { return func(c *config) { c.pollInterval = d } }

// WithoutListen disables the LISTEN connection: Notify then signals local
// commits and polls the store every poll interval for commits by others.
func WithoutListen() Option { return func(c *config) { c.listen = false } }

// Store is the PostgreSQL executor. It is safe for concurrent use.
type Store struct {
	pool     *pgxpool.Pool
	ownPool  bool
	cfg      config
	schema   string // quoted identifier
	rawDSN   string // redacted, for messages
	ordering Ordering
	ids      *storekit.ULIDSource
	q        queries

	closed    atomic.Bool
	closeOnce sync.Once
	ctx       context.Context
	cancel    context.CancelFunc
	wg        sync.WaitGroup
	notifier  *notifier
}

// evento options accepted in a DSN besides libpq's and pgxpool's.
var eventoOptions = map[string]bool{
	"schema": true, "ordering": true, "listen": true, "poll_interval": true,
	"migrate": true, "durability": true, "lock_timeout": true, "read_only": true,
	"max_page_size": true, "default_page_size": true,
}

// options of other backends that PostgreSQL does not have.
var notHere = map[string]string{
	"busy_timeout": "use lock_timeout",
	"synchronous":  "use durability=full|normal|off",
	"sync":         "use durability=full|normal|off",
	"max_page":     "use max_page_size",
}

// validSchema reports whether name is a plain lower-case identifier of at
// most 63 bytes (PostgreSQL's NAMEDATALEN-1).
func validSchema(name string) bool {
	if name == "" || len(name) > 63 {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case c >= 'a' && c <= 'z', c == '_':
		case i > 0 && c >= '0' && c <= '9':
		default:
			return false
		}
	}
	return true
}

// libpq connection keywords and pgx/pgxpool options, passed through.
var passThrough = map[string]bool{
	"host": true, "hostaddr": true, "port": true, "dbname": true, "database": true, "user": true,
	"password": true, "passfile": true, "connect_timeout": true, "client_encoding": true, "options": true,
	"application_name": true, "fallback_application_name": true, "keepalives": true,
	"keepalives_idle": true, "keepalives_interval": true, "keepalives_count": true,
	"tcp_user_timeout": true, "sslmode": true, "sslcert": true, "sslkey": true, "sslrootcert": true,
	"sslcrl": true, "sslpassword": true, "sslsni": true, "sslnegotiation": true, "sslinline": true, "requirepeer": true,
	"krbsrvname": true, "gsslib": true, "service": true, "servicefile": true, "target_session_attrs": true,
	"channel_binding": true, "load_balance_hosts": true, "min_read_buffer_size": true,
	"statement_cache_capacity": true, "description_cache_capacity": true, "default_query_exec_mode": true,
	"search_path": true, "timezone": true, "TimeZone": true,
	"pool_max_conns": true, "pool_min_conns": true, "pool_min_idle_conns": true, "pool_max_conn_lifetime": true,
	"pool_max_conn_lifetime_jitter": true, "pool_max_conn_idle_time": true, "pool_health_check_period": true,
}

// Open connects to the PostgreSQL server named by dsn, a libpq URL
// (postgres://user:pass@host:5432/db?sslmode=disable) with these evento
// options besides libpq's and pgxpool's (pool_max_conns, …):
//
//	schema=<name>          schema of evento's tables (default "evento");
//	                       [a-z_][a-z0-9_]*, at most 63 bytes
//	ordering=xid|lock      ordering strategy for a new schema (see Ordering)
//	listen=false           no LISTEN connection: Notify polls instead
//	poll_interval=250ms    Notify's fallback polling interval
//	durability=full|normal|off  synchronous_commit on, off, off (default:
//	                       the server's)
//	lock_timeout=<d>       the server's lock_timeout: 5s, 250ms or ms
//	migrate=false          no DDL; executor.ErrNotMigrated unless current
//	read_only=true         no DDL, read-only sessions; executor.ErrNoStore
//	                       if the schema is missing; writes ErrReadOnly
//	max_page_size=<n>      largest page a Read may ask for (default 1000)
//	default_page_size=<n>  page of a Read without First/Last (default 20)
//
// An unknown or malformed option, or one of another backend's
// (busy_timeout, synchronous, sync, max_page), gives an error wrapping
// executor.ErrInvalidDSN. Open creates or migrates the schema (unless
// migrate=false), and fails with an error wrapping evento.ErrSchemaTooNew
// when the schema was written by a newer evento.
// Options given as arguments override the DSN's.
func Open(ctx context.Context, dsn string, opts ...Option) (*Store, error) {
	red := executor.Redact(dsn)
	u, err := url.Parse(dsn)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		return nil, fmt.Errorf("postgres executor: DSN %q is not a postgres:// URL: %w", red, executor.ErrInvalidDSN)
	}
	// The query is read and rebuilt as raw text, like libpq reads it: pairs
	// split on '&', each half percent-decoded, '+' a plain character, the
	// last occurrence winning. url.Values would decode '+' as a space and
	// re-encode spaces as '+', which libpq and pgx read as a '+'
	// (application_name=my%20app would arrive as "my+app").
	q, kept, err := splitQuery(u.RawQuery)
	if err != nil {
		return nil, fmt.Errorf("postgres executor: DSN %q: %v: %w", red, err, executor.ErrInvalidDSN)
	}
	var dsnOpts []Option
	var bad []string
	for k, v := range q {
		switch {
		case k == "schema":
			if !validSchema(v) {
				return nil, fmt.Errorf("postgres executor: DSN %q: schema=%q is not a plain lower-case identifier ([a-z_][a-z0-9_]*, at most 63 bytes): %w", red, v, executor.ErrInvalidDSN)
			}
			dsnOpts = append(dsnOpts, WithSchema(v))
		case k == "migrate":
			b, err := strconv.ParseBool(v)
			if err != nil {
				return nil, fmt.Errorf("postgres executor: DSN %q: migrate=%q is not a boolean: %w", red, v, executor.ErrInvalidDSN)
			}
			dsnOpts = append(dsnOpts, WithMigrate(b))
		case k == "read_only":
			b, err := strconv.ParseBool(v)
			if err != nil {
				return nil, fmt.Errorf("postgres executor: DSN %q: read_only=%q is not a boolean: %w", red, v, executor.ErrInvalidDSN)
			}
			dsnOpts = append(dsnOpts, WithReadOnly(b))
		case k == "durability":
			d, err := executor.ParseDurability(v)
			if err != nil {
				return nil, fmt.Errorf("postgres executor: DSN %q: %v: %w", red, err, executor.ErrInvalidDSN)
			}
			dsnOpts = append(dsnOpts, WithDurability(d))
		case k == "max_page_size" || k == "default_page_size":
			n, err := strconv.Atoi(v)
			if err != nil || n <= 0 {
				return nil, fmt.Errorf("postgres executor: DSN %q: option %s=%q is not a positive integer: %w", red, k, v, executor.ErrInvalidDSN)
			}
			if k == "max_page_size" {
				dsnOpts = append(dsnOpts, WithMaxPageSize(n))
			} else {
				dsnOpts = append(dsnOpts, WithDefaultPageSize(n))
			}
		case k == "lock_timeout":
			d, err := executor.ParseTimeout(v)
			if err != nil {
				return nil, fmt.Errorf("postgres executor: DSN %q: lock_timeout: %v: %w", red, err, executor.ErrInvalidDSN)
			}
			dsnOpts = append(dsnOpts, WithLockTimeout(d))
		case notHere[k] != "":
			return nil, fmt.Errorf("postgres executor: DSN %q: option %s does not apply to the postgres backend (%s): %w", red, k, notHere[k], executor.ErrInvalidDSN)
		case k == "ordering":
			o := Ordering(v)
			if o != OrderingTxHorizon && o != OrderingAdvisoryLock {
				return nil, fmt.Errorf("postgres executor: DSN %q: ordering=%q (want xid or lock): %w", red, v, executor.ErrInvalidDSN)
			}
			dsnOpts = append(dsnOpts, WithOrdering(o))
		case k == "listen":
			switch v {
			case "false", "0", "off", "no":
				dsnOpts = append(dsnOpts, WithoutListen())
			case "true", "1", "on", "yes":
			default:
				return nil, fmt.Errorf("postgres executor: DSN %q: listen=%q (want true or false): %w", red, v, executor.ErrInvalidDSN)
			}
		case k == "poll_interval":
			d, err := time.ParseDuration(v)
			if err != nil || d <= 0 {
				return nil, fmt.Errorf("postgres executor: DSN %q: poll_interval=%q is not a positive duration: %w", red, v, executor.ErrInvalidDSN)
			}
			dsnOpts = append(dsnOpts, WithPollInterval(d))
		case passThrough[k]:
		default:
			bad = append(bad, k)
		}
	}
	if len(bad) > 0 {
		return nil, fmt.Errorf("postgres executor: DSN %q: unknown option(s) %s (evento options: schema, ordering, listen, poll_interval, durability, lock_timeout, migrate, read_only, max_page_size, default_page_size; plus libpq and pool_* options): %w",
			red, strings.Join(bad, ", "), executor.ErrInvalidDSN)
	}
	u.RawQuery = kept
	pcfg, err := pgxpool.ParseConfig(u.String())
	if err != nil {
		return nil, fmt.Errorf("postgres executor: DSN %q: %s: %w", red, redactErr(err), executor.ErrInvalidDSN)
	}
	all := append(dsnOpts, opts...)
	pre := defaultConfig()
	for _, o := range all {
		o(&pre)
	}
	if err := pre.validate(); err != nil {
		return nil, err
	}
	if pcfg.ConnConfig.RuntimeParams == nil {
		pcfg.ConnConfig.RuntimeParams = map[string]string{}
	}
	if p := pcfg.ConnConfig.RuntimeParams; p != nil {
		switch pre.durability {
		case executor.DurabilityFull:
			p["synchronous_commit"] = "on"
		case executor.DurabilityNormal, executor.DurabilityOff:
			p["synchronous_commit"] = "off"
		}
		if pre.lockTimeoutSet {
			p["lock_timeout"] = strconv.FormatInt(pre.lockTimeout.Milliseconds(), 10)
		}
		if pre.readOnly {
			p["default_transaction_read_only"] = "on"
		}
		// The planner settings reads need start with each connection,
		// rather than being sent with every read (see
		// sessionPlanSettings).
		for k, v := range sessionPlanSettings {
			p[k] = v
		}
	}
	pool, err := pgxpool.NewWithConfig(ctx, pcfg)
	if err != nil {
		return nil, fmt.Errorf("postgres executor: DSN %q: %s: %w", red, redactErr(err), executor.ErrInvalidDSN)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("postgres executor: cannot reach %q: %s", red, redactErr(err))
	}
	s, err := newStore(ctx, pool, true, red, all)
	if err != nil {
		pool.Close()
		return nil, err
	}
	return s, nil
}

// splitQuery reads a DSN's raw query string: it returns every option's
// decoded value (the last occurrence of a key wins) and the raw text of the
// pairs that are not evento's, untouched, to pass on to pgx.
func splitQuery(raw string) (map[string]string, string, error) {
	opts := map[string]string{}
	var kept []string
	for pair := range strings.SplitSeq(raw, "&") {
		if pair == "" {
			continue
		}
		rk, rv, _ := strings.Cut(pair, "=")
		k, err := url.PathUnescape(rk)
		if err != nil {
			return nil, "", fmt.Errorf("option %q: %v", rk, err)
		}
		v, err := url.PathUnescape(rv)
		if err != nil {
			// Not err's text: it quotes the value, maybe a password.
			return nil, "", fmt.Errorf("option %s: invalid percent-encoding", k)
		}
		opts[k] = v
		if !eventoOptions[k] {
			kept = append(kept, pair)
		}
	}
	return opts, strings.Join(kept, "&"), nil
}

// New makes a Store over a ready pool, which the caller keeps owning: Close
// does not close it. The schema is created or migrated as by Open.
func New(ctx context.Context, pool *pgxpool.Pool, opts ...Option) (*Store, error) {
	if pool == nil {
		return nil, errors.New("postgres executor: New: nil pool")
	}
	return newStore(ctx, pool, false, executor.Redact(pool.Config().ConnString()), opts)
}

func defaultConfig() config {
	return config{schema: DefaultSchema, logger: slog.Default(), pollInterval: 250 * time.Millisecond, listen: true, migrate: true,
		maxPage: cursor.MaxPageSize, defaultPage: cursor.DefaultPageSize}
}

// WithMaxPageSize sets the largest page a Read may ask for (default
// cursor.MaxPageSize).
func WithMaxPageSize(n int) Option { return func(c *config) { c.maxPage = n } }

// WithDefaultPageSize sets the page size of a Read that sets neither First
// nor Last (default cursor.DefaultPageSize, or the maximum page size when
// that is smaller). A default above the maximum is an error.
func WithDefaultPageSize(n int) Option {
	return func(c *config) { c.defaultPage, c.defaultSet = n, true }
}

// validate checks the options that Open and New share.
func (cfg *config) validate() error {
	def, err := executor.PageSizes(cfg.defaultPage, cfg.maxPage, cfg.defaultSet)
	if err != nil {
		return fmt.Errorf("postgres executor: %w", err)
	}
	cfg.defaultPage = def
	if !validSchema(cfg.schema) {
		return fmt.Errorf("postgres executor: schema name %q is not a plain lower-case identifier ([a-z_][a-z0-9_]*, at most 63 bytes): %w", cfg.schema, executor.ErrInvalidDSN)
	}
	if cfg.orderingSet && cfg.ordering != OrderingTxHorizon && cfg.ordering != OrderingAdvisoryLock {
		return fmt.Errorf("postgres executor: unknown ordering %q (want %q or %q)", cfg.ordering, OrderingTxHorizon, OrderingAdvisoryLock)
	}
	if cfg.durability != "" {
		if _, err := executor.ParseDurability(string(cfg.durability)); err != nil {
			return fmt.Errorf("postgres executor: %v", err)
		}
	}
	if cfg.lockTimeout < 0 {
		return fmt.Errorf("postgres executor: lock timeout %v is negative", cfg.lockTimeout)
	}
	return nil
}

func newStore(ctx context.Context, pool *pgxpool.Pool, own bool, red string, opts []Option) (*Store, error) {
	cfg := defaultConfig()
	for _, o := range opts {
		o(&cfg)
	}
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if !own && (cfg.durability != "" || cfg.lockTimeoutSet) {
		return nil, errors.New("postgres executor: New: WithDurability and WithLockTimeout set connection settings, which only Open makes; configure the pool's RuntimeParams (synchronous_commit, lock_timeout) instead")
	}
	if cfg.logger == nil {
		cfg.logger = slog.Default()
	}
	if cfg.pollInterval <= 0 {
		cfg.pollInterval = 250 * time.Millisecond
	}
	s := &Store{
		pool:    pool,
		ownPool: own,
		cfg:     cfg,
		schema:  pgx.Identifier{cfg.schema}.Sanitize(),
		rawDSN:  red,
		ids:     storekit.NewULIDSource(),
	}
	ordering, err := s.migrate(ctx)
	if err != nil {
		return nil, err
	}
	s.ordering = ordering
	s.q = buildQueries(s.schema, ordering, lockKey("evento.writers."+cfg.schema), lockKey("evento.append."+cfg.schema), own)
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.notifier = newNotifier(s)
	return s, nil
}

// Ordering returns the store's ordering strategy.
func (s *Store) Ordering() Ordering { return s.ordering }

// Pool returns the store's connection pool.
func (s *Store) Pool() *pgxpool.Pool { return s.pool }

// Schema returns the name of the store's schema.
func (s *Store) Schema() string { return s.cfg.schema }

// Capabilities reports a multi-process store with cross-process notifications
// and lease expiry by the server's clock.
func (s *Store) Capabilities() evento.Capabilities {
	return evento.Capabilities{Name: "postgres", MultiProcess: true, CrossProcessNotify: true, StoreClock: true}
}

// Close stops the notifier, closes Notify channels and, for a store made by
// Open, the pool. Later calls return evento.ErrClosed. It is idempotent.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		s.closed.Store(true)
		s.cancel()
		s.notifier.close()
		s.wg.Wait()
		if s.ownPool {
			s.pool.Close()
		}
	})
	return nil
}

func (s *Store) check() error {
	if s.closed.Load() {
		return fmt.Errorf("postgres executor: %w", evento.ErrClosed)
	}
	return nil
}

// wrap adds the package prefix to a database error, and turns an error after
// Close into ErrClosed.
func (s *Store) wrap(op string, err error) error {
	if err == nil {
		return nil
	}
	if s.closed.Load() && !errors.Is(err, evento.ErrClosed) {
		return fmt.Errorf("postgres executor: %s: %w (%w)", op, evento.ErrClosed, err)
	}
	return fmt.Errorf("postgres executor: %s: %w", op, err)
}

// redactErr returns err's text without the DSN's secrets. A pgx parse
// error carries the connection string: it is printed through
// executor.Redact, which parses it (pgx's own masking is best effort and
// leaks quoted passwords with spaces). Other errors (dial, authentication,
// server errors) do not contain the DSN; their text is kept as it is, not
// scrubbed of substrings that equal the password, which garbled unrelated
// text ("127.0.0.1" with password "1") and gave short passwords away.
func redactErr(err error) string {
	var pe *pgconn.ParseConfigError
	if errors.As(err, &pe) {
		cp := *pe
		cp.ConnString = executor.Redact(pe.ConnString)
		msg := cp.Error()
		// A *url.Error inside quotes the whole URL, password included.
		var ue *url.Error
		if errors.As(pe.Unwrap(), &ue) {
			msg = strings.Replace(msg, ue.Error(), ue.Op+": "+ue.Err.Error(), 1)
		}
		return msg
	}
	return err.Error()
}

// lockKey maps a name to an advisory lock key (FNV-1a, 64 bits).
func lockKey(name string) int64 {
	var h uint64 = 14695981039346656037
	for i := 0; i < len(name); i++ {
		h ^= uint64(name[i])
		h *= 1099511628211
	}
	return int64(h)
}
