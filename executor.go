package evento

import (
	"context"
	"time"

	"github.com/oklog/ulid/v2"
)

// Executor is a storage backend: the event store, the subscriber store and
// the snapshot store over one database. Open one with executor.Open and a
// DSN, or with a backend package's constructor and a ready handle.
//
// Every method is safe for concurrent use, honours ctx cancellation, and
// returns ErrClosed after Close.
type Executor interface {
	EventStore
	SubscriberStore
	SnapshotStore

	// Notify returns a channel that receives a value soon after events are
	// committed, so that workers wake without polling. Signals are
	// coalesced: one receive may stand for many commits, and a receiver must
	// re-read from its cursor rather than count signals. The channel is
	// closed when ctx is done or the executor is closed. Capabilities says
	// whether commits by other processes are signalled too.
	Notify(ctx context.Context) <-chan struct{}

	// Capabilities describes what this backend supports.
	Capabilities() Capabilities

	// Close releases the executor's resources. Calls in flight finish or
	// fail; later calls return ErrClosed. Close is idempotent.
	Close() error
}

// Capabilities declares what a backend does, so callers and the conformance
// suite adapt without probing.
type Capabilities struct {
	// Name is the backend's name: "pebble", "sqlite" or "postgres".
	Name string
	// MultiProcess is true when several processes may open the same store
	// at once and write to it.
	MultiProcess bool
	// CrossProcessNotify is true when Notify also signals commits made by
	// other processes (PostgreSQL LISTEN/NOTIFY). When false, workers in
	// other processes must poll.
	CrossProcessNotify bool
	// StoreClock is true when lease expiry is judged by the database's clock
	// rather than this process's.
	StoreClock bool
}

// EventStore appends and reads events.
type EventStore interface {
	// Write appends events atomically: the whole batch lands or nothing
	// does. The batch is checked first: it is not empty; each event has an
	// aggregate type, an aggregate id and a name, all valid UTF-8 of at
	// most MaxIdentLen bytes (a routing key too); versions start at 1; an
	// aggregate's events appear with contiguous increasing versions; an
	// aggregate id does not appear under two aggregate types. A violation
	// gives an *InvalidEventError. An aggregate's routing key is fixed by
	// its first event: events that give none inherit it, and a different
	// one gives a *RoutingKeyError. Then each aggregate's events must
	// continue from its current version, else Write returns a
	// *VersionConflictError for the first aggregate that does not.
	//
	// On success Write sets ID, Timestamp and Position on each element of
	// events; on failure those fields are unspecified. Positions follow
	// commit order: a Write that returned before another started has the
	// smaller positions, on every executor over the same store. IDs are
	// unique ULIDs; they increase the same way for writes through one
	// executor, but the global order is Position's, not the IDs'.
	Write(ctx context.Context, events []Event) error

	// Read returns one page of the events matching q in global order. The
	// returned events are owned by the caller.
	Read(ctx context.Context, q Query) (Page, error)

	// ReadAggregate returns the events of one aggregate with versions in
	// (after, after+limit] in version order; limit <= 0 means all of them.
	// An aggregate with no events gives an empty slice, not an error. This
	// is the load path: one range read, no global index.
	ReadAggregate(ctx context.Context, aggregateType, id string, after uint64, limit int) ([]Event, error)

	// AggregateVersion returns an aggregate's current version, 0 if it has
	// no events.
	AggregateVersion(ctx context.Context, aggregateType, id string) (uint64, error)

	// AggregateIDs returns up to limit ids of the aggregates of one type
	// that sort after the id after ("" for the start), in byte order, for
	// walks over every aggregate of a type (snapshot rebuilds).
	AggregateIDs(ctx context.Context, aggregateType, after string, limit int) ([]string, error)

	// Head returns the position of the last committed event (the zero
	// Position if the store is empty). Subscriptions use it for lag.
	Head(ctx context.Context) (Position, error)
}

// Lease is a worker's claim on one subscription key and partition. Every
// claim gets a larger Token than the one before (a fencing token); renewals,
// releases and acknowledgements carry the lease and the store rejects a stale
// token with ErrLeaseLost.
type Lease struct {
	Key       string
	Partition uint32
	Holder    string
	Token     uint64
	// ExpiresAt is when the lease lapses unless renewed, by the store's
	// clock.
	ExpiresAt time.Time
}

// Lag is how far a subscriber is behind the head of the log.
type Lag struct {
	// Events is the approximate number of events between the subscriber's
	// cursor and the head.
	Events uint64
	// Time is the age of the last acknowledged event when it was
	// acknowledged.
	Time time.Duration
}

