package subscription

import (
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math"
	"slices"
	"time"

	"github.com/evento-go/evento"
	"github.com/evento-go/evento/cursor"
)

// Errors of this package. Every error the package returns with one of these
// causes wraps it, so callers test with errors.Is.
var (
	// ErrInvalidConfig means a subscription's definition or configuration
	// is invalid. Validate returns every problem joined.
	ErrInvalidConfig = errors.New("subscription: invalid configuration")
	// ErrNoHandler means the safety check is on and an event the
	// subscription reads has no handler and is not skip-listed.
	ErrNoHandler = errors.New("subscription: no handler for event")
	// ErrHandlerPanic means a handler panicked; the panic was recovered and
	// treated as a handler error.
	ErrHandlerPanic = errors.New("subscription: handler panicked")
	// ErrRetriesExhausted wraps the last handler error of an event that
	// failed more than its retry policy allows.
	ErrRetriesExhausted = errors.New("subscription: handler retries exhausted")
	// ErrNotTransactional means a transactional subscription
	// (Config.Transactional) was started on an executor that does not
	// implement evento.TxAcknowledger, or Replay was asked of one (parked
	// events of a transactional subscription are not replayed yet: reset
	// the subscriber to their cursor instead).
	ErrNotTransactional = errors.New("subscription: executor has no transactional acknowledgements")
)

// AckMode says when a worker acknowledges handled events.
type AckMode uint8

const (
	// AckPerChunk acknowledges once per chunk (and before stopping,
	// releasing a lease or parking an event). It is the default. A chunk
	// ends at the head, so a tailing worker, whose pages are one or a few
	// events long, acknowledges about as often as AckPerEvent; a worker
	// catching up lets its chunks grow and writes their acknowledgements
	// in the background, so few store writes keep catch-up close to the
	// speed of a raw scan. The cost is that after a crash up to
	// Config.MaxChunkSize already-handled events are delivered again.
	AckPerChunk AckMode = iota
	// AckPerEvent acknowledges after every handled event: at most one event
	// is delivered again after a crash, at the price of one store write per
	// event (a durable commit, ~0.2 ms or more).
	AckPerEvent
)

// String names the acknowledgement mode.
func (m AckMode) String() string {
	switch m {
	case AckPerChunk:
		return "per-chunk"
	case AckPerEvent:
		return "per-event"
	}
	return fmt.Sprintf("AckMode(%d)", uint8(m))
}

// ExhaustedPolicy says what a worker does with an event whose handler still
// fails after the retry policy's last attempt.
type ExhaustedPolicy uint8

const (
	// StopWorker stops the worker (the default): the event is not
	// acknowledged, the error is recorded as the subscriber's last error
	// and returned by Worker.Stop and Worker.Err. A restarted worker tries
	// the event again.
	StopWorker ExhaustedPolicy = iota
	// ParkEvent sets the event aside in the dead-letter list
	// (evento.Ack.Park), acknowledges it and goes on. Parked events are
	// listed by the executor's ParkedEvents and replayed by
	// Subscription.Replay.
	ParkEvent
)

// String names the policy.
func (p ExhaustedPolicy) String() string {
	switch p {
	case StopWorker:
		return "stop"
	case ParkEvent:
		return "park"
	}
	return fmt.Sprintf("ExhaustedPolicy(%d)", uint8(p))
}

// RetryPolicy is the exponential backoff between attempts of a failing
// handler. Attempt k (k >= 1) failing waits
// min(Initial * Multiplier^(k-1), Max), reduced by a random fraction of at
// most Jitter, before attempt k+1.
type RetryPolicy struct {
	// Initial is the delay after the first failure. Zero means 100 ms.
	Initial time.Duration
	// Max caps the delay. Zero means 30 s.
	Max time.Duration
	// Multiplier grows the delay after each failure. Zero means 2; it must
	// be at least 1.
	Multiplier float64
	// Jitter is the largest fraction, in [0, 1], taken off each delay at
	// random so that workers do not retry in lockstep. Zero means no
	// jitter; DefaultRetryPolicy uses 0.2.
	Jitter float64
	// MaxAttempts is the number of attempts, the first included, before the
	// ExhaustedPolicy applies. Zero means 5; 1 means no retry.
	MaxAttempts int
}

