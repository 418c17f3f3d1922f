package aggregator

import (
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
	attempts    int
	backoff     time.Duration
	metadata    *evento.Metadata
	routingKey  *string
	rebuild     snapshot.RebuildOptions
	strictSave  bool // a failed policy save fails the load (rebuilds)
}

// DefaultAttempts is how many times Handle and Retry try a command before
// giving up on version conflicts.
const DefaultAttempts = 10

// DefaultChunk is how many events a load reads per ReadAggregate call, and
// a projection per Read page.
const DefaultChunk = 1000

func buildOptions(opts []Option) options {
	o := options{chunk: DefaultChunk, attempts: DefaultAttempts, backoff: time.Millisecond}
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

// WithPolicy sets the snapshot policy, overriding WithPolicies, the
// aggregate's own SnapshotPolicy and snapshot.DefaultPolicy.
func WithPolicy(p snapshot.Policy) Option { return func(o *options) { o.policy = &p } }

// WithPolicies sets snapshot policies per aggregate type. A type with an
// entry uses it unless WithPolicy is also given.
func WithPolicies(ps snapshot.Policies) Option { return func(o *options) { o.policies = ps } }

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

// WithAttempts sets how many times Handle or Retry tries before returning
// the version conflict (default DefaultAttempts; at least 1).
func WithAttempts(n int) Option {
	return func(o *options) {
		if n > 0 {
			o.attempts = n
		}
	}
}

// WithBackoff sets the base pause between attempts after a version
// conflict (default 1ms). The pause before attempt k is a random duration
// up to k times the base, so that racing writers spread out. 0 retries at
// once.
func WithBackoff(d time.Duration) Option {
	return func(o *options) {
		if d >= 0 {
			o.backoff = d
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

// pause returns the jittered pause before attempt (1-based, >= 2).
func (o *options) pause(attempt int) time.Duration {
	if o.backoff <= 0 {
		return 0
	}
	max := o.backoff * time.Duration(attempt-1)
	return time.Duration(rand.Int64N(int64(max) + 1))
}
