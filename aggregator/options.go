package aggregator

import (
	"context"
	"log/slog"
	"math/rand/v2"
	"time"

	"github.com/evento-go/evento"
	"github.com/evento-go/evento/snapshot"
)

// Option configures Load, LoadAt, LoadAtTime, SaveSnapshot, Handle, Retry,
// Project and RebuildSnapshots. Options a function does not use are
// ignored.
type Option func(*options)

type options struct {
	revision    *string
	policy      *snapshot.Policy
	policies    snapshot.Policies
	noSnapshots bool
	logger      *slog.Logger
	chunk       int
	attempts    int           // 0: no count limit
	retryFor    time.Duration // 0: no time limit
	backoff     time.Duration // base pause; 0: retry at once
	maxBackoff  time.Duration
	now         func() time.Time                                 // the retry clock (tests inject one)
	sleep       func(ctx context.Context, d time.Duration) error // a pause (tests inject one)
	metadata    *evento.Metadata
	routingKey  *string
	rebuild     snapshot.RebuildOptions
	strictSave  bool // a failed policy save fails the load (rebuilds)
	// snapshotOnLoad lets Load (and Handle's load) save a policy snapshot.
	snapshotOnLoad bool
}

// The default retry policy of Handle and Retry after a version conflict.
//
// The budget is time, not a count of attempts. With N commands racing on
// one aggregate, each round of load-decide-commit lets exactly one of them
// win, so the unluckiest command may need about N attempts: any small fixed
// count fails some commands under contention, and how many depends on the
// backend's timing (a faster commit closes the window sooner), so the same
// program would give different answers when only the DSN changes. A time
// budget states how long the caller is willing to wait, whatever the
// backend and however many writers race; a context deadline shortens it. The pauses follow "decorrelated jitter": each is drawn
// uniformly from [base, min(max, 3 × the previous pause)], so racing
// writers spread out quickly, a long-losing writer backs off towards max,
// and no two writers fall into step. The same code and values apply to
// every backend.
const (
	// DefaultRetryFor is how long Handle and Retry keep retrying a command
	// that meets version conflicts, counted from the first attempt
	// (WithRetryFor; a context deadline ends it sooner). It is a safety
	// net against retrying forever on an aggregate that never cools down,
	// not a typical latency, so it is generous: the last of N racing
	// commands waits for about N rounds of load and commit, and a round
	// can be slow on a loaded machine. On a busy 2-core machine, the
	// slowest of 50 commands racing on one aggregate took 0.1–0.8 s on
	// Pebble, 0.3–1.9 s on SQLite and 1.4–5.1 s on PostgreSQL (through
	// its default 4-connection pool), and up to 17 s on SQLite under the
	// race detector: a minute leaves a wide margin.
	DefaultRetryFor = time.Minute
	// DefaultBackoff is the shortest pause between attempts (WithBackoff).
	DefaultBackoff = time.Millisecond
	// DefaultMaxBackoff is the longest pause between attempts
	// (WithBackoff): long enough for dozens of racing commits to land
	// between two attempts of a losing writer, short enough to add little
	// latency once the contention is over.
	DefaultMaxBackoff = 100 * time.Millisecond
)

// DefaultChunk is how many events a load reads per ReadAggregate call, and
// a projection per Read page.
const DefaultChunk = 1000

func buildOptions(opts []Option) options {
	o := options{
		chunk:    DefaultChunk,
		retryFor: DefaultRetryFor, backoff: DefaultBackoff, maxBackoff: DefaultMaxBackoff,
		now: time.Now, sleep: sleep,
	}
	for _, f := range opts {
		if f != nil {
			f(&o)
		}
	}
	if o.logger == nil {
		o.logger = slog.Default()
	}
	return o
}

// WithRevision sets the snapshot revision, overriding the one the aggregate
// declares (Revisioned). An empty revision disables snapshots.
func WithRevision(rev string) Option { return func(o *options) { o.revision = &rev } }

// WithPolicy sets the snapshot policy (when to save one, how many to
// keep), overriding WithPolicies, the
// aggregate's own SnapshotPolicy and snapshot.DefaultPolicy.
func WithPolicy(p snapshot.Policy) Option { return func(o *options) { o.policy = &p } }

// WithPolicies sets snapshot policies per aggregate type. A type with an
// entry uses it unless WithPolicy is also given.
func WithPolicies(ps snapshot.Policies) Option { return func(o *options) { o.policies = ps } }