// DefaultRetryPolicy is the policy used when Config.Retry is the zero value:
// 100 ms doubling up to 30 s, 20% jitter, 5 attempts.
func DefaultRetryPolicy() RetryPolicy {
	return RetryPolicy{Initial: 100 * time.Millisecond, Max: 30 * time.Second, Multiplier: 2, Jitter: 0.2, MaxAttempts: 5}
}

func (r *RetryPolicy) ensureDefaults() {
	if *r == (RetryPolicy{}) {
		*r = DefaultRetryPolicy()
		return
	}
	d := DefaultRetryPolicy()
	if r.Initial == 0 {
		r.Initial = d.Initial
	}
	if r.Max == 0 {
		r.Max = d.Max
	}
	if r.Multiplier == 0 {
		r.Multiplier = d.Multiplier
	}
	if r.MaxAttempts == 0 {
		r.MaxAttempts = d.MaxAttempts
	}
}

func (r *RetryPolicy) validate() []error {
	var errs []error
	if r.Initial < 0 {
		errs = append(errs, fmt.Errorf("subscription: retry initial delay %v is negative: %w", r.Initial, ErrInvalidConfig))
	}
	if r.Max < 0 {
		errs = append(errs, fmt.Errorf("subscription: retry max delay %v is negative: %w", r.Max, ErrInvalidConfig))
	}
	if r.Max > 0 && r.Initial > r.Max {
		errs = append(errs, fmt.Errorf("subscription: retry initial delay %v exceeds max delay %v: %w", r.Initial, r.Max, ErrInvalidConfig))
	}
	if r.Multiplier < 1 || math.IsNaN(r.Multiplier) || math.IsInf(r.Multiplier, 0) {
		errs = append(errs, fmt.Errorf("subscription: retry multiplier %v must be a finite number >= 1: %w", r.Multiplier, ErrInvalidConfig))
	}
	if r.Jitter < 0 || r.Jitter > 1 || math.IsNaN(r.Jitter) {
		errs = append(errs, fmt.Errorf("subscription: retry jitter %v must be in [0, 1]: %w", r.Jitter, ErrInvalidConfig))
	}
	if r.MaxAttempts < 0 {
		errs = append(errs, fmt.Errorf("subscription: retry max attempts %d is negative: %w", r.MaxAttempts, ErrInvalidConfig))
	}
	return errs
}

// Delay returns the delay after the attempt-th failure (attempt >= 1),
// before jitter.
func (r RetryPolicy) Delay(attempt int) time.Duration {
	d := float64(r.Initial)
	for i := 1; i < attempt && d < float64(r.Max); i++ {
		d *= r.Multiplier
	}
	if r.Max > 0 && d > float64(r.Max) {
		d = float64(r.Max)
	}
	return time.Duration(d)
}

// MaxPartitions is the largest number of partitions a subscription may have.
const MaxPartitions = 1024

// Defaults applied by Config.EnsureDefaults.
const (
	DefaultChunkSize    = 300
	DefaultMaxChunkSize = 10_000
	DefaultLeaseTTL     = 30 * time.Second
	DefaultPollInterval = time.Second
)

// MaxChunkAge is the longest a worker catching up handles events before it
// acknowledges them: a chunk ends at the first page boundary after it (see
// Config.MaxChunkSize).
const MaxChunkAge = time.Second

