// Package aggregator is the aggregate side of evento: the Aggregate
// contract, the commit builder, loading an aggregate's state (now, at a
// version, at a time) with snapshots, a command helper that retries on
// version conflicts, and in-memory projections over any query.
//
// # Writing
//
// A commit appends events to one aggregate, expecting its current version:
//
//	b := aggregator.Create("bank/Account").Event(AccountOpened{Owner: "ada"})
//	version, err := b.Commit(ctx, exec) // b.ID() is the new aggregate's id
//
//	b = aggregator.Append("bank/Account", id, version).Event(MoneyDeposited{Amount: 100})
//
// CommitAll writes several builders as one atomic batch. A write that does
// not continue from the aggregate's current version fails with an error
// wrapping evento.ErrVersionConflict and writes nothing.
//
// # Loading
//
// Load replays an aggregate's events into a fresh value through its
// ApplyEvent method and returns the version reached; LoadAt and LoadAtTime
// stop at an earlier version or time. An aggregate that declares a snapshot
// revision (Revisioned) is loaded from its newest snapshot of that revision
// plus the later events. LoadWithInfo also reports whether the load started
// from a snapshot, at which version, and how many events it replayed.
//
// # Snapshots: where they are saved
//
// Reads never write unless asked. The rule:
//
//   - Load, LoadWithInfo, LoadAt, LoadAtTime and Project save nothing.
//     WithSnapshotOnLoad makes Load (and Handle's load) save one when the
//     policy is due, for aggregates read far more than commanded.
//   - Handle, a write path already, saves a snapshot of the new state right
//     after a successful commit when the events applied since the newest
//     snapshot (replayed plus committed) reach the policy's Every.
//   - SaveSnapshot saves one on demand, at a chosen version.
//   - RebuildSnapshots and StartRebuild save one per aggregate at its head,
//     e.g. after a revision change.
//
// Every save is followed by a prune to the policy's Keep: the newest Keep
// snapshots of the current revision stay, older ones and every snapshot of
// another revision are deleted, so storage per aggregate is bounded. The
// default policy (snapshot.DefaultPolicy) saves every 100 events and keeps
// 2; WithPolicy, WithPolicies or the aggregate's SnapshotPolicy method
// change it, and Keep: snapshot.KeepAll keeps every snapshot. Commits made
// with bare builders (Commit, CommitAll) save no snapshot: Handle, a
// rebuild or SaveSnapshot does.
//
// # Commands
//
// Handle is load, decide, commit: it runs a decision function against the
// loaded state and commits the events it returns expecting the loaded
// version, retrying the whole round on version conflicts. Retry is the same
// loop for commands that touch several aggregates. Both retry for up to
// DefaultRetryFor (a minute, or less when ctx ends sooner) with jittered
// pauses between DefaultBackoff and DefaultMaxBackoff, with no attempt
// count: the same policy on every backend, so that many writers racing on
// one aggregate all succeed whichever store is behind them. WithRetryFor,
// WithAttempts and WithBackoff change it.
//
// # Projections
//
// Project folds the events of any evento.Query into a value with the same
// ApplyEvent mechanism, page by page, and returns a cursor to resume from.
package aggregator