// Ack is what an acknowledgement records, atomically with the check of the
// lease token.
type Ack struct {
	// Cursor is the cursor of the last event handled (or skipped or
	// parked). Empty leaves the cursor where it is, to record only an error
	// or lag.
	Cursor string
	// Lag is recorded as given.
	Lag Lag
	// LastError is the last handler error; empty clears it.
	LastError string
	// Park lists events parked in the dead-letter list by this
	// acknowledgement. Parking an event that is already parked for the same
	// key and partition replaces it.
	Park []ParkedEvent
}

// ParkedEvent is an event whose handler failed past its retries and was set
// aside in the dead-letter list.
type ParkedEvent struct {
	Key       string
	Partition uint32
	Event     Event
	Error     string
	Attempts  int
	ParkedAt  time.Time
}

// SubscriberState is a subscriber's stored state, for the CLI and health
// checks.
type SubscriberState struct {
	Key            string
	Partition      uint32
	Cursor         string
	Holder         string
	Token          uint64
	LeaseExpiresAt time.Time
	Lag            Lag
	LastError      string
	Parked         int
	UpdatedAt      time.Time
	// AckedAt is when the last acknowledgement was recorded, by the
	// store's clock (zero if none).
	AckedAt time.Time
	// Selection is the selection recorded by RecordSelection (nil if none):
	// opaque to the store, encoded and compared by the subscription package.
	Selection []byte
}

// SubscriberStore keeps subscription cursors, leases and parked events.
type SubscriberStore interface {
	// ClaimLease claims (key, partition) for holder for ttl, creating the
	// subscriber if it does not exist. It succeeds if the lease is free,
	// expired, or already held by holder; every success increments the
	// fencing token. A live lease of another holder gives ErrLeaseHeld. An
	// empty key or holder, or a ttl that is not positive, gives an error
	// wrapping ErrInvalidSubscriberArgs and changes nothing.
	ClaimLease(ctx context.Context, key string, partition uint32, holder string, ttl time.Duration) (Lease, error)

	// RenewLease extends a lease still held with the same token by ttl from
	// now. Otherwise it returns ErrLeaseLost and changes nothing. A ttl
	// that is not positive gives ErrInvalidSubscriberArgs.
	RenewLease(ctx context.Context, l Lease, ttl time.Duration) (Lease, error)

	// ReleaseLease gives the lease up so another worker can claim it at
	// once. A lease that is not current — another token, another holder,
	// or expired (even if nobody claimed it since) — gives ErrLeaseLost and
	// changes nothing, as RenewLease and Acknowledge do: a lease past its
	// expiry is no longer the caller's to give up.
	ReleaseLease(ctx context.Context, l Lease) error

	// Acknowledge records a in the same transaction that checks l's holder,
	// token and expiry. If the lease is not current it returns ErrLeaseLost
	// and moves nothing.
	Acknowledge(ctx context.Context, l Lease, a Ack) error

	// Subscriber returns one subscriber's state, or ErrNotFound.
	Subscriber(ctx context.Context, key string, partition uint32) (SubscriberState, error)

	// Subscribers returns every subscriber's state, ordered by key and
	// partition.
	Subscribers(ctx context.Context) ([]SubscriberState, error)

	// ParkedEvents returns the parked events of a subscription key (all
	// partitions), in global order.
	ParkedEvents(ctx context.Context, key string) ([]ParkedEvent, error)

	// DeleteParked removes a parked event, after it was replayed or
	// discarded. A missing one gives ErrNotFound.
	DeleteParked(ctx context.Context, key string, partition uint32, eventID ulid.ULID) error

	// ResetSubscriber sets a subscriber's cursor (empty for the start),
	// creating the subscriber if it does not exist, whoever holds its
	// lease: it releases the lease and bumps the token, so the current
	// holder's next acknowledgement or renewal fails with ErrLeaseLost and
	// any worker may claim at once. It also clears the recorded selection,
	// so the next RecordSelection records anew. It is an operator action
	// (replaying a read model, changing what a subscription reads).
	ResetSubscriber(ctx context.Context, key string, partition uint32, cursor string) error

	// DeleteSubscriber removes one subscriber (key, partition) — its
	// cursor, lease, recorded selection, last error — and its parked
	// events, whoever holds its lease: the holder's next renewal,
	// release or acknowledgement fails with ErrLeaseLost and moves
	// nothing, and a worker that claims again starts from the beginning
	// of the log (nothing is lost; events are delivered again). A missing
	// subscriber gives ErrNotFound. It is an operator action (retiring a
	// subscription).
	DeleteSubscriber(ctx context.Context, key string, partition uint32) error

	// RecordSelection records sel as the selection of (key, partition)
	// unless one is recorded already, creating the subscriber (no lease,
	// empty cursor) if it does not exist, and returns the recorded
	// selection: sel when it was recorded, else the earlier one, unchanged.
	// The bytes are opaque to the store; an empty key or sel is an error
	// wrapping ErrInvalidSubscriberArgs. Leases and tokens are untouched.
	RecordSelection(ctx context.Context, key string, partition uint32, sel []byte) ([]byte, error)

	// AnnounceWorker records that worker is alive on key until ttl from
	// now by the store's clock (creating or extending its presence),
	// deletes the expired presences of key, and returns the workers whose
	// presence on key is live, worker included, in byte order. Workers of
	// a partitioned subscription call it with every claim round to see
	// each other and share the partitions. An empty key or worker, or a
	// ttl that is not positive, is an error wrapping
	// ErrInvalidSubscriberArgs.
	AnnounceWorker(ctx context.Context, key, worker string, ttl time.Duration) ([]string, error)

	// WithdrawWorker removes worker's presence on key; an absent one is
	// not an error.
	WithdrawWorker(ctx context.Context, key, worker string) error
}