// Config is a subscription's configuration. The builder methods of
// Subscription set it; EnsureDefaults fills zero fields and Validate checks
// it.
type Config struct {
	// Key names the subscription: its cursor, leases and parked events are
	// stored under it. Required.
	Key string
	// Routing selects events by routing key; the zero value selects all.
	Routing evento.Routing
	// ChunkSize is the number of events read per page at the head (behind
	// it pages double up to cursor.MaxPageSize, or the store's maximum page
	// size when lower), at most cursor.MaxPageSize, and the first chunk a
	// worker behind the head acknowledges. Transactional subscriptions read
	// and commit pages of ChunkSize. Zero means DefaultChunkSize.
	ChunkSize int
	// MaxChunkSize bounds redelivery with AckPerChunk: a worker never has
	// more than MaxChunkSize events handled and not stored as acknowledged,
	// so a crash delivers at most that many again. A chunk is the run of
	// events one acknowledgement covers: it ends at the head (a tailing
	// worker acknowledges every page that reaches it, at once), and while
	// a worker is behind it starts at ChunkSize and doubles with each
	// acknowledgement up to MaxChunkSize/2 (or MaxChunkAge of handling),
	// acknowledged in the background while the next is handled. Zero
	// means DefaultMaxChunkSize; it must be at least ChunkSize, and
	// MaxChunkSize = ChunkSize acknowledges every page. Transactional
	// subscriptions commit every page whatever it is.
	MaxChunkSize int
	// StartDelay is how long a started worker waits before its first claim.
	StartDelay time.Duration
	// SafetyCheck makes an event with no handler (and not skip-listed) an
	// error (ErrNoHandler), handled by the ExhaustedPolicy without retries,
	// instead of being acknowledged silently.
	SafetyCheck bool
	// Partitions splits the subscription into this many partitions, each
	// with its own cursor and lease (see PartitionOf). Zero means 1.
	// It is part of the stored selection: a worker with another count is
	// refused with a *SelectionChangedError until the key is reset.
	Partitions int
	// MaxClaims caps the number of partitions one worker holds at once.
	// Zero means no cap: a worker takes every free partition up to its fair
	// share (see the package documentation).
	MaxClaims int
	// LeaseTTL is how long a lease lives without renewal; a dead holder's
	// partitions are taken over about LeaseTTL after its last renewal.
	// Zero means DefaultLeaseTTL.
	LeaseTTL time.Duration
	// Heartbeat is the interval between lease renewals, less than LeaseTTL.
	// Zero means LeaseTTL/3.
	Heartbeat time.Duration
	// LeaseMargin is taken off the lease TTL to make the worker's local
	// deadline: start of the last successful claim or renewal (monotonic
	// clock, taken before the call) + LeaseTTL - LeaseMargin. No handler
	// starts after it, and the running handler's context is cancelled at
	// it, so no handler starts once another worker can claim. It must
	// cover the time between the deadline check and the handler's start,
	// and the drift between this clock and the store's over one TTL.
	// Zero means LeaseTTL/10.
	LeaseMargin time.Duration
	// ClaimInterval is the longest interval between claim attempts on
	// partitions this worker does not hold (a held lease is tried again
	// just after its expiry, if sooner). Zero means LeaseTTL/4.
	ClaimInterval time.Duration
	// Retry is the backoff between attempts of a failing handler. The zero
	// value means DefaultRetryPolicy.
	Retry RetryPolicy
	// OnExhausted says what happens to an event whose handler failed
	// Retry.MaxAttempts times: StopWorker (the default) or ParkEvent.
	OnExhausted ExhaustedPolicy
	// AckMode says when handled events are acknowledged: AckPerChunk (the
	// default) or AckPerEvent.
	AckMode AckMode
	// Transactional runs handlers inside the store transaction that
	// acknowledges them (evento.TxAcknowledger): a handler's writes to a
	// read model in the same store commit with the cursor move and the
	// fencing check, or not at all — effectively once. One transaction
	// per chunk (AckPerChunk) or per event (AckPerEvent). Handlers get the
	// transaction with the backend's accessor (sqlite.TxFrom,
	// postgres.TxFrom, pebble.KVFrom) or Tx. An executor without
	// transactional acknowledgements is refused with ErrNotTransactional.
	Transactional bool
	// PollInterval is how often a tailing worker re-reads without a
	// notification: the fallback when a signal is missed, and the only way
	// to see other processes' commits when the executor's Capabilities has
	// no CrossProcessNotify. Zero means DefaultPollInterval.
	PollInterval time.Duration
	// Logger receives the worker's logs. Nil means slog.Default().
	Logger *slog.Logger
	// WorkerID names the lease holder. Empty means a fresh id per Start
	// (host, pid and random bytes). Two running workers must never share
	// one id.
	WorkerID string
	// Signals are optional callbacks fired at lease, ack and stop events,
	// for tests and instrumentation.
	Signals *Signals
	// Intercept, when set, runs around every handler call (tracing,
	// metrics); see Interceptor and Subscription.Intercept.
	Intercept Interceptor
}

