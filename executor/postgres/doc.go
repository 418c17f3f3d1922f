// Package postgres is evento's PostgreSQL executor, on github.com/jackc/pgx/v5
// (pgxpool). It is the backend for applications that run on several
// machines: many processes may open one schema and write to it at once,
// Notify signals commits across processes with LISTEN/NOTIFY, and lease
// expiry is judged by the server's clock.
//
// Open it with a DSN, directly or through executor.Open after importing the
// package for its side effect:
//
//	import _ "github.com/evento-go/evento/executor/postgres"
//
//	x, err := executor.Open(ctx, "postgres://user:pass@host:5432/db?sslmode=disable&schema=evento")
//
// or hand it a ready pool with New. The DSN is a libpq URL (scheme postgres
// or postgresql) with libpq's and pgxpool's options (pool_max_conns, …)
// passed through as written (percent-encoded as libpq reads them: '+' is a
// plus sign, %20 a space; application_name=my%20app,
// options=-c%20statement_timeout%3D5s), plus evento's:
//
//	schema=<name>        schema of evento's tables; default "evento", created
//	                     if missing (a dedicated schema keeps the generic
//	                     table names events, subscribers, snapshots… out of
//	                     the application's public schema)
//	ordering=xid|lock    ordering strategy of a new schema (see below)
//	listen=false         no LISTEN connection; Notify polls
//	poll_interval=250ms  Notify's polling interval while LISTEN is down
//
// Any other option is an error wrapping executor.ErrInvalidDSN. Errors name
// the DSN with its password redacted.
//
// # Schema
//
// The tables are created and migrated on open by embedded, numbered SQL
// migrations, recorded in schema_migrations and applied in one transaction
// under a transaction-level advisory lock, so processes opening at once are
// safe. A schema recorded at a newer version than this code knows gives an
// error wrapping evento.ErrSchemaTooNew. Identifiers (aggregate types and
// ids, names, routing keys, subscription keys, holders) are stored as bytea,
// since PostgreSQL text cannot hold the NUL bytes Go strings may contain.
// events has one index per query shape, each ending in the global order, so
// every query shape of evento.Query reads O(page) index entries (a test
// checks the plans with EXPLAIN ANALYZE, with stale and fresh statistics).
// The connections Open makes start with enable_sort, enable_bitmapscan and
// jit off (startup parameters, in the pool's ConnConfig.RuntimeParams), so
// that statistics lagging a growing table cannot turn a page into a scan of
// the rest of the log; on a pool handed to New, whose connections the
// caller configured, each read sets them for its own transaction in its
// first statement. Read also sets plan_cache_mode to force_custom_plan for
// its transaction: pgx prepares each statement once per connection, and
// from the sixth execution PostgreSQL may run a generic plan, costed
// without the arguments, whose estimate for aggregate_type = $1 is the
// average type's share of the table (the primary key scan that filters
// every other type's event costs within 10% of the type's index there).
// Planning each read with its arguments costs 0.06-0.09 ms of server time;
// the first page by type then reads 4-5 buffers, 0.02 ms, on its 1st and
// 1000th execution, with 10k or 1M unrelated events. The point reads
// (ReadAggregate, AggregateVersion, Head) keep pgx's cached plans: each
// of their statements can be served in order by one index only, whatever
// the arguments (the tests check their forced generic plans too), and a
// session-wide force_custom_plan would replan every write. ReadAggregate seeks
// to (type, id, after) in the unique index with equalities and version >
// after, and orders by version, which only that index gives without a
// sort: a read after a snapshot of a 10k-event aggregate reads 4 buffers,
// like one of a 20-event aggregate (the former row comparison mixed with
// equalities scanned the aggregate from its first event: 42). A test runs
// every shape a dozen times on one connection over 200k events and
// explains the statement pgx prepared (plan_test.go).
//
// # Global order
//
// A reader that has passed a cursor must never later see an event appear
// behind it, although transactions commit in another order than they
// started. Two strategies are implemented; a schema keeps the one it was
// created with.
//
// OrderingTxHorizon ("xid", the default). Each event row stores the writing
// transaction's id (tx xid8 DEFAULT pg_current_xact_id()) and a sequence
// number (seq, an identity column); its Position is {Tx: tx, Seq: seq}, and
// reads order by (tx, seq). A reader returns only the rows below a horizon H
// computed by the first statement of its transaction: the smaller of that
// statement's snapshot xmax and the smallest transaction id among the
// writers of this schema. Writers make themselves known by taking a shared
// advisory lock (per schema) before their transaction id, held until they
// end; readers find them in pg_locks, and take each one's transaction id
// from its backend status, pg_stat_get_activity(pid).backend_xid, which
// PostgreSQL reads from the backend's PGPROC, where the id is stored in the
// same critical section (XidGenLock) that assigns it.
//
// Why not the transactionid lock, as the first versions did: a backend
// inserts that lock after its new id is already in the ProcArray (in other
// snapshots' in-progress lists and below their xmax). A writer in that
// window was invisible to the horizon and could commit behind it; tailing
// readers of 32 writers lost 1 to 9 events in 8 of 12 runs.
//
// Proof sketch. Let t0 be the instant of the horizon statement's snapshot
// S, and X < H the id of a writer W. X < H <= xmax(S), and xmax is one past
// the newest id completed at t0, which was assigned at or after X: so X was
// assigned before t0, and W, which registers before it takes an id, held
// the advisory lock at t0. pg_locks and the backend status are read after
// t0 (the status is copied once per transaction, at its first use, which
// is this statement). If W had ended before either read, its commit is
// visible to every snapshot taken after (a transaction leaves the ProcArray
// before it releases its locks, and clears its PGPROC id there). Otherwise
// both reads show it, the lock and X, so H <= X: a contradiction. Hence
// every writer with an id below H had ended by the time the horizon
// statement finished, and the page statement that follows, with its own
// later snapshot, sees every row that will ever have tx < H: no event can
// later appear behind a reader. (A backend status slot reused by another
// backend in between can only give a smaller bound, never hide a writer.)
// Transactions that write no events to this schema (other schemas, other
// tables, other databases of the cluster) do not hold readers back.
//
// The argument needs a new snapshot per statement. Every read with a
// horizon (Read, Head, ReadAggregate, AggregateVersion) pipelines the
// horizon statement and its own statements in one round trip, in the
// pipeline's implicit transaction, where under the default READ COMMITTED
// each statement takes its own snapshot. The horizon statement also
// reports the transaction's isolation: under a REPEATABLE READ or
// SERIALIZABLE default (database, role or DSN options) the pipeline's
// statements would share one snapshot (readers lost 70-128 of 32k events
// per run), and SERIALIZABLE would fail reads with serialization errors;
// there the statement stores a horizon of 0, which hides every event, the
// connection is marked, and the read runs again at once, and so do that
// connection's later reads, between BEGIN ISOLATION LEVEL READ COMMITTED
// READ ONLY and COMMIT in the same single round trip. (BEGIN and COMMIT
// on every read cost a fifth of a 100-event aggregate load.) Reads of a
// single statement (AggregateIDs, LoadSnapshot, and the point reads of the
// lock ordering) and writes (a single INSERT) cannot mix snapshots and run
// in the statement's implicit transaction, where REPEATABLE READ behaves
// as READ COMMITTED; BEGIN and COMMIT would cost 10-20% of an append. A
// SERIALIZABLE session fails them with SQLSTATE 40001 (concurrent appends
// read neighbouring index ranges): the first such failure marks the
// connection, the statement is run again at once in an explicit READ
// COMMITTED transaction, and so are that connection's later ones; callers
// never see the error. A stress test tails every kind of query with 32
// writers in two executors and two writer processes under each default.
//
// Point reads see no event at or above the horizon either: a version or a
// cursor taken from an aggregate's events (a snapshot's, say) is never
// ahead of what Read and Head show, so a reader continuing from it cannot
// skip an event committed later below it. So right after a Write returns,
// its events may be hidden from ReadAggregate while a writer with a
// smaller transaction id is still in flight (normally for less than a
// commit); a write based on that stale read fails with a version conflict
// and is retried by the aggregator. An aggregate's next version checks in
// its INSERT that the expected version was written by an older
// transaction, so each aggregate's events are in version order in the log.
//
// Roles. A reader needs USAGE on the schema and SELECT on its tables, no
// more: pg_locks and pg_stat_activity's backend_xid are shown to every role
// (the other columns of other roles' backends are hidden, and not used).
// Writers need SELECT and INSERT on events; the advisory lock needs no grant. Open
// itself creates or migrates the schema, and needs CREATE on it even when
// there is nothing to migrate (a test grants it to its reader role).
//
// Cost. The horizon statement reads pg_locks once (it used to read it twice)
// and copies the backend status table (O(max_connections), about 100 KB at
// the default 100 connections, once per read transaction): measured at
// 38-69µs of server time with 32 connections, the same as the
// transactionid-lock version (40-67µs).
//
// Trade-offs: a long-open write transaction of this schema pauses readers
// (not writers) at its position until it ends; reads cost one more
// statement (the horizon), pipelined in the same round trip; positions are transaction ids, which a dump and restore into
// another cluster does not preserve against that cluster's counter (the
// restored rows keep their old tx values, which may be above the new
// cluster's ids: new events would sort before them, so restore into a fresh
// schema with ordering=lock, or re-append, rather than continuing one);
// xid8 is 64-bit, so wraparound is not an issue. Writers commit
// concurrently and share WAL flushes.
//
// OrderingAdvisoryLock ("lock"). Appends take a transaction-level advisory
// lock, held until commit, and number events with a plain sequence (tx is
// 0). Commit order is sequence order, reads need no horizon and positions
// survive dump and restore, but appends are serialised across all
// processes, including their commit flushes: with concurrent writers it is
// several times slower (see the benchmarks).
//
// Event IDs are ULIDs from one storekit.ULIDSource per store, made when Write
// is called: they increase with positions for the writes of one goroutine
// (and within a batch), but concurrent writers, like other processes, may
// get IDs out of position order. Order by cursor (position), not by ID.
// Timestamps are the server's now() (the statement start), in
// microseconds, UTC.
//
// # Writes
//
// A write is one statement, one round trip like a raw INSERT: a multi-row
// INSERT … SELECT FROM unnest(…) (a single event: the same statement with
// scalar arguments) that first takes the ordering lock in a materialized
// CTE every row joins (so the lock precedes the transaction id, assigned at
// the first inserted row). It runs alone in its implicit transaction, or in
// an explicit READ COMMITTED one on a SERIALIZABLE session (see above).
// The expected version's row is found with a row comparison on the unique
// key that only its index can serve, so an append costs O(log n) whatever
// the planner's statistics (a test checks the plans with EXPLAIN ANALYZE).
//
// Routing keys: an aggregate's routing key is fixed by its first event
// (storekit.ValidateBatch and storekit.Span.Routing state the rule). The same
// statement takes the stored key from the expected version's row (which
// every write keeps equal to the first event's): the events of a batch
// that gave no key for an existing aggregate are written with it (and
// Write sets it on them), and if a batch gave a different one, nothing is
// inserted; the key is then read back and Write returns an
// *evento.RoutingKeyError, with nothing written.
//
// Version conflicts are found by the unique constraint on
// (aggregate_type, aggregate_id, version) (SQLSTATE 23505, also for racing
// creators of a new aggregate) and by the INSERT's check that each
// aggregate's expected version exists; either way the actual versions are
// read after the rollback into an *evento.VersionConflictError.
// A connection lost in the middle leaves nothing behind.
//
// # Subscribers and notifications
//
// Leases are claimed, renewed, released and checked in single statements
// that compare lease_expires_at with the server's now(), and every claim
// increments the fencing token in the same statement. Acknowledge checks
// holder, token and expiry in the statement (and transaction) that moves
// the cursor and parks events.
//
// Notify signals local commits directly and sends pg_notify after commit
// (not NOTIFY inside the write, which would serialise commits on the notify
// queue lock). A dedicated connection LISTENs for the other processes'
// commits; when it is lost, a poller watches Head until it is back, and it
// reconnects with backoff.
//
// # Indexes, and what each costs
//
// The primary key (tx, seq) orders the log; UNIQUE (aggregate_type,
// aggregate_id, version) enforces versions and serves ReadAggregate, the
// predecessor check and AggregateVersion. Each secondary index serves one
// query shape and ends in (tx, seq), so a page is an index range in global
// order in either direction:
//
//	index                 query shape
//	events_type           by type
//	events_type_routing   by type with a key / "no key"
//	events_name           by type + name
//	events_name_routing   by type + name with a key / "no key"
//	events_aggregate      type + id, with or without a key / "no key"
//	events_routing        all events with a key / "no key"
//
// Every shape is O(page) only with its index: with a key, a type's (or a
// name's) events and the key's events may each be a small share of the
// other's, so neither events_type nor events_routing alone serves
// type-with-key in O(page); and a type's events are not a prefix of a
// name's or a key's. Type + id with a key needs no index of its own
// (events_aggregate_routing, dropped by migration 4): an aggregate's
// events all carry its first event's routing key (the rule every write
// and import enforces), so the page statement checks the first event's key
// once, in an InitPlan that PostgreSQL evaluates as a one-time filter
// before the scan; if it is another key nothing is read (a plan test reads
// a 10,000-event aggregate with a mismatching key), else every event of
// the aggregate matches and events_aggregate gives the page in order.
// events_aggregate itself stays: the unique (type, id, version) orders an
// aggregate by version, which is its global order too, but a cursor is a
// position, possibly another aggregate's, and only an index ending in
// (tx, seq) seeks to it.
//
// BenchmarkIndexWriteCost measures each one (COPY of 100 events into a
// copy of the events table against a copy less that index, same run).
//
// # Benchmarks
//
// bench_test.go measures W1–W5 (appends of 1 event by 1 and 16 writers,
// batches of 100, an aggregate load, an ordered scan) against
// internal/rawengine's minimal PostgreSQL table (one row per event, an
// identity key, a unique (type, id, version), nothing else: ratio_vs_raw)
// and against raw pgx on a copy of the store's own table (ratio_vs_layout,
// and schema_cost = layout ÷ minimal), interleaved in one run:
//
//	go test ./executor/postgres/ -run '^$' -bench 'W[1-5]' -benchtime=1s
//
// README.md "Benchmarks" has the figures. What the minimal table does not
// give, and evento pays for: commit-order positions (the transaction-id
// horizon: (tx, seq) and the horizon check on reads), a page of every query
// shape in O(page) (the six indexes above), and routing-key and
// predecessor checks in the append statement.
package postgres
