// Package pebble is evento's embedded default backend, on
// github.com/cockroachdb/pebble/v2.
//
// Open a directory with Open, an in-memory store for tests with OpenMemory,
// or wrap a ready *pebble.DB with New. Importing the package registers the
// "pebble" DSN scheme with package executor:
//
//	pebble:/var/lib/app/events
//	pebble:data/events?durability=normal
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
// # Keys per event, and what each costs
//
// Each key serves one query shape that must read O(page) keys however many
// unrelated events the store holds; none is redundant with another, since
// a shape without its own ordered key would have to skip the other shapes'
// events:
//
//	key                          query shape
//	log (position)               all events; catch-up; cursors
//	aggregate (type, id, ver.)   type + id; ReadAggregate, AggregateVersion,
//	                             the committer's version check (holds the
//	                             whole event: a load is one range read)
//	type                         by type
//	type, name                   by type + name
//	routing key                  all events with a key or with "no key"
//	routing key, type            by type with a key / "no key"
//	routing key, type, name      by type + name with a key / "no key"
//
// A type + id query with a routing key reads the aggregate key: an
// aggregate's events all carry the key of its first event.
//
// The write cost of each key is measured by BenchmarkKeyWriteCost (raw
// Pebble writing the full layout against the same layout less one key, 100
// events per commit, without WAL syncs so that the key's CPU and bytes show
// through fsync variance). The five index keys are empty-valued and add
// ~40 bytes each to the batch; storing the event under the aggregate key
// instead of its position doubles the value bytes and is what makes an
// aggregate load one range read (W4: the Store loads 1.56–2.02× as fast as
// the minimal store's per-event lookups, three runs). Without syncs the
// copy costs 37% of the write throughput (without=aggregate_pointer: 0.63
// in two runs); with synced 100-event commits a position-only aggregate
// key made no measurable difference (0.92–1.60 of the full layout in three
// runs), so the copy stays. With synced commits the keys share the one WAL
// sync: BenchmarkW3AppendBatch100 puts the whole layout (7 keys, the event
// twice) at 0.39–0.97× the minimal store's 2 keys (schema_cost, median
// 0.71) and the Store at 0.36–0.91× it (ratio_vs_raw, median 0.59), under
// the 0.8 target: the layout, not the code, is the gap, and the guarantee
// given up to close it would be O(page) reads for type, name and
// routing-key queries. Single-event commits (W1, W2) are bound by the sync
// and run at or above the minimal store. See README.md "Benchmarks" for
// the figures and the command.
//
// # Reads touch O(page) keys
//
// Every read path bounds its iterators by the query's prefix and seeks to
// its start: a first page by type steps over the page's index entries and
// the events they point at (203 Pebble points for 100 events, 2 seeks)
// however many unrelated events the store holds, and a load from a
// snapshot seeks to the snapshot's version and steps over the later
// events only. TestFirstPageByTypeKeysFlat and
// TestSnapshotLoadStepsFromSnapshot pin both with Pebble's iterator
// statistics, a deterministic count where timings are not. A read decodes
// through one decoder that shares the page's types, names and routing keys,
// reuses consecutive aggregate ids and copies payloads into shared 16 KiB
// chunks (an event's Data may share its chunk with other events of the
// same read): a 1,000-event page costs ~2 allocations per event, a
// 100-event aggregate ~1 (BenchmarkDecodePage).
//
// # Writes
//
// A single committer goroutine takes the pending writes as a group, checks
// each write's versions and routing keys (a refused write fails alone),
// assigns positions and ULIDs in commit order, and writes the group in one
// Pebble batch with one sync. Concurrent writers share WAL syncs, and the
// global order is the visibility order: a reader never sees a position
// appear behind one it has passed.
//
// # What a reader sees
//
// Pebble shows a committed batch to iterators before its WAL sync ends, so
// a raw read could return events whose Write has not returned (and would
// be lost by a crash). The committer therefore publishes a head, the
// position of the last event of the last synced group, only after Commit
// returned, and every public read bounds by it: Read and cursors never go
// past it, ReadAggregate stops at the first event past it (positions grow
// with versions), AggregateVersion steps back over such events, and
// AggregateIDs skips an aggregate whose first event is past it. Each check
// is one comparison with the position stored in the value the read already
// holds: no Pebble snapshot, no extra seek. The committer's own version
// checks read unbounded: it is the only writer and sees its last group.
// Snapshots are caller-computed state and are not checked against the log;
// the events they cover were read through these bounded paths.
//
// # Failure
//
// Pebble reports a failed commit (a WAL write or sync error) through
// Logger.Fatalf, after the batch may already be in its memtable, and its
// commit pipeline is unusable afterwards. The loggers Open installs panic
// in Fatalf (a caller's logger is wrapped to do so after it returns); every
// commit of the Store recovers that panic, and any commit error, and fails
// the Store: the writes of that group fail, and every later call returns an
// error wrapping ErrFailed, evento.ErrClosed and the cause. The failed
// batch is never reused. Close still works. Reopening the directory
// replays what reached the WAL: every write that returned nil is there; a
// write of the failed group may or may not be (its outcome is unknown, as
// with any commit whose sync failed), whole or not at all. A Store made
// with New over a caller's *pebble.DB depends on that database's logger
// for this (Pebble's default logger exits the process).
//
// # Routing keys
//
// An aggregate's routing key is fixed by its first event. The committer
// checks it with evento's shared rule (Span.Routing) in the same step that
// checks versions: a different key fails the write with a
// *evento.RoutingKeyError and nothing written (other writes of the group
// go on), and events that give no key are written with the stored one. The
// stored key comes with the version: from the committer's version cache
// (which now holds the key too), from the group's pending aggregates, or,
// on a cache miss, from the aggregate's first event, read by the same
// bounded iterator that finds its last version.
//
// Measured cost (2-core VM shared with other work, so ratios vary by
// ±0.3 between runs; interleaved runs of the code before and after): the
// routing check and the head bounds leave every ratio within that noise:
// append, 1 writer 0.88–1.30 before, 0.89–0.98 after; 16 writers
// 0.95–1.04 and 0.96–1.04; 100/commit 1.01–1.27 and 1.02–1.07; aggregate
// load 1.34–2.29 and 0.85–2.68 (BenchmarkAppend*, BenchmarkAggregateLoad100).
// On a version-cache miss, reading the key adds ~3 µs (first event, same
// iterator: 5.4–6.5 µs → 8.5–11.6 µs, BenchmarkStoredRoutingKey), against
// ~200 µs–2 ms for the synced commit.
//
// # Limits
//
// One process at a time: Capabilities reports MultiProcess false, and
// Notify only signals this Store's commits. Lease expiry uses this
// process's clock (WithClock).
package pebble