// EnsureDefaults fills the zero fields of c with their defaults.
func (c *Config) EnsureDefaults() {
	if c.ChunkSize == 0 {
		c.ChunkSize = DefaultChunkSize
	}
	if c.MaxChunkSize == 0 {
		c.MaxChunkSize = max(DefaultMaxChunkSize, c.ChunkSize)
	}
	if c.Partitions == 0 {
		c.Partitions = 1
	}
	if c.LeaseTTL == 0 {
		c.LeaseTTL = DefaultLeaseTTL
	}
	if c.Heartbeat == 0 {
		c.Heartbeat = c.LeaseTTL / 3
	}
	if c.LeaseMargin == 0 {
		c.LeaseMargin = c.LeaseTTL / 10
	}
	if c.ClaimInterval == 0 {
		c.ClaimInterval = max(c.LeaseTTL/4, time.Millisecond)
	}
	if c.PollInterval == 0 {
		c.PollInterval = DefaultPollInterval
	}
	c.Retry.ensureDefaults()
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
}

// Validate checks c (call EnsureDefaults first) and returns every problem,
// joined with errors.Join, each wrapping ErrInvalidConfig.
func (c *Config) Validate() error {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("subscription: "+format+": %w", append(args, ErrInvalidConfig)...))
	}
	if c.Key == "" {
		bad("empty subscription key")
	} else if len(c.Key) > evento.MaxIdentLen {
		bad("key is %d bytes, over the %d-byte limit", len(c.Key), evento.MaxIdentLen)
	}
	if k, ok := c.Routing.Key(); ok {
		q := evento.Query{Routing: evento.RoutingKey(k)}
		if err := q.Validate(0); err != nil {
			bad("routing: %v", err)
		}
	}
	if c.ChunkSize < 1 || c.ChunkSize > cursor.MaxPageSize {
		bad("chunk size %d must be in [1, %d]", c.ChunkSize, cursor.MaxPageSize)
	}
	if c.MaxChunkSize < c.ChunkSize {
		bad("max chunk size %d is below the chunk size %d", c.MaxChunkSize, c.ChunkSize)
	}
	if c.StartDelay < 0 {
		bad("start delay %v is negative", c.StartDelay)
	}
	if c.Partitions < 1 || c.Partitions > MaxPartitions {
		bad("partitions %d must be in [1, %d]", c.Partitions, MaxPartitions)
	}
	if c.MaxClaims < 0 {
		bad("max claims %d is negative", c.MaxClaims)
	}
	if c.LeaseTTL <= 0 {
		bad("lease TTL %v must be positive", c.LeaseTTL)
	}
	if c.Heartbeat <= 0 || c.Heartbeat >= c.LeaseTTL {
		bad("heartbeat %v must be positive and shorter than the lease TTL %v", c.Heartbeat, c.LeaseTTL)
	}
	if c.LeaseMargin < 0 || c.LeaseMargin >= c.LeaseTTL {
		bad("lease margin %v must be in [0, lease TTL %v)", c.LeaseMargin, c.LeaseTTL)
	} else if c.Heartbeat > 0 && c.Heartbeat >= c.LeaseTTL-c.LeaseMargin {
		bad("heartbeat %v must be shorter than the lease TTL %v minus the lease margin %v, or the local deadline passes between renewals", c.Heartbeat, c.LeaseTTL, c.LeaseMargin)
	}
	if c.ClaimInterval <= 0 {
		bad("claim interval %v must be positive", c.ClaimInterval)
	}
	if c.PollInterval <= 0 {
		bad("poll interval %v must be positive", c.PollInterval)
	}
	if c.OnExhausted > ParkEvent {
		bad("unknown exhausted policy %v", c.OnExhausted)
	}
	if c.AckMode > AckPerEvent {
		bad("unknown ack mode %v", c.AckMode)
	}
	errs = append(errs, c.Retry.validate()...)
	return errors.Join(errs...)
}

