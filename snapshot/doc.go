// Package snapshot holds what aggregate snapshots are made of: the policy
// that says when one is saved and how many are kept, the revision that
// ties a snapshot to the aggregate logic that produced it, the state codec,
// and Rebuild, which walks every aggregate of a type to refresh its
// snapshots after the revision changed.
//
// Package aggregator uses it on its load and command paths; snapshot itself knows nothing
// of aggregates beyond the optional methods below, so imports point one way:
// aggregator -> snapshot -> evento.
//
// # When snapshots are saved
//
// Reads never write unless asked. A plain aggregator.Load only reads
// snapshots. They are saved by aggregator.Handle after a successful commit
// when the Policy's Every is reached (the command path writes anyway), by
// aggregator.SaveSnapshot on demand, by Rebuild (aggregator.RebuildSnapshots)
// and, only with aggregator.WithSnapshotOnLoad, by loads. After each save
// the aggregate's snapshots are pruned to the Policy's Keep (DefaultKeep,
// 2, unless set; KeepAll keeps them all): the newest of the current
// revision stay, older ones and every other revision are deleted, so
// storage per aggregate stays bounded.
//
// # Revision
//
// A snapshot is stored under (aggregate type, revision, id, version). A load
// only reads snapshots of the aggregate's current revision, so changing the
// aggregate's apply logic must change its revision: old snapshots are then
// ignored, never applied. evento-gen derives the revision from the source;
// an aggregate written by hand declares it itself:
//
//	func (*Account) SnapshotRevision() string { return "2" }
//
// An aggregate without a revision is never snapshotted: every load replays
// its whole history.
//
// # State codec
//
// The state is the aggregate value encoded with evento.Marshal (msgpack), so
// what a snapshot keeps is exactly what msgpack encodes: exported fields (or
// whatever a custom msgpack encoder writes). Decode restores it into a fresh
// zero value and replaces the target only when decoding succeeded, so a
// snapshot that does not decode leaves the target untouched.
//
// msgpack stores a time.Time as an instant without its location: a
// restored time is the same instant (Equal) in time.Local, whatever
// location it had (the zero time comes back in UTC). Event payloads decode
// the same way, so state built from payload times is restored exactly; a
// time the aggregate converted itself (t.UTC(), or the UTC Event.Timestamp)
// comes back in Local. Compare times with Equal, or normalise them where
// they are read. Pointers are stored as the values they point to: two
// fields sharing one pointer come back as two separate copies.
package snapshot
