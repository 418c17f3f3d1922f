// Package sqlite is the SQLite backend of evento, built on modernc.org/sqlite
// (pure Go, no cgo) through database/sql.
//
// Open a file with [Open], an in-memory store for tests with [OpenMemory],
// wrap a ready *sql.DB with [New], or use executor.Open with a DSN:
//
//	sqlite:/var/lib/app/events.db
//	sqlite:events.db?durability=normal&lock_timeout=5s
//	sqlite::memory:
//
// DSN options (the table in package executor lists them for every
// backend): durability (full, normal, off: PRAGMA synchronous FULL, NORMAL,
// OFF; default full), lock_timeout (the busy timeout: 5s, 250ms or
// milliseconds; default 5s), max_page_size, default_page_size and migrate.
// The older spellings synchronous (also extra) and busy_timeout still work.
// An unknown option is an error wrapping executor.ErrInvalidDSN.
//
// # Writes and global order
//
// SQLite has one writer at a time. Every write (events, leases, snapshots)
// runs in a BEGIN IMMEDIATE transaction on one dedicated connection, behind
// an in-process lock; writers in other processes wait on the busy timeout
// for SQLite's write lock, which spans processes. An event's position is
// its INTEGER PRIMARY KEY (no AUTOINCREMENT needed: events are never
// deleted), which SQLite assigns inside that transaction as one more than
// the largest stored, and the writer's snapshot is the newest commit. So
// positions follow commit order across connections, Stores and processes,
// and a position at or below a committed one is never assigned later (a
// rolled-back transaction's positions were never visible). Its ULID is made
// there too, greater than the last stored one. Positions are reported as
// Position{Tx: 0, Seq: rowid}. The synchronous setting changes durability
// only, not visibility or order: a commit is visible to other connections
// once COMMIT returns, whatever the setting. (With off or normal, a power
// loss may drop the last commits and their positions be reused; a cursor
// that named a dropped event is then refused as evento.ErrInvalidCursor.)
//
// # Reads: one snapshot per read
//
// In WAL mode each statement reads one snapshot: a committed prefix of the
// log. A Read gets its page from one statement, whatever the query: an OR
// of filters is one statement whose arms are co-routines, each an ordered
// range of at most a page of positions from its own index, gathered in an
// IN list and fetched by position in order up to the page size (no sort,
// no temporary b-tree, no transaction). Running the arms as separate
// statements, as before, let a page hold position 12 without 11 committed
// between them, and a tailing reader of ByType("A").Or(Filter{"B"}) lost
// about 4% of the events. The cursor check and the has-other-page probe are
// separate statements but read only rows no later commit can change
// (positions at or before the cursor, or, reading backward, the page lies
// before it), so every Read returns what one snapshot shows. ReadAggregate,
// AggregateVersion, Head, AggregateIDs, LoadSnapshot and the subscriber
// reads are single statements. Measured (BenchmarkReadShapes, median CPU
// time per Read of a 100-event page over 30,000 events, on a loaded 2-core
// machine): one arm unchanged (about 420-510µs); two and three arms 18-25%
// cheaper than the old multi-statement read (690→520µs, 700→520µs); an
// empty page at the head, what a tailing reader reads most, 70-90µs before
// and after. Appends are unchanged (BenchmarkAppend1/100 ratios to raw
// SQLite 0.86/1.06 before, 0.96/1.18 after, both within run-to-run
// noise). TestOrderingTailInProcess and TestOrderingTailMultiProcess tail
// nine query shapes against 8 to 32 writers in up to three processes and
// find no event missed.
//
// # Routing keys
//
// An aggregate's routing key is fixed by its first event. Write checks it
// in the same transaction that checks versions: for an aggregate that
// already has events, one statement reads its version and its first
// event's key (two seeks of the unique (aggregate_type, aggregate_id,
// version) index; for the batch's first aggregate the same statement also
// reads the log's last position and ULID); storekit.Span.Routing then gives
// the key to write, and events that gave none inherit it.
//
// The events are then inserted by multi-row INSERTs of 64, 32, ... 1 rows
// (at most seven prepared statements on the write connection), with their
// positions given explicitly as the ones SQLite would assign: one more
// than the last stored position, read under the write lock. A 1-event
// commit is two statements besides BEGIN and COMMIT instead of three; a
// 100-event commit four (the read, then 64 + 32 + 4 rows) instead of 102. Measured without syncs
// (BenchmarkWriteCPU): a 100-event commit 3.8–4.4 ms → 1.7–1.9 ms of CPU,
// a 1-event commit 175–219 µs → 138–145 µs. A different key fails the whole batch
// with an *evento.RoutingKeyError (errors.Is evento.ErrRoutingKey), after
// any version conflict, and writes nothing.
//
// The database runs in WAL mode with synchronous=FULL by default: a Write
// that returned nil survives a crash of the process or the machine.
//
// # Schema
//
// Migrations are embedded and applied on open inside BEGIN IMMEDIATE, after
// re-reading the recorded version, so several processes may open the same
// file at once. A file whose recorded version is newer than this code gives
// an error wrapping evento.ErrSchemaTooNew.
//
// Each query shape of evento.Query reads O(page) index entries, including
// type+name intersected with a routing key (index events_rk_name_pos). The
// exception is a filter with an AggregateID combined with a Name or a
// routing key: it reads that one aggregate's events and filters them.
//
// # Indexes, and what each costs
//
// The rowid (position) orders the log; UNIQUE (aggregate_type,
// aggregate_id, version) enforces versions and serves ReadAggregate, the
// version check and AggregateVersion. Each secondary index serves one
// query shape, ending in position so that a page is a range read in
// global order (Read names it with INDEXED BY):
//
//	index                  query shape
//	events_agg_pos         type + id (with or without name / routing key)
//	events_type_pos        by type
//	events_name_pos        by type + name
//	events_rk_pos          all events with a key or "no key"
//	events_rk_type_pos     by type with a key / "no key"
//	events_rk_name_pos     by type + name with a key / "no key"
//
// events_agg_pos cannot be folded into the unique index: a cursor is a
// position, and a type + id page after a cursor that another filter of an
// OR produced has no version to seek to. BenchmarkIndexWriteCost measures
// each index's cost (durable commits of 100 events into the Store's schema
// against the same schema less that index); the six together take the
// layout to 0.65–0.99× the minimal one-index table on 100-event commits
// (schema_cost of BenchmarkW3AppendBatch100, three runs, median 0.83) and
// the Store to 0.69–0.78× (ratio_vs_raw), while single-event commits are
// bound by the WAL sync (W1 0.85–0.97). Row scans reuse their
// destinations, share a page's types, names and routing keys, copy
// payloads into shared 16 KiB chunks and decode metadata without
// reflection: a 1,000-event page 25.8k → 15.8k allocations
// (BenchmarkDecodePage), the rest being the driver's per-column values.
// See README.md "Benchmarks".
//
// # Leases and notifications
//
// Lease expiry is judged by this process's clock ([WithClock]); processes
// sharing a file should have synchronised clocks. Notify signals commits
// made through this Store; commits by other processes are noticed by a
// cheap poll of PRAGMA data_version while someone listens ([WithPollInterval]).
package sqlite