// Subscription defines a subscription: its key, its handlers and its
// configuration. Build one with New and the chained methods, then run it
// with Start (a background worker) or CatchUp (once, in the caller's
// goroutine). The definition must not change after the first Start or
// CatchUp; a started worker works on a copy.
type Subscription struct {
	cfg      Config
	handlers map[string]map[string]HandlerFunc
	catchAll map[string]HandlerFunc
	skip     map[string]map[string]bool
	values   []any
	errs     []error
}

// New returns a subscription definition named key, with the default
// configuration.
func New(key string) *Subscription {
	return &Subscription{
		cfg:      Config{Key: key},
		handlers: map[string]map[string]HandlerFunc{},
		catchAll: map[string]HandlerFunc{},
		skip:     map[string]map[string]bool{},
	}
}

// Key returns the subscription key.
func (s *Subscription) Key() string { return s.cfg.Key }

// Handle registers h for the events named name of aggregate type aggType.
// It panics if h is nil; a duplicate or empty name is reported by Validate.
func (s *Subscription) Handle(aggType, name string, h HandlerFunc) *Subscription {
	if h == nil {
		panic(fmt.Sprintf("subscription: nil handler for %s %s", aggType, name))
	}
	if aggType == "" || name == "" {
		s.errs = append(s.errs, fmt.Errorf("subscription: handler with empty aggregate type %q or event name %q: %w", aggType, name, ErrInvalidConfig))
		return s
	}
	m := s.handlers[aggType]
	if m == nil {
		m = map[string]HandlerFunc{}
		s.handlers[aggType] = m
	}
	if _, dup := m[name]; dup {
		s.errs = append(s.errs, fmt.Errorf("subscription: two handlers for %s %s: %w", aggType, name, ErrInvalidConfig))
	}
	m[name] = h
	return s
}

// HandleSet registers every handler of a HandlerSet (as generated by
// evento-gen). It panics if one of them is nil.
func (s *Subscription) HandleSet(hs HandlerSet) *Subscription {
	if len(hs.Handlers) == 0 {
		s.errs = append(s.errs, fmt.Errorf("subscription: handler set for %q is empty: %w", hs.AggregateType, ErrInvalidConfig))
	}
	for _, name := range slices.Sorted(maps.Keys(hs.Handlers)) {
		s.Handle(hs.AggregateType, name, hs.Handlers[name])
	}
	return s
}

// HandleAll registers h for every event of aggregate type aggType that has
// no handler of its own. It panics if h is nil.
func (s *Subscription) HandleAll(aggType string, h HandlerFunc) *Subscription {
	if h == nil {
		panic(fmt.Sprintf("subscription: nil catch-all handler for %s", aggType))
	}
	if aggType == "" {
		s.errs = append(s.errs, fmt.Errorf("subscription: catch-all handler with empty aggregate type: %w", ErrInvalidConfig))
		return s
	}
	if _, dup := s.catchAll[aggType]; dup {
		s.errs = append(s.errs, fmt.Errorf("subscription: two catch-all handlers for %s: %w", aggType, ErrInvalidConfig))
	}
	s.catchAll[aggType] = h
	return s
}

