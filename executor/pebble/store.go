package pebble

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	pdb "github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/evento-go/evento"
	"github.com/evento-go/evento/cursor"
	"github.com/evento-go/evento/executor"
	"github.com/evento-go/evento/executor/internal/broadcast"
	"github.com/evento-go/evento/executor/storekit"
	"github.com/oklog/ulid/v2"
)

// defaultCacheSize is the block cache Open gives Pebble unless the Pebble
// options set one (Pebble's own default is 8 MiB, which a catch-up over a
// few hundred thousand events already thrashes).
const defaultCacheSize = 32 << 20

// schemaVersion is the on-disk layout version this code writes and reads.
const schemaVersion byte = 1

var _ evento.Executor = (*Store)(nil)

// Store is the Pebble executor: the event store, subscriber store and
// snapshot store over one Pebble database. All methods are safe for
// concurrent use.
//
// Only one Store may use a database at a time, and nothing else may write
// the database while it does: the store keeps the log's head and a cache of
// aggregate versions in memory.
type Store struct {
	db     *pdb.DB
	ownsDB bool
	// fsCloser stops the disk-health checks of the filesystem Open wrapped
	// (nil when the caller gave an FS), after db is closed.
	fsCloser io.Closer
	// release forgets the directory in heldDirs, after db is closed.
	release func()
	cfg     config
	wopts   *pdb.WriteOptions

	// closeMu is held for reading by every call in flight and for writing
	// by Close while it releases the database.
	closeMu sync.RWMutex
	closed  atomic.Bool
	closing chan struct{} // closed when Close starts
	done    chan struct{} // closed when the committer exits

	reqs chan *writeReq
	// head is the position of the last event whose Write could have
	// returned: its batch is committed and synced. Pebble shows a batch to
	// iterators before its WAL sync ends, so every read bounds by head.
	head    atomic.Uint64
	failure atomic.Pointer[failure] // set by the first failed commit
	ulids   *storekit.ULIDSource

	entriesRead atomic.Uint64 // index entries read by Read, for tests
	iterStats   *iterStats    // iterator statistics of reads, for tests (nil otherwise)
	commits     atomic.Uint64 // Pebble batches the committer wrote

	commitObs atomic.Pointer[CommitObserver] // set by ObserveCommits

	// Committer-owned state.
	next     uint64 // next position to assign
	lastID   ulid.ULID
	lastTS   time.Time
	versions map[evento.AggregateRef]aggState // bounded cache of committed aggregates
	pending  map[evento.AggregateRef]aggState // aggregates written by the group being committed
	keys     []string                         // scratch: routing keys of one write's spans

	// testHookCommitted, when set, runs after a group's batch committed
	// and before head moves past it.
	testHookCommitted func()
	keyBuf            []byte // scratch for the group's keys
	valBuf            []byte // scratch for the group's values

	subMu sync.Mutex // serialises subscriber and snapshot read-modify-writes

	notify broadcast.Broadcaster
}

type config struct {
	sync        bool
	migrate     bool
	clock       func() time.Time
	logger      *slog.Logger
	maxPage     int
	defaultPage int
	defaultSet  bool // defaultPage was given; else it shrinks to a smaller maximum
	cacheSize   int
	pebbleOpts  *pdb.Options
	maxGroupLen int
	readOnly    bool
}

// Option configures a Store.
type Option func(*config)

// WithSync sets whether commits are synced to stable storage before they
// are acknowledged. The default is true (durable commits). With false, a
// crash of the machine (not of the process) may lose the latest commits.
//
// Deprecated: use WithDurability (WithSync(false) is DurabilityNormal).
func WithSync(sync bool) Option { return func(c *config) { c.sync = sync } }

// WithDurability sets the durability of commits (the DSN option
// durability): executor.DurabilityFull (the default) syncs each commit to
// stable storage before acknowledging it; DurabilityNormal and DurabilityOff
// do not (Pebble has no weaker mode than an unsynced write-ahead log): a
// crash of the machine, not of the process, may lose the latest commits.
func WithDurability(d executor.Durability) Option {
	return func(c *config) { c.sync = d != executor.DurabilityNormal && d != executor.DurabilityOff }
}

// WithMigrate sets whether Open may create a store (default true). With
// false, Open refuses a directory that holds no Pebble database, and Open
// and New refuse a database without evento's format record, with an error
// wrapping executor.ErrNotMigrated; nothing is written. Pebble stores have
// no migrations beyond that record: executor.Migrate creates it.
func WithMigrate(migrate bool) Option { return func(c *config) { c.migrate = migrate } }

