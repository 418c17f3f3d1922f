package executor

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/oklog/ulid/v2"

	"github.com/evento-go/evento"
)

// ErrReadOnly means a write was asked of a store opened with read_only=true.
// Nothing was changed.
var ErrReadOnly = errors.New("executor: store is opened read-only")

// ErrNoStore means a store opened with read_only=true does not exist: no
// Pebble directory with a store in it, no SQLite file, no PostgreSQL schema.
// Nothing was created.
var ErrNoStore = errors.New("executor: no store at this DSN")

// ErrLocked means an embedded store is held by another process (Pebble
// allows one process per directory). Use that process's API, or SQLite or
// PostgreSQL for multi-process access.
var ErrLocked = errors.New("executor: store is locked by another process")

// ReadOnlyDSN returns dsn with the option read_only=true, replacing a
// read_only option it has.
func ReadOnlyDSN(dsn string) string {
	base, query, _ := strings.Cut(dsn, "?")
	var keep []string
	for _, kv := range strings.Split(query, "&") {
		if kv == "" || kv == "read_only" || strings.HasPrefix(kv, "read_only=") {
			continue
		}
		keep = append(keep, kv)
	}
	return base + "?" + strings.Join(append(keep, "read_only=true"), "&")
}

// ReadOnly wraps x so that every method that writes returns an error
// wrapping ErrReadOnly and changes nothing; reads, Notify and Capabilities
// pass through. Backends return it for DSNs with read_only=true (on top of
// opening their engine read-only), so the refusal is the same typed error on
// every backend.
func ReadOnly(x evento.Executor) evento.Executor { return readOnly{x} }

type readOnly struct{ evento.Executor }

func refuse(what string) error { return fmt.Errorf("%s: %w", what, ErrReadOnly) }

func (readOnly) Write(context.Context, []evento.Event) error { return refuse("write") }
func (readOnly) ClaimLease(context.Context, string, uint32, string, time.Duration) (evento.Lease, error) {
	return evento.Lease{}, refuse("claim lease")
}
func (readOnly) RenewLease(context.Context, evento.Lease, time.Duration) (evento.Lease, error) {
	return evento.Lease{}, refuse("renew lease")
}
func (readOnly) ReleaseLease(context.Context, evento.Lease) error { return refuse("release lease") }
func (readOnly) Acknowledge(context.Context, evento.Lease, evento.Ack) error {
	return refuse("acknowledge")
}
func (readOnly) DeleteParked(context.Context, string, uint32, ulid.ULID) error {
	return refuse("delete parked event")
}
func (readOnly) ResetSubscriber(context.Context, string, uint32, string) error {
	return refuse("reset subscriber")
}
func (readOnly) DeleteSubscriber(context.Context, string, uint32) error {
	return refuse("delete subscriber")
}
func (readOnly) RecordSelection(context.Context, string, uint32, []byte) ([]byte, error) {
	return nil, refuse("record selection")
}
func (readOnly) AnnounceWorker(context.Context, string, string, time.Duration) ([]string, error) {
	return nil, refuse("announce worker")
}
func (readOnly) WithdrawWorker(context.Context, string, string) error {
	return refuse("withdraw worker")
}
func (readOnly) SaveSnapshot(context.Context, evento.Snapshot) error { return refuse("save snapshot") }
func (readOnly) PruneSnapshots(context.Context, string, string, string, int) error {
	return refuse("prune snapshots")
}
