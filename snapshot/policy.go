package snapshot

// Policy says when snapshots are saved automatically, and how many are kept
// per aggregate.
//
// Automatic saves happen on write paths only: after a command commits
// (aggregator.Handle), and in RebuildSnapshots. A plain load saves nothing
// unless the caller asks for it (aggregator.WithSnapshotOnLoad). Every
// save, automatic or on demand (aggregator.SaveSnapshot), then prunes to
// Keep.
//
// The zero Policy never snapshots automatically ("on demand": the
// application saves snapshots itself) and keeps DefaultKeep per aggregate.
type Policy struct {
	// Every makes a save due once at least Every events have been applied
	// past the newest usable snapshot (or from the start): replayed by the
	// load, plus committed by the command. It bounds the replay of any
	// later load to about Every events. 0 disables automatic snapshots.
	Every int
	// Keep bounds the snapshots kept per aggregate. After each save the
	// newest Keep snapshots of the aggregate under the current revision are
	// kept; older ones and every snapshot under another revision are
	// deleted (PruneSnapshots). 0 means DefaultKeep. KeepAll (any negative
	// value) keeps every snapshot, which lets time-travel loads
	// (aggregator.LoadAt) start from one near any version, at the cost of
	// storage growing with each save.
	Keep int
}

// DefaultEvery is the interval of DefaultPolicy.
const DefaultEvery = 100

// DefaultKeep is how many snapshots per aggregate a policy keeps when its
// Keep is 0: the newest, and one before it in case the newest turns out
// unusable.
const DefaultKeep = 2

// KeepAll, as Policy.Keep, disables pruning: every snapshot is kept.
const KeepAll = -1

// DefaultPolicy is the policy of an aggregate that declares a revision and
// no policy: a snapshot every DefaultEvery events, DefaultKeep kept.
var DefaultPolicy = Policy{Every: DefaultEvery, Keep: DefaultKeep}

// EveryN returns a policy that saves a snapshot once at least n events have
// been applied past the newest snapshot, keeping DefaultKeep. n <= 0 gives
// OnDemand.
func EveryN(n int) Policy {
	if n < 0 {
		n = 0
	}
	return Policy{Every: n}
}

// OnDemand returns the policy that never saves a snapshot automatically
// (and keeps DefaultKeep after each save on demand).
func OnDemand() Policy { return Policy{} }

// Due reports whether a save is due after applied events past the newest
// snapshot.
func (p Policy) Due(applied int) bool { return p.Every > 0 && applied >= p.Every }

// Limit returns how many snapshots of the current revision a save keeps per
// aggregate (Keep, or DefaultKeep when Keep is 0), or 0 when every snapshot
// is kept (KeepAll).
func (p Policy) Limit() int {
	switch {
	case p.Keep < 0:
		return 0
	case p.Keep == 0:
		return DefaultKeep
	}
	return p.Keep
}

// Policied is implemented by aggregates that declare their own snapshot
// policy. Its method is called on a fresh aggregate value and must not
// depend on the state.
type Policied interface {
	SnapshotPolicy() Policy
}

// Policies maps aggregate types to policies, for configuring every type in
// one place. A type that is not in the map has no entry here; see For.
type Policies map[string]Policy

// For returns the policy configured for aggregateType and whether there is
// one.
func (ps Policies) For(aggregateType string) (Policy, bool) {
	p, ok := ps[aggregateType]
	return p, ok
}