// Skip lists events that are acknowledged without a handler, even when a
// catch-all handler or the safety check would otherwise apply. With no
// names it skips every event of aggType. Skip-listed aggregate types are
// read even when they have no handler.
func (s *Subscription) Skip(aggType string, names ...string) *Subscription {
	if aggType == "" {
		s.errs = append(s.errs, fmt.Errorf("subscription: skip with empty aggregate type: %w", ErrInvalidConfig))
		return s
	}
	m := s.skip[aggType]
	if m == nil {
		m = map[string]bool{}
		s.skip[aggType] = m
	}
	if len(names) == 0 {
		m[""] = true
	}
	for _, n := range names {
		m[n] = true
	}
	return s
}

// Routing restricts the subscription to the events a routing selector
// matches (evento.RoutingKey, evento.NoRoutingKey; the default is all).
func (s *Subscription) Routing(r evento.Routing) *Subscription { s.cfg.Routing = r; return s }

// ChunkSize sets the number of events read per page (Config.ChunkSize).
func (s *Subscription) ChunkSize(n int) *Subscription { s.cfg.ChunkSize = n; return s }

// MaxChunkSize sets the most events one acknowledgement covers, the bound
// on redelivery after a crash (Config.MaxChunkSize).
func (s *Subscription) MaxChunkSize(n int) *Subscription { s.cfg.MaxChunkSize = n; return s }

// StartDelay sets how long a started worker waits before its first claim.
func (s *Subscription) StartDelay(d time.Duration) *Subscription { s.cfg.StartDelay = d; return s }

// SafetyCheck turns the safety check on or off (Config.SafetyCheck).
func (s *Subscription) SafetyCheck(on bool) *Subscription { s.cfg.SafetyCheck = on; return s }

// Partitions splits the subscription into n partitions (Config.Partitions).
func (s *Subscription) Partitions(n int) *Subscription { s.cfg.Partitions = n; return s }

// MaxClaims caps the partitions one worker holds at once (Config.MaxClaims).
func (s *Subscription) MaxClaims(n int) *Subscription { s.cfg.MaxClaims = n; return s }

// Lease sets the lease TTL and the heartbeat interval (zero: TTL/3).
func (s *Subscription) Lease(ttl, heartbeat time.Duration) *Subscription {
	s.cfg.LeaseTTL, s.cfg.Heartbeat = ttl, heartbeat
	return s
}

// LeaseMargin sets the safety margin of the local lease deadline
// (Config.LeaseMargin; zero: TTL/10).
func (s *Subscription) LeaseMargin(d time.Duration) *Subscription { s.cfg.LeaseMargin = d; return s }

// Retry sets the retry policy of failing handlers.
func (s *Subscription) Retry(p RetryPolicy) *Subscription { s.cfg.Retry = p; return s }

// OnExhausted sets what happens when an event's retries are exhausted.
func (s *Subscription) OnExhausted(p ExhaustedPolicy) *Subscription { s.cfg.OnExhausted = p; return s }

// AckMode sets when handled events are acknowledged.
func (s *Subscription) AckMode(m AckMode) *Subscription { s.cfg.AckMode = m; return s }

// Transactional runs handlers inside the acknowledging transaction
// (Config.Transactional): effectively-once updates of a read model kept in
// the same store.
func (s *Subscription) Transactional(on bool) *Subscription { s.cfg.Transactional = on; return s }

// PollInterval sets the polling fallback interval.
func (s *Subscription) PollInterval(d time.Duration) *Subscription { s.cfg.PollInterval = d; return s }

// Logger sets the logger.
func (s *Subscription) Logger(l *slog.Logger) *Subscription { s.cfg.Logger = l; return s }

// WorkerID sets the lease holder id (Config.WorkerID).
func (s *Subscription) WorkerID(id string) *Subscription { s.cfg.WorkerID = id; return s }

// Signals sets the test and instrumentation callbacks.
func (s *Subscription) Signals(sig *Signals) *Subscription { s.cfg.Signals = sig; return s }