// WithReadOnly sets whether Open opens the store read-only (the DSN option
// read_only; default false). A read-only Open creates nothing: a directory
// that does not exist or holds no Pebble database gives an error wrapping
// executor.ErrNoStore, and a database without evento's format record one
// wrapping executor.ErrNotMigrated. Pebble refuses writes on a read-only
// database; openings by DSN also wrap the Store with executor.ReadOnly so
// every write fails with executor.ErrReadOnly. Pebble still takes the
// directory's lock: a store another process has open gives
// executor.ErrLocked.
func WithReadOnly(ro bool) Option { return func(c *config) { c.readOnly = ro } }

// WithClock sets the clock used for lease expiry, event timestamps and
// bookkeeping times. The default is time.Now.
func WithClock(now func() time.Time) Option {
	return func(c *config) {
		if now != nil {
			c.clock = now
		}
	}
}

// WithLogger sets the logger, which also receives Pebble's own log lines
// (its informational lines at Debug, its errors at Error). The default is
// slog.Default() at the time of Open.
func WithLogger(l *slog.Logger) Option {
	return func(c *config) {
		if l != nil {
			c.logger = l
		}
	}
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

// WithPebbleOptions sets the Pebble options Open uses (nil for the
// defaults). Open fills in the file system for the in-memory form, and a
// 32 MiB block cache when neither Cache nor CacheSize is set. It has no
// effect on New.
func WithPebbleOptions(o *pdb.Options) Option { return func(c *config) { c.pebbleOpts = o } }

// WithVersionCacheSize bounds the number of aggregate versions the
// committer keeps in memory (default 65536; 0 disables the cache).
func WithVersionCacheSize(n int) Option { return func(c *config) { c.cacheSize = n } }

func newConfig(opts []Option) config {
	c := config{
		sync:        true,
		migrate:     true,
		clock:       time.Now,
		logger:      slog.Default(),
		maxPage:     cursor.MaxPageSize,
		defaultPage: cursor.DefaultPageSize,
		cacheSize:   1 << 16,
		maxGroupLen: 4096,
	}
	for _, o := range opts {
		if o != nil {
			o(&c)
		}
	}
	return c
}

// Open opens (creating it if needed) the Pebble database in the directory
// path and returns a Store that owns it: Close closes the database.
func Open(ctx context.Context, path string, opts ...Option) (*Store, error) {
	if path == "" {
		return nil, errors.New("pebble executor: empty path")
	}
	return open(ctx, path, nil, opts)
}

// OpenMemory opens a Store over a fresh in-memory database (vfs.NewMem),
// for tests. Its data is lost on Close.
func OpenMemory(ctx context.Context, opts ...Option) (*Store, error) {
	return open(ctx, "", vfs.NewMem(), opts)
}

func open(ctx context.Context, path string, fs vfs.FS, opts []Option) (*Store, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("pebble executor: open: %w", err)
	}
	cfg := newConfig(opts)
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	var po pdb.Options
	if cfg.pebbleOpts != nil {
		po = *cfg.pebbleOpts
	}
	if fs != nil {
		po.FS = fs
	}
	if cfg.readOnly {
		if fs != nil {
			return nil, fmt.Errorf("pebble executor: read_only on an in-memory store: %w", executor.ErrInvalidDSN)
		}
		if err := hasStore(path, po.FS); err != nil {
			return nil, err
		}
		po.ReadOnly = true
		cfg.migrate = false // newStore writes nothing
	}
	if !cfg.migrate {
		po.ErrorIfNotExists = true
		if fs == nil && po.FS == nil {
			// Pebble would create the directory before finding no store.
			if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
				return nil, fmt.Errorf("pebble executor: open %q with migrate=false: no store there: %w", path, executor.ErrNotMigrated)
			}
		}
	}
	if po.Cache == nil && po.CacheSize == 0 {
		po.CacheSize = defaultCacheSize
	}
	switch {
	case po.LoggerAndTracer != nil: // Pebble uses it instead of Logger
	case po.Logger == nil:
		po.Logger = quietLogger{cfg.logger}
	default:
		po.Logger = fatalLogger{po.Logger}
	}
	// With no FS, Pebble wraps the OS filesystem with disk-health checks
	// whose goroutine only db.Close stops: a failed Open (a locked or missing
	// store) would leak it. Wrap it here instead and close it on every path.
	var fsCloser io.Closer
	if po.FS == nil {
		po.FS, fsCloser = vfs.WithDiskHealthChecks(vfs.Default, 5*time.Second, nil, func(info vfs.DiskSlowInfo) {
			if po.EventListener != nil && po.EventListener.DiskSlow != nil {
				po.EventListener.DiskSlow(info)
			}
		})
	}
	closeFS := func() {
		if fsCloser != nil {
			_ = fsCloser.Close()
		}
	}
	release := func() {}
	if fsCloser != nil { // the OS filesystem, not a caller's (in-memory) FS
		var err error
		if release, err = holdDir(path); err != nil {
			closeFS()
			return nil, err
		}
	}
	db, err := pdb.Open(path, &po)
	if err != nil {
		closeFS()
		release()
		// Another process holds the directory's lock (EAGAIN/EACCES from
		// flock). This process is caught before Open, by heldDirs.
		if errors.Is(err, syscall.EAGAIN) || errors.Is(err, syscall.EACCES) {
			return nil, fmt.Errorf("pebble executor: open %q: %v: %w", path, err, executor.ErrLocked)
		}
		if cfg.readOnly && errors.Is(err, pdb.ErrDBDoesNotExist) {
			return nil, fmt.Errorf("pebble executor: open %q read-only: no store there: %w", path, executor.ErrNoStore)
		}
		if !cfg.migrate && errors.Is(err, pdb.ErrDBDoesNotExist) {
			return nil, fmt.Errorf("pebble executor: open %q with migrate=false: no store there: %w", path, executor.ErrNotMigrated)
		}
		return nil, fmt.Errorf("pebble executor: open %q: %w", path, err)
	}
	s, err := newStore(db, true, cfg)
	if err != nil {
		_ = db.Close()
		closeFS()
		release()
		return nil, err
	}
	s.fsCloser = fsCloser
	s.release = release
	return s, nil
}

