// Package subscription runs subscription workers: processes that read the
// event log in global order and hand each event to a handler, to build read
// models and trigger side effects. A subscription has a key; under that key
// the executor stores its cursor, its leases, its lag, its last error and
// its parked events. Workers use only the evento.Executor interface, so they
// run the same on every backend.
//
//	sub := subscription.New("balances").
//		Handle("bank/Account", "MoneyDeposited", onDeposited).
//		HandleSet(generatedHandlers).         // from evento-gen
//		HandleAll("bank/Audit", audit).       // every event of a type
//		Skip("bank/Account", "AccountRenamed").
//		Data(db)                              // handlers: subscription.Value[*sql.DB](ctx)
//
//	w, err := sub.Start(ctx, exec)            // background worker
//	...
//	err = w.Stop(ctx)                         // graceful
//
//	err = sub.CatchUp(ctx, exec)              // or: process what is pending, return
//
// A subscription reads the aggregate types it has handlers for (and the
// skip-listed ones): one evento.Filter per type, intersected with its routing
// selector (Routing). Events of those types with no handler are acknowledged
// and passed over, unless SafetyCheck is on, which makes them an error
// (ErrNoHandler) so a forgotten handler cannot go unnoticed; Skip lists events
// to pass over even then.
//
// # Delivery guarantees
//
// Delivery is at least once, in global order per subscription key (per
// partition when partitioned), never skipping an event: a worker reads from
// its stored cursor with the executor's ordered reads, which never let an
// event appear behind a cursor that was passed, even with concurrent
// writers. An event is handled again only when a worker died (or lost its
// lease) after handling it and before its acknowledgement was stored; with
// AckPerChunk that is at most one chunk, MaxChunkSize events (10,000 by
// default, see Acknowledgements and lag), with AckPerEvent one event.
// Handlers must therefore be idempotent — for instance keyed by the event
// ID, or writing their effect in the same transaction as a per-aggregate
// version check — or transactional (see Effectively-once read models).
// Within one worker a partition's handler calls never overlap; different
// partitions run concurrently.
//
// # Effectively-once read models
//
// Transactional (Config.Transactional) runs handlers inside the store
// transaction that acknowledges them, on executors that implement
// evento.TxAcknowledger (Pebble, SQLite, PostgreSQL; others are refused
// with ErrNotTransactional). A handler writes its read model with the
// backend's handle — sqlite.TxFrom(ctx) (*sql.Tx), postgres.TxFrom(ctx)
// (pgx.Tx, READ COMMITTED), pebble.KVFrom(ctx) (a key-value namespace
// owned by the subscription key, read by the application with
// pebble.Store.ReadModel) — or with Tx(ctx) for the generic one. Its
// writes commit in one atomic unit with the cursor move and the check of
// the lease's holder, fencing token and expiry, or not at all: a crash
// before the commit applies nothing and leaves the cursor, a stale token
// rolls everything back with evento.ErrLeaseLost, and the next holder
// handles those events again into a read model that never saw them. So
// each event is applied exactly once.
//
// With AckPerChunk a transaction covers a chunk, with AckPerEvent one
// event. Each handler call runs in a savepoint: a failing call leaves no
// trace, the events handled before it are committed with their
// acknowledgement, and the event is retried in a new transaction after the
// backoff (no transaction stays open while the worker waits). Parking
// records the event with nothing of its handler's writes. Handlers must
// not commit or roll the transaction back; on SQLite it holds the store's
// write lock, so a handler must not write events or snapshots through the
// executor. Replay of parked events is not supported for transactional
// subscriptions yet (ErrNotTransactional): reset the subscriber to replay.
//
// Use it when the read model lives in the same store as the events. When
// it lives elsewhere (another database, a cache, a search index, e-mail),
// delivery is at least once: keep handlers idempotent, for instance by
// storing the aggregate version or the lease's fencing token with each
// write and refusing an older one.
//
// # Read-model versions
//
// Changing a read model's logic means building it again from the first
// event, while applications keep reading the old one. A subscription
// declares its version with Version(n): version n stores its cursor,
// leases and parked events under VersionedKey(key, n) ("balances@v2";
// version 0, the default, keeps the plain key, and a key given as
// "balances@v2" is version 2 of "balances"), so a new version starts from
// the beginning beside the old one. Pebble's read-model namespace follows
// the key; SQL read models write to tables named by the version,
// TableNameFrom(ctx, "balances") in a handler ("balances_v2"), and
// VersionFrom(ctx) gives the number.
//
//	v1 := balances(1, oldLogic) // subscription.New("balances").Version(1)...
//	v2 := balances(2, newLogic)
//	ro, err := subscription.StartRollout(ctx, exec, subscription.RolloutConfig{
//		Prepare:  createTable,  // CREATE TABLE IF NOT EXISTS balances_vN
//		DropData: dropTable,    // DROP TABLE balances_vN
//		OnSwitch: func(from, to int) { ... },
//	}, v1, v2)
//	table := subscription.TableName("balances", ro.Active()) // read path
//	p := ro.Progress() // the build's pending events, rate and ETA
//	<-ro.Switched()
//	err = ro.Drop(ctx, 1)
//
// StartRollout runs the active version's worker, which keeps serving, and
// the newest version's, which builds; it checks the new version's backlog
// every CheckInterval (Progress: pending events, the rate at which they
// shrink, an ETA), and when it has caught up — no pending event, or no
// more than MaxLag, or no more than the serving version — it records the
// switch, stops the old version's worker, makes Active return the new
// version and calls OnSwitch. The switch is recorded in the store under
// ActiveKey(key) ("balances@active": partition n is recorded when
// version n becomes active; these records read nothing, so Status shows
// them with no pending events), and so survives restarts: a process that
// restarts mid-build serves the old version until the new one has caught
// up (the build goes on from its cursor), one that restarts after the
// switch runs the new version alone, and processes that only read ask
// ActiveVersion. On the first rollout of a key, the active version is
// the oldest one with a read model (a key used without a version is
// version 0), which must be among the definitions. A version is never
// switched back: to undo a change, roll out a new version with the old
// logic.
//
// Drop (or DropVersion, from any process) drops a version that is neither
// active nor being built: it deletes its parked events, resets its
// subscribers and marks them dropped — so a process still running that
// version's definition is refused with ErrSelectionChanged rather than
// rebuild it — deletes its Pebble namespace (ReadModelDropper), and calls
// DropData for the application's tables; the version's record as active
// is deleted. Works with transactional
// subscriptions (effectively-once read models) on every backend: each
// version's handlers write in the transaction that acknowledges them.
//
// # Leases
//
// Before processing, a worker claims a lease on (key, partition) with a TTL
// (LeaseTTL, default 30 s). Only the holder processes. It renews the lease
// every Heartbeat (default TTL/3); every acknowledgement carries the lease,
// and the store rejects one with a stale fencing token (evento.ErrLeaseLost)
// without moving the cursor. When a renewal or an acknowledgement finds the
// lease lost — it expired and another worker claimed it, or an operator
// reset the subscriber — the worker stops processing that partition at once
// (the handler's context is cancelled) and goes back to claiming it. A
// worker that is not holding a partition tries to claim it every
// ClaimInterval (default TTL/4), and when the claim finds a live lease, again
// just after that lease's expiry: so when a holder dies another worker takes
// over within about LeaseTTL of its last renewal (plus the clock skew
// between the worker and a store that judges expiry by its own clock).
// Stop releases the leases, so a graceful hand-over is immediate.
//
// Fencing covers the work, not only the cursor. A worker keeps a local
// deadline per lease: the start of its last successful claim or renewal
// (monotonic clock, taken before the call) + LeaseTTL - LeaseMargin
// (default TTL/10). The store's expiry is at least that call's start + TTL,
// so the deadline always comes first. It is checked before every handler
// call (retries included); when it passes — renewals failing on a flaky
// connection, a paused process — the handler's context is cancelled
// (LeaseLost fires with an error wrapping evento.ErrLeaseLost), no further
// handler starts, what was handled is acknowledged (the store fences that
// acknowledgement), and the worker claims the partition again: a renewal
// that comes back after the deadline does not revive the session, the
// token may change and the cursor is read again. So no handler of a worker
// starts after another worker could claim its lease. Handlers see their
// lease with LeaseFromContext (key, partition, holder, fencing token,
// deadline) to fence their own side effects: store the token with a write
// and refuse a smaller one, or stop at the deadline.
//
// # Partitions
//
// Partitions(n) splits a subscription into n partitions. An event belongs
// to partition PartitionOf(AggregateID, n): the 32-bit FNV-1a hash of the
// aggregate id, modulo n. The function is fixed forever, and so is n for
// a key: each partition has its own cursor and lease, and the cursors of n
// partitions mean nothing under another n, so a worker with another
// partition count is refused like any other change of selection (see
// below) until the key is reset. All events of one aggregate fall in one
// partition, so they stay in order. Each partition reads the subscription's
// query and keeps its own events (the store has no hash index), so n
// partitions read the log n times.
//
// One worker may hold every partition, each processed by its own goroutine.
// Workers of a partitioned key spread the partitions evenly between them
// by a rule they all apply alike, Owners(n, live workers): every live
// worker is given floor(n / W) or ceil(n / W) partitions (W live workers;
// no more than n mod W of them get the ceil, FairShare): no two workers'
// shares differ by more than one, and while n >= W none is idle (4
// partitions and 3 workers: 2, 1 and 1; 5 and 2: 3 and 2). The rule is a rendezvous
// hash with bounded load, fixed forever: a worker joining or leaving moves
// few partitions besides the ones it takes or frees. Workers see each
// other through presence records: at every claim round (every
// ClaimInterval at most) a worker announces itself under the key with an
// expiry of max(LeaseTTL, 2 ClaimIntervals) by the store's clock (the
// store's AnnounceWorker), which returns the live workers, in the same
// order for all. A worker claims the free or expired partitions the rule
// gives it, up to FairShare and MaxClaims if set (a partition given to a
// worker capped by MaxClaims below its share is left unprocessed), and
// claims no other. It releases the partitions the rule gives another
// worker, but only once that worker has been in its view for a full
// claim interval: by then every live worker has announced since the
// newcomer appeared and sees it too, so views that differ for a moment
// (one worker has seen a newcomer, another not yet) do not send a
// partition to a worker that would pass it on at once. Until then a
// worker may hold more than its share. A release stops dispatching at an
// event boundary, acknowledges what was handled, then releases the lease,
// so the next holder reads from that acknowledgement and each aggregate's
// events stay in order across the hand-over. So a worker that joins gets
// its share within two to three claim intervals (about half a lease TTL
// with the defaults) without configuration; a worker that stops releases
// its partitions and withdraws its presence, and their new owners claim
// them at their next round; a dead worker's presence and leases expire
// about together, and its partitions are taken over within about a lease
// TTL and a claim interval.
//
// # What a subscriber reads
//
// A subscriber stores what it reads beside its cursors: its Selection — the
// aggregate types of its filters, its routing selector and its partition
// count, encoded canonically by this package. A cursor only says which
// events of that selection were handled, so a worker whose selection
// differs (a type added or removed, another routing selector, another
// partition count) would silently pass over the events only the new
// selection matches. Instead the worker is refused: Start and CatchUp
// return a *SelectionChangedError (errors.Is ErrSelectionChanged) that says
// what changed, and a running worker re-checks at every claim and stops
// with it. The first worker on a key records its selection on every
// partition (the store's RecordSelection: record if absent, return the
// stored one; subscribers stored before this rule record it at their next
// start). To change what a key reads, stop its workers and reset it — Reset,
// `evento reset -key K`, or the executor's ResetSubscriber per partition —
// which clears the stored selection and sets the cursor (empty: re-read
// from the start), or use a new key. Handlers added for event names of
// types already read do not change the selection; the events passed over
// before stay passed over.
//
// # Acknowledgements and lag
//
// An acknowledgement stores the cursor of the last event handled (or
// skipped, or parked), the lag, the last error and any parked events, in one
// transaction that checks the lease. With AckPerChunk (the default) a worker
// acknowledges once per chunk, and before it stops, releases a partition or
// parks an event. A chunk is the run of events one acknowledgement covers:
//
//   - At the head — the page read was the last, as for a tailing worker,
//     whose pages are one or a few events — the chunk ends with the page
//     and is acknowledged at once, before the worker waits for new events.
//   - Behind the head — catching up — chunks grow: the first is ChunkSize
//     events (300), each next one twice the last, up to MaxChunkSize/2
//     (5,000), ending at a page boundary, or earlier once MaxChunkAge (1 s)
//     of handling has passed. Its acknowledgement is written in the
//     background while the next chunk is handled, one at a time and in
//     order; pages grow too (doubling up to 1,000 events), and the next page
//     is read while one is handled.
//
// The redelivery bound is a hard rule: before each handler call, the events
// handled and not yet stored as acknowledged — the chunk in hand and the one
// being written, this call included — number at most MaxChunkSize (10,000);
// a worker that reaches it waits for the write in flight, or acknowledges at
// once. So a crash, a kill or a lost lease delivers at most MaxChunkSize
// events again; the test TestCrashRedeliversAtMostOneChunk kills a process
// with SIGKILL mid catch-up on each backend and counts them. Set
// MaxChunkSize to ChunkSize to acknowledge every page. Few durable writes
// keep catch-up near the speed of a raw ordered scan (about one per 5,000
// events), and a tailing worker acknowledges as promptly as before.
// AckPerEvent acknowledges after every handled event: at most one event is
// delivered again, at the cost of a durable write per event. Transactional
// subscriptions commit one transaction per page of ChunkSize events, whose
// read is prefetched; their pages do not grow, so that a transaction holds
// the store's write lock (SQLite) or its row locks no longer than before.
//
// Lag is computed when asked. Status returns every subscriber's stored
// state (cursor and its position, lease, last error, parked count, last
// update, last acknowledgement and the time since) with its pending events
// counted now from the store: the events of its own stored selection
// (types, routing, partition) after its cursor, read page by page up to
// StatusCountCap and labelled exact (PendingExact), or past the cap
// estimated from positions. So a stopped worker's backlog shows, and a
// health check can alert on Pending and SinceAck. Each acknowledgement
// still records the lag the worker saw (Lag in the stored state: events
// left in the chunk, or the distance to evento's Head, and the age of the
// acknowledged event), for what it was at that moment.
//
// # Failures
//
// A handler error (or a panic, recovered, logged with its stack and turned
// into ErrHandlerPanic) is retried with exponential backoff: RetryPolicy,
// jittered and capped. Stopping the worker during a backoff returns at once,
// leaving the event to be tried again later. After Retry.MaxAttempts the
// ExhaustedPolicy applies: StopWorker (the default) acknowledges the
// progress before the event, records the error as the subscriber's last
// error and stops the worker — Worker.Err and Worker.Stop return the error,
// which wraps ErrRetriesExhausted and the handler's error; ParkEvent moves
// the event to the dead-letter list (evento.Ack.Park) and goes on.
// Subscription.Replay runs the handlers on the parked events and deletes
// those that succeed.
//
// # Notifications
//
// A tailing worker sleeps until the executor's Notify channel signals new
// commits, then reads from its cursor. It also re-reads every PollInterval
// (default 1 s): the fallback when a signal is missed, and the way to see
// commits of other processes when the executor does not signal them
// (Capabilities().CrossProcessNotify false: Pebble, SQLite). Lower
// PollInterval when other processes write to a SQLite file.
//
// # Observability and tests
//
// Workers log with log/slog (Config.Logger) with the subscription key,
// partition, worker id, event id and attempt. Signals are callbacks fired at
// lease gained, lost and released, chunk acknowledged, retry, park and stop,
// so tests wait on them instead of sleeping.
package subscription
