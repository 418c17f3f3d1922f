// Package sqlite is the SQLite backend of evento, built on modernc.org/sqlite
// (pure Go, no cgo) through database/sql.
//
// Open a file with [Open], an in-memory store for tests with [OpenMemory],
// wrap a ready *sql.DB with [New], or use executor.Open with a DSN:
//
//	sqlite:/var/lib/app/events.db
//	sqlite:events.db?synchronous=normal&busy_timeout=5000
//	sqlite::memory:
//
// DSN options: synchronous (off, normal, full, extra; default full),
// busy_timeout (milliseconds, default 5000), max_page_size and
// default_page_size. An unknown option is an error wrapping
// executor.ErrInvalidDSN.
//
// # Writes and global order
//
// SQLite has one writer at a time. Every write (events, leases, snapshots)
// runs in a BEGIN IMMEDIATE transaction on one dedicated connection, behind
// an in-process lock; writers in other processes wait on the busy timeout.
// An event's position is its INTEGER PRIMARY KEY, assigned inside that
// transaction, and its ULID is made there too, greater than the last stored
// one, so commit order, position order and ULID order agree across processes.
// Positions are reported as Position{Tx: 0, Seq: rowid}.
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
// # Leases and notifications
//
// Lease expiry is judged by this process's clock ([WithClock]); processes
// sharing a file should have synchronised clocks. Notify signals commits
// made through this Store; commits by other processes are noticed by a
// cheap poll of PRAGMA data_version while someone listens ([WithPollInterval]).
package sqlite