// hasStore checks, creating nothing, that the directory path holds a Pebble
// database (a MANIFEST file).
func hasStore(path string, fs vfs.FS) error {
	if fs == nil {
		fs = vfs.Default
	}
	names, err := fs.List(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("pebble executor: open %q read-only: no such directory: %w", path, executor.ErrNoStore)
		}
		return fmt.Errorf("pebble executor: open %q read-only: %w", path, err)
	}
	for _, n := range names {
		if strings.HasPrefix(n, "MANIFEST-") {
			return nil
		}
	}
	return fmt.Errorf("pebble executor: open %q read-only: the directory holds no Pebble store: %w", path, executor.ErrNoStore)
}

// New returns a Store over a database the caller opened. The caller keeps
// ownership: Store.Close does not close db, and the caller must close db
// only after Store.Close returned. Nothing else may write to db while the
// Store is open.
func New(db *pdb.DB, opts ...Option) (*Store, error) {
	if db == nil {
		return nil, errors.New("pebble executor: New: nil *pebble.DB")
	}
	cfg := newConfig(opts)
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	return newStore(db, false, cfg)
}

// validate checks the page sizes, the options a DSN and Go options share.
func (c *config) validate() error {
	def, err := executor.PageSizes(c.defaultPage, c.maxPage, c.defaultSet)
	if err != nil {
		return fmt.Errorf("pebble executor: %w", err)
	}
	c.defaultPage = def
	return nil
}

func newStore(db *pdb.DB, owns bool, cfg config) (*Store, error) {
	s := &Store{
		db:       db,
		ownsDB:   owns,
		cfg:      cfg,
		wopts:    pdb.NoSync,
		closing:  make(chan struct{}),
		done:     make(chan struct{}),
		reqs:     make(chan *writeReq),
		ulids:    storekit.NewULIDSource(),
		versions: make(map[evento.AggregateRef]aggState),
		pending:  make(map[evento.AggregateRef]aggState),
	}
	if cfg.sync {
		s.wopts = pdb.Sync
	}
	if err := s.checkSchema(); err != nil {
		return nil, err
	}
	head, lastID, err := s.loadHead()
	if err != nil {
		return nil, err
	}
	s.head.Store(head)
	s.lastID = lastID
	s.next = head + 1
	go s.commitLoop()
	return s, nil
}

func (s *Store) checkSchema() error {
	key := []byte{tagSchema}
	v, closer, err := s.db.Get(key)
	switch {
	case errors.Is(err, pdb.ErrNotFound):
		if !s.cfg.migrate {
			return fmt.Errorf("pebble executor: migrate=false and the database has no evento format record (version %d): %w", schemaVersion, executor.ErrNotMigrated)
		}
		if err := s.db.Set(key, []byte{schemaVersion}, pdb.Sync); err != nil {
			return fmt.Errorf("pebble executor: write schema version: %w", err)
		}
		return nil
	case err != nil:
		return fmt.Errorf("pebble executor: read schema version: %w", err)
	}
	defer closer.Close()
	if len(v) != 1 {
		return fmt.Errorf("pebble executor: schema version record is %d bytes: %w", len(v), errCorrupt)
	}
	if v[0] > schemaVersion {
		return fmt.Errorf("pebble executor: store schema %d, this code knows %d: %w", v[0], schemaVersion, evento.ErrSchemaTooNew)
	}
	return nil
}

