package storekit

import (
	"context"
	"fmt"
	"time"

	"github.com/evento-go/evento"
)

// The checks below are the subscriber store's input rules, written once:
// every backend calls them first, so every backend refuses the same calls
// with the same error, one wrapping evento.ErrInvalidSubscriberArgs.

// CheckClaim checks ClaimLease's arguments.
func CheckClaim(key, holder string, ttl time.Duration) error {
	return checkKeyWhoTTL("claim lease", key, "holder", holder, ttl)
}

// checkKeyWhoTTL is the rule ClaimLease and AnnounceWorker share: a
// subscription key, a named holder or worker, and a positive ttl.
func checkKeyWhoTTL(op, key, role, who string, ttl time.Duration) error {
	switch {
	case key == "":
		return fmt.Errorf("%s: empty subscription key: %w", op, evento.ErrInvalidSubscriberArgs)
	case who == "":
		return fmt.Errorf("%s %q: empty %s: %w", op, key, role, evento.ErrInvalidSubscriberArgs)
	case ttl <= 0:
		return fmt.Errorf("%s %q: ttl %v is not positive: %w", op, key, ttl, evento.ErrInvalidSubscriberArgs)
	}
	return nil
}

// CheckRenew checks RenewLease's ttl.
func CheckRenew(l evento.Lease, ttl time.Duration) error {
	if ttl <= 0 {
		return fmt.Errorf("renew lease %q/%d: ttl %v is not positive: %w", l.Key, l.Partition, ttl, evento.ErrInvalidSubscriberArgs)
	}
	return nil
}

// CheckSelection checks RecordSelection's arguments.
func CheckSelection(key string, sel []byte) error {
	switch {
	case key == "":
		return fmt.Errorf("record selection: empty subscription key: %w", evento.ErrInvalidSubscriberArgs)
	case len(sel) == 0:
		return fmt.Errorf("record selection %q: empty selection: %w", key, evento.ErrInvalidSubscriberArgs)
	}
	return nil
}

// CheckPresence checks AnnounceWorker's arguments (ttl 1 for
// WithdrawWorker).
func CheckPresence(key, worker string, ttl time.Duration) error {
	return checkKeyWhoTTL("worker presence", key, "worker", worker, ttl)
}

type ackTxKey struct{}

// WithAckTx returns ctx carrying tx, for handlers run inside an
// AcknowledgeTx.
func WithAckTx(ctx context.Context, tx evento.AckTx) context.Context {
	return context.WithValue(ctx, ackTxKey{}, tx)
}

// AckTxFrom returns the evento.AckTx ctx carries, or nil. Each backend's
// typed accessor (sqlite.TxFrom, postgres.TxFrom, pebble.KVFrom) starts
// from it.
func AckTxFrom(ctx context.Context) evento.AckTx {
	tx, _ := ctx.Value(ackTxKey{}).(evento.AckTx)
	return tx
}
