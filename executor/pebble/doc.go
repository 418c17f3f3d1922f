// Package pebble is evento's embedded default backend, on
// github.com/cockroachdb/pebble/v2.
//
// Open a directory with Open, an in-memory store for tests with OpenMemory,
// or wrap a ready *pebble.DB with New. Importing the package registers the
// "pebble" DSN scheme with package executor:
//
//	pebble:/var/lib/app/events
//	pebble:data/events?sync=false
//	pebble::memory:
//
// # Storage
//
// All data lives in one Pebble keyspace; each key starts with a tag byte
// (see keys.go). An event is stored twice, in full: under its global
// position (the log, read by subscriptions) and under (type, id, version)
// (the aggregate's stream, so an aggregate load is one range read). Index
// keys (type), (type, name), (routing key), (routing key, type) and
// (routing key, type, name), each followed by the position, let every query
// shape read O(page) keys, however many unrelated events the store holds.
// Strings in keys are escaped (0x00 becomes 0x00 0xFF, and a string ends
// with 0x00 0x01), so any UTF-8 works and no prefix collides with another.
//
// # Writes
//
// A single committer goroutine takes the pending writes as a group, checks
// each write's versions (a conflicting write fails alone), assigns
// positions and ULIDs in commit order, and writes the group in one Pebble
// batch with one sync. Concurrent writers share WAL syncs, and the global
// order is the visibility order: a reader never sees a position appear
// behind one it has passed.
//
// # Limits
//
// One process at a time: Capabilities reports MultiProcess false, and
// Notify only signals this Store's commits. Lease expiry uses this
// process's clock (WithClock).
package pebble