// loadHead reads the last event's position and ID.
func (s *Store) loadHead() (uint64, ulid.ULID, error) {
	var id ulid.ULID
	it, err := s.db.NewIter(&pdb.IterOptions{LowerBound: []byte{tagEvent}, UpperBound: []byte{tagEvent + 1}})
	if err != nil {
		return 0, id, fmt.Errorf("pebble executor: read head: %w", err)
	}
	defer it.Close()
	if !it.Last() {
		if err := it.Error(); err != nil {
			return 0, id, fmt.Errorf("pebble executor: read head: %w", err)
		}
		return 0, id, nil
	}
	k := it.Key()
	v, err := it.ValueAndErr()
	if err != nil {
		return 0, id, fmt.Errorf("pebble executor: read head: %w", err)
	}
	id, ok := valueID(v)
	if len(k) != 9 || !ok {
		return 0, id, fmt.Errorf("pebble executor: bad last event %x: %w", k, errCorrupt)
	}
	return decodeU64(k[1:]), id, nil
}

// enter marks a call in flight; the caller must call s.leave after it when
// err is nil. A closed or failed Store refuses the call.
func (s *Store) enter() error {
	s.closeMu.RLock()
	if s.closed.Load() {
		s.closeMu.RUnlock()
		return fmt.Errorf("pebble executor: %w", evento.ErrClosed)
	}
	if f := s.failure.Load(); f != nil {
		s.closeMu.RUnlock()
		return f
	}
	return nil
}

func (s *Store) leave() { s.closeMu.RUnlock() }

// Close stops the committer, fails writes that were not yet committed with
// ErrClosed, waits for calls in flight, and closes the database if the
// Store opened it. Later calls return ErrClosed. Close is idempotent.
func (s *Store) Close() error {
	if !s.closed.CompareAndSwap(false, true) {
		return nil
	}
	close(s.closing)
	<-s.done
	s.closeMu.Lock() // wait for calls in flight
	defer s.closeMu.Unlock()
	s.notify.Close()
	if s.ownsDB {
		err := s.db.Close()
		if s.fsCloser != nil {
			_ = s.fsCloser.Close() // after the DB: it still writes through the FS
		}
		if s.release != nil {
			s.release()
		}
		if err != nil {
			return fmt.Errorf("pebble executor: close: %w", err)
		}
	}
	return nil
}

// Capabilities reports what the Pebble backend supports: one process, an
// in-process notifier, and the process's clock for leases.
func (s *Store) Capabilities() evento.Capabilities {
	return evento.Capabilities{Name: "pebble", MultiProcess: false, CrossProcessNotify: false, StoreClock: false}
}

// Notify returns a channel that receives a value after commits of this
// Store (coalesced). It is closed when ctx is done or the Store is closed.
func (s *Store) Notify(ctx context.Context) <-chan struct{} {
	if s.closed.Load() {
		ch := make(chan struct{})
		close(ch)
		return ch
	}
	return s.notify.Subscribe(ctx)
}

// quietLogger routes Pebble's own log lines to slog.
type quietLogger struct{ l *slog.Logger }

// Infof lines are Pebble's routine chatter (WAL recovery, compactions):
// Debug.
func (q quietLogger) Infof(format string, args ...any) {
	q.l.Debug(fmt.Sprintf("pebble: "+format, args...))
}

func (q quietLogger) Errorf(format string, args ...any) {
	q.l.Error(fmt.Sprintf("pebble: "+format, args...))
}

func (q quietLogger) Fatalf(format string, args ...any) {
	q.l.Error(fmt.Sprintf("pebble: fatal: "+format, args...))
	panic(newFatal(format, args))
}

// heldDirs are the directories this process has open as Stores. Pebble's
// lock file catches another process; a second Open in this one is refused
// here, with the same typed error, before Pebble reports it untyped.
var (
	heldMu   sync.Mutex
	heldDirs = map[string]bool{}
)

// holdDir records path as open, or returns executor.ErrLocked if this
// process holds it already. The returned func forgets it.
func holdDir(path string) (func(), error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("pebble executor: open %q: %w", path, err)
	}
	heldMu.Lock()
	defer heldMu.Unlock()
	if heldDirs[abs] {
		return nil, fmt.Errorf("pebble executor: open %q: this process already has the store open: %w", path, executor.ErrLocked)
	}
	heldDirs[abs] = true
	var once sync.Once
	return func() {
		once.Do(func() {
			heldMu.Lock()
			delete(heldDirs, abs)
			heldMu.Unlock()
		})
	}, nil
}
