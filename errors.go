package evento

import (
	"errors"
	"fmt"

	"github.com/evento-go/evento/cursor"
)

// Sentinel errors. Every error evento returns that has one of these causes
// wraps it, so callers test with errors.Is.
var (
	// ErrVersionConflict means a write did not continue from an aggregate's
	// current version. The concrete error is a *VersionConflictError.
	ErrVersionConflict = errors.New("evento: version conflict")
	// ErrInvalidCursor means a cursor is malformed or foreign. It is the same
	// value as cursor.ErrInvalidCursor.
	ErrInvalidCursor = cursor.ErrInvalidCursor
	// ErrPageTooLarge means a read asked for more than the maximum page size.
	// It is the same value as cursor.ErrPageTooLarge.
	ErrPageTooLarge = cursor.ErrPageTooLarge
	// ErrInvalidArgs means contradictory pagination arguments. It is the same
	// value as cursor.ErrInvalidArgs.
	ErrInvalidArgs = cursor.ErrInvalidArgs
	// ErrInvalidEvent means an event in a write is malformed (missing type,
	// id or name, bad version, an empty batch...). The concrete error is an
	// *InvalidEventError. Nothing is written.
	ErrInvalidEvent = errors.New("evento: invalid event")
	// ErrInvalidQuery means a query is malformed.
	ErrInvalidQuery = errors.New("evento: invalid query")
	// ErrLeaseLost means a subscription lease is no longer held by the caller
	// (it expired and was claimed by another worker, or was released): the
	// acknowledgement or renewal carrying it was rejected and changed nothing.
	ErrLeaseLost = errors.New("evento: lease lost")
	// ErrLeaseHeld means another worker holds a live lease on the
	// subscription key or partition being claimed.
	ErrLeaseHeld = errors.New("evento: lease held by another worker")
	// ErrNotFound means the requested aggregate, subscriber or snapshot does
	// not exist.
	ErrNotFound = errors.New("evento: not found")
	// ErrClosed means the executor was closed.
	ErrClosed = errors.New("evento: executor closed")
	// ErrDecode means stored bytes (event data, metadata, a snapshot) do not
	// decode into the value asked for.
	ErrDecode = errors.New("evento: decode failed")
	// ErrSchemaTooNew means the store's schema was written by a newer
	// version of evento than this one.
	ErrSchemaTooNew = errors.New("evento: store schema is newer than this code")
)

// VersionConflictError is the error a write returns when an aggregate's
// events do not continue from its current version. Nothing of the batch was
// written.
type VersionConflictError struct {
	AggregateType string
	AggregateID   string
	// Expected is the version the batch expected to be current (the first
	// event's version minus one).
	Expected uint64
	// Actual is the aggregate's current version in the store.
	Actual uint64
}

// Error describes the conflict: which aggregate, expected and actual version.
func (e *VersionConflictError) Error() string {
	return fmt.Sprintf("evento: version conflict on %s/%q: expected version %d, store has %d",
		e.AggregateType, e.AggregateID, e.Expected, e.Actual)
}

// Is makes errors.Is(err, ErrVersionConflict) true.
func (e *VersionConflictError) Is(target error) bool { return target == ErrVersionConflict }

// InvalidEventError reports a malformed event in a write. Index is the
// event's index in the batch, or -1 for a problem with the batch as a whole.
type InvalidEventError struct {
	Index  int
	Reason string
}

// Error describes the invalid event and why it was refused.
func (e *InvalidEventError) Error() string {
	if e.Index < 0 {
		return "evento: invalid batch: " + e.Reason
	}
	return fmt.Sprintf("evento: invalid event %d in batch: %s", e.Index, e.Reason)
}

// Is makes errors.Is(err, ErrInvalidEvent) true.
func (e *InvalidEventError) Is(target error) bool { return target == ErrInvalidEvent }

// ErrRoutingKey means a write gave an event a routing key that differs from
// its aggregate's. An aggregate's routing key is fixed by its first event;
// later events inherit it when they give none. The concrete error is a
// *RoutingKeyError. Nothing of the batch was written.
var ErrRoutingKey = errors.New("evento: routing key differs from the aggregate's")

// RoutingKeyError is the error a write returns when an event's routing key
// differs from the key its aggregate was created with (or, within a batch
// that creates the aggregate, from the first event's key).
type RoutingKeyError struct {
	AggregateType string
	AggregateID   string
	// Version is the version of the first refused event.
	Version uint64
	// Given is the routing key the refused event carried.
	Given string
	// Fixed is the aggregate's routing key ("" for no key).
	Fixed string
}

// Error names the aggregate, the key given and the key it is fixed to.
func (e *RoutingKeyError) Error() string {
	fixed := "no routing key"
	if e.Fixed != "" {
		fixed = fmt.Sprintf("routing key %q", e.Fixed)
	}
	return fmt.Sprintf("evento: event v%d of %s/%q has routing key %q, but the aggregate's first event fixed %s",
		e.Version, e.AggregateType, e.AggregateID, e.Given, fixed)
}

// Is makes errors.Is(err, ErrRoutingKey) true.
func (e *RoutingKeyError) Is(target error) bool { return target == ErrRoutingKey }
