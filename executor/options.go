package executor

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// ErrNotMigrated means a store opened with migrate=false (or the backend's
// WithMigrate(false)) does not exist or is older than this code's schema:
// run Migrate (or `evento migrate`) first. A store newer than this code
// gives evento.ErrSchemaTooNew instead.
var ErrNotMigrated = errors.New("executor: store schema is not migrated to this code's version")

// Durability is the durability of a commit, the DSN option durability.
// Each backend maps it to its own setting; see the package documentation.
type Durability string

const (
	// DurabilityFull makes every acknowledged commit survive a machine
	// crash. It is the default.
	DurabilityFull Durability = "full"
	// DurabilityNormal may lose the latest acknowledged commits on a
	// machine (or, on PostgreSQL, server) crash, never the store's
	// consistency.
	DurabilityNormal Durability = "normal"
	// DurabilityOff is the weakest setting the backend has; it is for tests
	// and throw-away stores.
	DurabilityOff Durability = "off"
)

// ParseDurability reads full, normal or off (any case).
func ParseDurability(s string) (Durability, error) {
	switch d := Durability(strings.ToLower(s)); d {
	case DurabilityFull, DurabilityNormal, DurabilityOff:
		return d, nil
	}
	return "", fmt.Errorf("durability %q is not full, normal or off", s)
}

// ParseTimeout reads a DSN timeout: a Go duration ("5s", "250ms") or a
// bare number of milliseconds ("5000"). It must not be negative.
func ParseTimeout(s string) (time.Duration, error) {
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		if n < 0 {
			return 0, fmt.Errorf("timeout %q is negative", s)
		}
		return time.Duration(n) * time.Millisecond, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return 0, fmt.Errorf("timeout %q is not a duration (5s, 250ms) or a number of milliseconds", s)
	}
	return d, nil
}

// Migrate creates or migrates the store that dsn names to this code's
// schema version, then closes it. A migrate option in dsn is overridden.
// It is what `evento migrate` runs, and the step to run before opening
// with migrate=false.
func Migrate(ctx context.Context, dsn string) error {
	x, err := Open(ctx, withMigrate(dsn))
	if err != nil {
		return err
	}
	return x.Close()
}

// withMigrate appends migrate=true to dsn's options; every backend reads
// the last occurrence of an option.
func withMigrate(dsn string) string {
	if strings.Contains(dsn, "?") {
		if strings.HasSuffix(dsn, "?") || strings.HasSuffix(dsn, "&") {
			return dsn + "migrate=true"
		}
		return dsn + "&migrate=true"
	}
	return dsn + "?migrate=true"
}

// PageSizes applies the page-size rule every backend shares to a
// configured default and maximum page size: both positive, the default at
// most the maximum; a default that was not set (defaultSet false) shrinks to
// a smaller maximum rather than failing. It returns the default to use, or
// an error wrapping ErrInvalidDSN.
func PageSizes(def, max int, defaultSet bool) (int, error) {
	if !defaultSet && max > 0 && def > max {
		def = max
	}
	if max <= 0 || def <= 0 || def > max {
		return 0, fmt.Errorf("default page size %d and max page size %d: both must be positive and the default at most the maximum: %w", def, max, ErrInvalidDSN)
	}
	return def, nil
}
