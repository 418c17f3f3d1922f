package evento

import (
	"errors"
	"fmt"
	"time"
)

// ErrInvalidSubscriberArgs means a subscriber store call got arguments no
// backend accepts: an empty key, holder or worker, a ttl that is not
// positive, an empty selection. Nothing was changed.
var ErrInvalidSubscriberArgs = errors.New("evento: invalid subscriber store arguments")

// The checks below are the subscriber store's input rules, written once:
// every backend calls them first, so every backend refuses the same calls
// with the same error.

// CheckClaim checks ClaimLease's arguments.
func CheckClaim(key, holder string, ttl time.Duration) error {
	return checkKeyWhoTTL("claim lease", key, "holder", holder, ttl)
}

// checkKeyWhoTTL is the rule ClaimLease and AnnounceWorker share: a
// subscription key, a named holder or worker, and a positive ttl.
func checkKeyWhoTTL(op, key, role, who string, ttl time.Duration) error {
	switch {
	case key == "":
		return fmt.Errorf("%s: empty subscription key: %w", op, ErrInvalidSubscriberArgs)
	case who == "":
		return fmt.Errorf("%s %q: empty %s: %w", op, key, role, ErrInvalidSubscriberArgs)
	case ttl <= 0:
		return fmt.Errorf("%s %q: ttl %v is not positive: %w", op, key, ttl, ErrInvalidSubscriberArgs)
	}
	return nil
}

// CheckRenew checks RenewLease's ttl.
func CheckRenew(l Lease, ttl time.Duration) error {
	if ttl <= 0 {
		return fmt.Errorf("renew lease %q/%d: ttl %v is not positive: %w", l.Key, l.Partition, ttl, ErrInvalidSubscriberArgs)
	}
	return nil
}

// CheckSelection checks RecordSelection's arguments.
func CheckSelection(key string, sel []byte) error {
	switch {
	case key == "":
		return fmt.Errorf("record selection: empty subscription key: %w", ErrInvalidSubscriberArgs)
	case len(sel) == 0:
		return fmt.Errorf("record selection %q: empty selection: %w", key, ErrInvalidSubscriberArgs)
	}
	return nil
}

// CheckPresence checks AnnounceWorker's arguments (ttl 1 for
// WithdrawWorker).
func CheckPresence(key, worker string, ttl time.Duration) error {
	return checkKeyWhoTTL("worker presence", key, "worker", worker, ttl)
}
