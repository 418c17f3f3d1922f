package subscription

import (
	"context"
	"fmt"
	"strconv"
	"strings"
)

// MaxVersion is the largest read-model version a subscription may declare.
const MaxVersion = 1<<31 - 1

// versionSep separates a base key from its version in a stored key.
const versionSep = "@v"

// VersionedKey returns the key under which version v of the subscription
// named base is stored: base itself for version 0 (so subscriptions that
// declare no version keep their key), else base + "@v" + v, e.g.
// "balances@v2". Pebble's read-model namespace of a transactional
// subscription is named by this key (pebble.Store.ReadModel).
func VersionedKey(base string, v int) string {
	if v == 0 {
		return base
	}
	return base + versionSep + strconv.Itoa(v)
}

// SplitVersion is the inverse of VersionedKey: a key ending in "@v"
// followed by a positive decimal number without leading zeros (at most
// MaxVersion) after a non-empty base is that version of base; any other
// key is version 0 of itself. So every key has exactly one reading, and
// VersionedKey(SplitVersion(k)) == k.
func SplitVersion(key string) (base string, v int) {
	i := strings.LastIndex(key, versionSep)
	if i <= 0 {
		return key, 0
	}
	digits := key[i+len(versionSep):]
	if digits == "" || digits[0] == '0' || len(digits) > 10 {
		return key, 0
	}
	for j := 0; j < len(digits); j++ {
		if digits[j] < '0' || digits[j] > '9' {
			return key, 0
		}
	}
	n, err := strconv.Atoi(digits)
	if err != nil || n > MaxVersion {
		return key, 0
	}
	return key[:i], n
}

// Version declares the read-model version of the subscription (see
// "Read-model versions" in the package documentation): version v > 0
// stores its cursor, leases and parked events under VersionedKey(base, v)
// instead of the base key, so it builds a fresh read model beside the
// previous version's. Version 0 (the default) keeps the base key. A key
// given to New that already ends in a version ("balances@v2") is that
// version of its base; Version replaces it. Key returns the stored key.
// A negative version or one over MaxVersion is reported by Validate.
func (s *Subscription) Version(v int) *Subscription {
	if v < 0 || v > MaxVersion {
		s.errs = append(s.errs, fmt.Errorf("subscription: version %d of %q must be in [0, %d]: %w", v, s.cfg.Key, MaxVersion, ErrInvalidConfig))
		return s
	}
	base, _ := SplitVersion(s.cfg.Key)
	s.cfg.Key = VersionedKey(base, v)
	return s
}

// VersionFrom returns the read-model version of the subscription a
// handler runs for (0 when it declares none); ok is false when ctx is not
// a handler's context.
func VersionFrom(ctx context.Context) (v int, ok bool) {
	info, ok := InfoFrom(ctx)
	if !ok {
		return 0, false
	}
	_, v = SplitVersion(info.Key)
	return v, true
}

// TableName names a read model's table (or any other object an
// application keeps per version) for version v: name itself for version
// 0, else name + "_v" + v, e.g. "balances_v2". Applications read from
// TableName(name, Rollout.Active()) and handlers write to
// TableNameFrom(ctx, name).
func TableName(name string, v int) string {
	if v == 0 {
		return name
	}
	return name + "_v" + strconv.Itoa(v)
}

// TableNameFrom returns TableName(name, v) for the version v of the
// subscription a handler runs for (name itself outside a handler or
// without a version): SQL read models write to tables named by their
// version, so two versions build side by side.
func TableNameFrom(ctx context.Context, name string) string {
	v, _ := VersionFrom(ctx)
	return TableName(name, v)
}