// Snapshot is an aggregate's state at a version, encoded with msgpack.
type Snapshot struct {
	AggregateType string
	AggregateID   string
	// Revision identifies the aggregate logic that produced Data. A load
	// only uses snapshots of the current revision.
	Revision string
	// Version is the last event version the state covers.
	Version uint64
	// Cursor is the cursor of the event at Version.
	Cursor string
	// EventTime is the timestamp of the event at Version.
	EventTime time.Time
	// Data is the encoded state.
	Data []byte
	// CreatedAt is when the snapshot was saved (set by the store).
	CreatedAt time.Time
}

// SnapshotStore keeps aggregate snapshots keyed by (type, revision, id,
// version).
type SnapshotStore interface {
	// SaveSnapshot stores s, replacing a snapshot with the same type,
	// revision, id and version.
	SaveSnapshot(ctx context.Context, s Snapshot) error

	// LoadSnapshot returns the newest snapshot of (type, revision, id) whose
	// Version is at most maxVersion (0 means no bound), or ErrNotFound.
	LoadSnapshot(ctx context.Context, aggregateType, revision, id string, maxVersion uint64) (Snapshot, error)

	// PruneSnapshots keeps the newest keep snapshots of (type, revision,
	// id) and deletes the older ones, and every snapshot of that aggregate
	// under another revision.
	PruneSnapshots(ctx context.Context, aggregateType, revision, id string, keep int) error
}

// TxAcknowledger is implemented by executors whose acknowledgement can
// carry a handler's own writes: the subscription package runs handlers of
// transactional subscriptions (Subscription.Transactional) inside
// AcknowledgeTx, so a read model kept in the same store is updated
// effectively once — its writes commit with the cursor move and the fencing
// check, or not at all. It is an optional interface, checked with a type
// assertion, so other SubscriberStore implementations keep compiling; the
// Pebble, SQLite and PostgreSQL executors implement it.
type TxAcknowledger interface {
	// AcknowledgeTx begins a transaction on the store (honouring ctx),
	// runs fn with it, then in the same transaction checks that l is
	// current — holder, token and expiry by the store's clock, as
	// Acknowledge does — records the Ack fn returned, and commits; once fn
	// has returned, the check and the commit are not interrupted by ctx.
	// If fn fails, nothing is recorded and fn's error is returned. If l is
	// not current, it returns ErrLeaseLost. In both cases, and when the
	// commit fails, nothing fn wrote is kept. tx is valid only during fn;
	// fn runs in the caller's goroutine.
	AcknowledgeTx(ctx context.Context, l Lease, fn func(tx AckTx) (Ack, error)) error
}

// AckTx is the store transaction of an AcknowledgeTx. Each backend exposes
// its native handle from a handler's context with a typed accessor
// (sqlite.TxFrom, postgres.TxFrom, pebble.KVFrom).
type AckTx interface {
	// Savepoint runs f as a nested unit of the transaction: when f fails,
	// what it wrote is undone and the transaction goes on. It returns f's
	// error, or the store's error if the savepoint itself failed (the
	// transaction must then be abandoned).
	Savepoint(f func() error) error
}