// Data adds a shared value that handlers read from their context with
// Value. Values are looked up by type, so add one value per type.
func (s *Subscription) Data(v any) *Subscription {
	if v == nil {
		s.errs = append(s.errs, fmt.Errorf("subscription: nil data value: %w", ErrInvalidConfig))
		return s
	}
	s.values = append(s.values, v)
	return s
}

// Configure replaces the configuration wholesale, keeping the key when
// c.Key is empty. Use it to load settings from elsewhere; the chained
// methods are shorthands for its fields.
func (s *Subscription) Configure(c Config) *Subscription {
	if c.Key == "" {
		c.Key = s.cfg.Key
	}
	s.cfg = c
	return s
}

// Config returns the configuration with defaults filled in.
func (s *Subscription) Config() Config {
	c := s.cfg
	c.EnsureDefaults()
	return c
}

// Validate checks the definition and its configuration and returns every
// problem joined, each wrapping ErrInvalidConfig.
func (s *Subscription) Validate() error {
	c := s.Config()
	errs := append([]error(nil), s.errs...)
	if err := c.Validate(); err != nil {
		errs = append(errs, err)
	}
	if len(s.handlers) == 0 && len(s.catchAll) == 0 {
		errs = append(errs, fmt.Errorf("subscription: %q has no handlers: %w", s.cfg.Key, ErrInvalidConfig))
	}
	return errors.Join(errs...)
}

// plan is the immutable, validated form of a subscription that workers run.
type plan struct {
	cfg      Config
	handlers map[string]map[string]HandlerFunc
	catchAll map[string]HandlerFunc
	skip     map[string]map[string]bool
	values   []any
	query    evento.Query
	sel      Selection // what the query reads, recorded under the key
	selEnc   []byte    // sel's canonical encoding
}

func (s *Subscription) plan() (*plan, error) {
	if err := s.Validate(); err != nil {
		return nil, err
	}
	p := &plan{
		cfg:      s.Config(),
		handlers: make(map[string]map[string]HandlerFunc, len(s.handlers)),
		catchAll: maps.Clone(s.catchAll),
		skip:     make(map[string]map[string]bool, len(s.skip)),
		values:   slices.Clone(s.values),
	}
	types := map[string]bool{}
	for t, m := range s.handlers {
		p.handlers[t] = maps.Clone(m)
		types[t] = true
	}
	for t, m := range s.skip {
		p.skip[t] = maps.Clone(m)
		types[t] = true
	}
	for t := range s.catchAll {
		types[t] = true
	}
	for _, t := range slices.Sorted(maps.Keys(types)) {
		p.query.Filters = append(p.query.Filters, evento.Filter{AggregateType: t})
	}
	p.query.Routing = p.cfg.Routing
	p.sel = selectionOf(p)
	p.selEnc = p.sel.encode()
	return p, nil
}

// lookup returns the handler of e, or skip=true when e is skip-listed; a nil
// handler with skip false means no handler.
func (p *plan) lookup(e *evento.Event) (h HandlerFunc, skip bool) {
	if m := p.skip[e.AggregateType]; m != nil && (m[""] || m[e.Name]) {
		return nil, true
	}
	if h := p.handlers[e.AggregateType][e.Name]; h != nil {
		return h, false
	}
	return p.catchAll[e.AggregateType], false
}

// PartitionOf returns the partition of the events of the aggregate with id
// aggregateID when a subscription has n partitions: the 32-bit FNV-1a hash
// of the id's bytes, modulo n (0 when n <= 1). The function is part of the
// stored format — cursors are kept per partition — and never changes.
func PartitionOf(aggregateID string, n int) uint32 {
	if n <= 1 {
		return 0
	}
	h := uint32(2166136261)
	for i := 0; i < len(aggregateID); i++ {
		h ^= uint32(aggregateID[i])
		h *= 16777619
	}
	return h % uint32(n)
}
