// Package snapshot holds what aggregate snapshots are made of: the policy
// that says when a load saves one, the revision that ties a snapshot to the
// aggregate logic that produced it, the state codec, and Rebuild, which
// walks every aggregate of a type to refresh its snapshots after the
// revision changed.
//
// Package aggregator uses it on its load path; snapshot itself knows nothing
// of aggregates beyond the optional methods below, so imports point one way:
// aggregator -> snapshot -> evento.
//
// # Revision
//
// A snapshot is stored under (aggregate type, revision, id, version). A load
// only reads snapshots of the aggregate's current revision, so changing the
// aggregate's apply logic must change its revision: old snapshots are then
// ignored, never applied. Until evento-gen derives the revision from the
// source, an aggregate declares it by hand:
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
package snapshot