// WithSnapshotOnLoad lets Load, LoadWithInfo and the load of each Handle
// attempt save a snapshot when the policy is due (at least Every events
// replayed past the newest snapshot), as every load did before. Without it
// a load only reads; snapshots are then saved after commands (Handle), on
// demand (SaveSnapshot) and by RebuildSnapshots. It suits aggregates that
// are read far more often than commanded through Handle, or written with
// bare builders. LoadAt and LoadAtTime never save.
func WithSnapshotOnLoad() Option { return func(o *options) { o.snapshotOnLoad = true } }

// WithoutSnapshots makes loads replay the whole history, neither reading
// nor saving snapshots.
func WithoutSnapshots() Option { return func(o *options) { o.noSnapshots = true } }

// WithLogger sets the logger for warnings (unusable snapshots, failed
// snapshot saves). The default is slog.Default().
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.logger = l } }

// WithChunk sets how many events a load or projection reads per call
// (default DefaultChunk). It bounds the memory a load holds at once.
func WithChunk(n int) Option {
	return func(o *options) {
		if n > 0 {
			o.chunk = n
		}
	}
}

// WithRetryFor sets how long Handle or Retry keeps retrying after version
// conflicts, counted from the start of the first attempt (default
// DefaultRetryFor). No attempt starts after it has passed, and a pause is
// cut short to end at it; the last conflict is then returned. 0 removes
// the time limit: only the context, and WithAttempts if given, end the
// retries. A negative d is ignored.
func WithRetryFor(d time.Duration) Option {
	return func(o *options) {
		if d >= 0 {
			o.retryFor = d
		}
	}
}

// WithAttempts caps how many times Handle or Retry tries a command before
// returning the version conflict, in addition to the time budget
// (WithRetryFor). By default there is no count limit; n <= 0 is ignored.
// A small cap makes commands fail under contention: with N writers racing
// on one aggregate the last may need about N attempts.
func WithAttempts(n int) Option {
	return func(o *options) {
		if n > 0 {
			o.attempts = n
		}
	}
}

// WithBackoff sets the shortest and longest pause between attempts after a
// version conflict (defaults DefaultBackoff and DefaultMaxBackoff). Each
// pause is drawn uniformly from [base, min(max, 3 × the previous pause)]
// (decorrelated jitter; the first from [base, min(max, 3 × base)]). A base
// of 0 retries at once; a max below base is raised to base. Negative
// values are ignored.
func WithBackoff(base, max time.Duration) Option {
	return func(o *options) {
		if base >= 0 {
			o.backoff = base
		}
		if max >= 0 {
			o.maxBackoff = max
		}
	}
}

// WithMetadata sets the metadata of the events Handle commits.
func WithMetadata(md evento.Metadata) Option { return func(o *options) { o.metadata = &md } }

// WithRoutingKey sets the routing key of the events Handle commits.
func WithRoutingKey(k string) Option { return func(o *options) { o.routingKey = &k } }

// WithRebuildOptions sets the paging, progress callback and logger of
// RebuildSnapshots.
func WithRebuildOptions(ro snapshot.RebuildOptions) Option {
	return func(o *options) { o.rebuild = ro }
}

// revisionFor returns the snapshot revision for agg ("" = no snapshots).
func (o *options) revisionFor(agg Aggregate) string {
	if o.noSnapshots {
		return ""
	}
	if o.revision != nil {
		return *o.revision
	}
	return snapshot.RevisionOf(agg)
}

// policyFor returns the snapshot policy for agg.
func (o *options) policyFor(agg Aggregate) snapshot.Policy {
	if o.policy != nil {
		return *o.policy
	}
	if p, ok := o.policies.For(agg.AggregateType()); ok {
		return p
	}
	if p, ok := agg.(snapshot.Policied); ok {
		return p.SnapshotPolicy()
	}
	return snapshot.DefaultPolicy
}

// nextPause returns the pause after a conflict, given the previous pause
// (0 before the first): decorrelated jitter, uniform in
// [base, min(max, 3 × max(prev, base))].
func (o *options) nextPause(prev time.Duration) time.Duration {
	base, hi := o.backoff, o.maxBackoff
	if base <= 0 {
		return 0
	}
	if hi < base {
		hi = base
	}
	prev = max(prev, base)
	if prev <= hi/3 {
		hi = 3 * prev
	}
	return base + time.Duration(rand.Int64N(int64(hi-base)+1))
}

// sleep pauses for d, or until ctx is done, then returns ctx.Err().
func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return ctx.Err()
	}
}
