package snapshot

// Policy says when a load saves a snapshot of the state it rebuilt.
//
// The zero Policy never snapshots automatically ("on demand": the
// application saves snapshots itself, see aggregator.SaveSnapshot).
type Policy struct {
	// Every makes a load save a snapshot when it had to replay at least
	// Every events past the newest usable snapshot (or from the start). It
	// bounds the replay of any later load to about Every events. 0 disables
	// automatic snapshots.
	Every int
	// Keep, when positive, prunes after each automatic save: the newest Keep
	// snapshots of the aggregate under the current revision are kept, older
	// ones and every snapshot under another revision are deleted. 0 keeps
	// every snapshot, which lets time-travel loads start from one.
	Keep int
}

// DefaultEvery is the interval of DefaultPolicy.
const DefaultEvery = 100

// DefaultPolicy is the policy of an aggregate that declares a revision and
// no policy: a snapshot every DefaultEvery replayed events, all kept.
var DefaultPolicy = Policy{Every: DefaultEvery}

// EveryN returns a policy that saves a snapshot when a load replayed at
// least n events past the newest snapshot. n <= 0 gives OnDemand.
func EveryN(n int) Policy {
	if n < 0 {
		n = 0
	}
	return Policy{Every: n}
}

// OnDemand returns the policy that never saves a snapshot automatically.
func OnDemand() Policy { return Policy{} }

// Due reports whether a load that replayed replayed events past its starting
// snapshot should save a new one.
func (p Policy) Due(replayed int) bool { return p.Every > 0 && replayed >= p.Every }

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
