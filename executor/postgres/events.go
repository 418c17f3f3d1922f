package postgres

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/evento-go/evento"
	"github.com/evento-go/evento/cursor"
	"github.com/evento-go/evento/executor/storekit"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/oklog/ulid/v2"
)

// queries holds the SQL that depends on the schema and the ordering.
type queries struct {
	lock       string // the ordering lock a write takes first
	ev         string // quoted events table
	txValue    string
	insert     string
	insertOne  string // insert for a single event, with scalar arguments
	versions   string
	horizon    string // "" for the lock ordering
	prelude    string // first statement of Read: horizon (if any) and plan settings
	point      string // first statement of the other reads ("" for none): horizon (if any), session plan settings on a pool Open did not make
	readAgg    string
	aggVersion string
	aggIDs     string
	head       string
	cursorID   string
	subscriber string // SELECT … FROM of a subscriber's state (subscriberSelectSQL)
}

const eventCols = "tx, seq, id, aggregate_type, aggregate_id, version, name, routing_key, data, metadata, ts"

// sessionPlanSettings are the planner settings every read needs, as
// startup parameters: Open puts them in its pool's ConnConfig.RuntimeParams,
// so its connections start with them and reads send nothing for them. On a
// pool handed to New, which the caller configured, each read sets them
// itself, local to its transaction (planSettings), in its first statement.
//
// Without them the planner, with statistics that lag a growing table, may
// pick a bitmap scan of every row after the cursor and a top-N sort over
// them instead of reading one page in index order: O(rest of the log) per
// page instead of O(page). The disabled paths' cost penalty would also push
// the plan's cost over jit_above_cost: JIT compiling a page query costs
// 100ms, so JIT is off too. Writes and the subscriber statements have one
// plan either way (their explain tests run with these settings).
var sessionPlanSettings = map[string]string{"enable_sort": "off", "enable_bitmapscan": "off", "jit": "off"}

// planSettings is sessionPlanSettings as set_config calls, local to the
// read's transaction, for a pool Open did not make.
const planSettings = "set_config('enable_sort', 'off', true), set_config('enable_bitmapscan', 'off', true), set_config('jit', 'off', true)"

// customPlans is set by Read (only), local to its transaction, in its
// first statement: plan_cache_mode force_custom_plan. pgx prepares each
// statement once per connection, and from its sixth execution PostgreSQL
// may run a generic plan, costed without the arguments. For
// aggregate_type = $1 it assumes the average type's share of the table; on
// a log where the type read is rare, reading the primary key in (tx, seq)
// order and filtering then costs about as much as the type's index
// (measured 35 against 39), and either may win on a statistics refresh:
// the page would read every event of other types before the first match
// (1M rows and 32k buffers instead of 5). A custom plan sees the type and
// costs 0.06-0.09 ms of planning per read statement (measured on a page by
// type). The other reads' statements (ReadAggregate's, AggregateVersion's,
// Head's) can only be served in order by one index, whatever the
// arguments, and keep pgx's plan cache: a session-wide force_custom_plan
// would replan every write too. The horizon statement has no parameters
// and keeps its one plan.
const customPlans = "set_config('plan_cache_mode', 'force_custom_plan', true)"

// readCommitted is true when the current transaction takes a new snapshot
// per statement, which the horizon needs (PostgreSQL runs READ UNCOMMITTED
// as READ COMMITTED).
const readCommitted = "current_setting('transaction_isolation') IN ('read committed', 'read uncommitted')"

// horizonSQL is a read's first statement: it computes the read horizon of
// a schema's event log and stores it in the setting evento.horizon, local
// to the read's transaction, for the statements that follow in the same
// pipeline, each with its own, later snapshot. Its first column says
// whether the transaction is READ COMMITTED; when it is not (a session
// whose default isolation is REPEATABLE READ or SERIALIZABLE, where the
// pipeline's statements would share this statement's snapshot), the
// horizon is 0, which hides every event, and the read is run again in an
// explicit READ COMMITTED transaction (see Store.read). settings are
// further select-list items (set_config calls), or "".
//
// The horizon H is the smaller of this statement's snapshot xmax and the
// smallest transaction id of the writers registered at the time: the
// backends holding (or waiting for) the schema's shared writers lock, and
// their transaction id as PostgreSQL's backend status reports it
// (pg_stat_get_activity(pid).backend_xid, read from the backend's PGPROC,
// where the id is stored in the same critical section that assigns it).
// The transactionid lock in pg_locks is not used: a backend inserts it
// only after its new id is already in the ProcArray (in other snapshots'
// in-progress lists and below their xmax), so a writer could be missed.
//
// A writer takes the writers lock before its transaction id and keeps it
// until it ends. Let X < H be a writer's id, and t0 the instant of this
// statement's snapshot. X < H <= xmax means X was assigned before t0 (xmax
// is one past the newest completed id), so the writer held the lock at t0.
// pg_locks and the backend status are both read after t0. If the writer
// ended before either read, its commit is visible to every later snapshot
// (a transaction leaves the ProcArray before it releases its locks). Else
// both show it: the lock, and X in its PGPROC, so X bounds H, contradicting
// X < H. So the later statement that returns the rows with tx < H returns
// every row that will ever have tx < H: no event can later appear behind
// them. Transactions that write no events (other schemas, other tables,
// other databases) do not hold readers back.
//
// The backend status is copied once per transaction, at its first use:
// this statement must be the first of its transaction to read it (it is
// the first statement of the pipeline's implicit transaction, or the first
// after BEGIN). backend_xid is shown to every role, like pg_locks.
//
// Transaction ids here are 32-bit; they are widened to xid8 relative to the
// snapshot's xmax (ids assigned after the snapshot are >= xmax and cannot
// lower H).
func horizonSQL(key int64, settings string) string {
	hi, lo := uint32(uint64(key)>>32), uint32(uint64(key))
	if settings != "" {
		settings = ",\n\t" + settings
	}
	return fmt.Sprintf(`WITH n AS (SELECT pg_snapshot_xmax(pg_current_snapshot())::text::bigint AS n, %s AS rc),
w AS (
	SELECT a.backend_xid::text::bigint AS x
	FROM pg_locks l CROSS JOIN LATERAL pg_stat_get_activity(l.pid) a
	WHERE l.locktype = 'advisory' AND l.classid = %d AND l.objid = %d AND l.objsubid = 1
		AND l.pid IS NOT NULL AND a.backend_xid IS NOT NULL)
SELECT n.rc, set_config('evento.horizon', CASE WHEN n.rc THEN least(n.n, (
	SELECT min(CASE WHEN d < 2147483648 THEN n.n + d ELSE n.n + d - 4294967296 END)
	FROM (SELECT ((w.x - (n.n & 4294967295)) + 4294967296) %% 4294967296 AS d FROM w) dd))::text ELSE '0' END, true)%s
FROM n`, readCommitted, hi, lo, settings)
}

// beginRead starts a read's transaction on a connection whose session
// defaults to REPEATABLE READ or SERIALIZABLE (see explicitRC): a read of
// several statements (horizon, cursor check, page) needs a new snapshot
// per statement, which those would not give, and SERIALIZABLE would also
// make reads fail with serialization errors. It is queued in the same
// pipeline (one round trip) as the read and its COMMIT.
const beginRead = "BEGIN ISOLATION LEVEL READ COMMITTED READ ONLY"

// beginWrite starts a write's transaction on a connection whose session
// defaults to SERIALIZABLE (see explicitRC): there, concurrent appends
// (whose predecessor lookups read neighbouring index ranges) fail with
// serialization errors.
const beginWrite = "BEGIN ISOLATION LEVEL READ COMMITTED READ WRITE"

// explicitRCKey marks, in a connection's pgconn.CustomData, a session whose
// default isolation is not READ COMMITTED: a read's horizon statement found
// its implicit transaction REPEATABLE READ or SERIALIZABLE, or a statement
// alone in its implicit transaction failed with a serialization error
// (SQLSTATE 40001). Reads and writes run in the implicit transaction of
// their pipeline (BEGIN and COMMIT would cost 10-20% of an append's time,
// and a fifth of an aggregate load's); on a marked connection they run
// between beginRead or beginWrite and COMMIT, pipelined in the same round
// trip. The failed read or statement is run again that way at once, so a
// caller never sees the error.
const explicitRCKey = "evento.explicit-read-committed"

func explicitRC(c *pgxpool.Conn) bool {
	v, _ := c.Conn().PgConn().CustomData()[explicitRCKey].(bool)
	return v
}

func markExplicitRC(c *pgxpool.Conn) { c.Conn().PgConn().CustomData()[explicitRCKey] = true }

// serializationFailure reports whether err is a serialization error on a
// connection not yet marked explicitRC, and marks it.
func serializationFailure(c *pgxpool.Conn, err error) bool {
	var pgErr *pgconn.PgError
	if explicitRC(c) || !errors.As(err, &pgErr) || pgErr.Code != "40001" {
		return false
	}
	markExplicitRC(c)
	return true
}

// errNotReadCommitted is returned by scanPrelude when the read's horizon
// statement did not run READ COMMITTED: Store.read marks the connection and
// runs the read again in an explicit READ COMMITTED transaction.
var errNotReadCommitted = errors.New("postgres executor: read outside READ COMMITTED")

// scanPrelude reads the result of a read's first statement, sql (s.q.prelude
// or s.q.point; nothing when sql is ""), and checks that the horizon, if
// any, was computed in a READ COMMITTED transaction.
func (s *Store) scanPrelude(br pgx.BatchResults, sql string) error {
	switch {
	case sql == "":
		return nil
	case s.q.horizon == "":
		_, err := br.Exec()
		return err
	}
	rows, err := br.Query()
	if err != nil {
		return err
	}
	defer rows.Close()
	if !rows.Next() {
		if err := rows.Err(); err != nil {
			return err
		}
		return errors.New("postgres executor: horizon statement returned no row")
	}
	// The isolation check, then the horizon and the settings' set_config
	// results, skipped.
	var rc bool
	dest := make([]any, len(rows.FieldDescriptions()))
	dest[0] = &rc
	if err := rows.Scan(dest...); err != nil {
		return err
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	if !rc {
		return errNotReadCommitted
	}
	return nil
}

// read runs a read's statements (queued by queue, results read by scan,
// the first statement's with scanPrelude) in one pipeline, one round trip:
// in the pipeline's implicit transaction, where each statement takes its
// own snapshot under the default READ COMMITTED, or between beginRead and
// COMMIT on a connection marked explicitRC. A read whose horizon statement
// finds another isolation, or that fails with a serialization error,
// marks its connection and runs again at once, explicitly.
func (s *Store) read(ctx context.Context, queue func(b *pgx.Batch), scan func(br pgx.BatchResults) error) error {
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return err
	}
	defer conn.Release()
	for {
		wrap := explicitRC(conn)
		b := &pgx.Batch{}
		if wrap {
			b.Queue(beginRead)
		}
		queue(b)
		if wrap {
			b.Queue("COMMIT")
		}
		br := conn.SendBatch(ctx, b)
		var err error
		if wrap {
			_, err = br.Exec()
		}
		if err == nil {
			err = scan(br)
		}
		if cerr := br.Close(); err == nil {
			err = cerr
		}
		if errors.Is(err, errNotReadCommitted) && !wrap {
			markExplicitRC(conn)
			continue
		}
		if serializationFailure(conn, err) {
			continue
		}
		return err
	}
}

// insertSQL returns the statement that appends a batch: one statement,
// alone in its transaction (see beginWrite), one round trip like a raw
// INSERT.
//
// The ordering lock is taken in a materialized CTE that every inserted row
// joins, so it is held before the first row is inserted, which is when the
// transaction id is assigned (nothing before assigns one: the predecessor
// check uses pg_current_xact_id_if_assigned). CTE p looks up, for each
// aggregate the batch continues, its expected version's row (present, and
// older than this transaction, so an aggregate's events are in version
// order in the global order) and takes its routing key: the aggregate's,
// fixed by its first event. The rows of such an aggregate are written with
// that key; if any expected version is missing, or a batch gave a key
// ($12, NULL when it gave none) that differs, nothing is inserted (the
// unique constraint catches a version already taken). hook, for tests, is a
// select-list expression evaluated after the lock.
//
// The predecessor is looked up with a row comparison on the unique key,
// (aggregate_type, aggregate_id, version) >= (t, i, v) ORDER BY that key
// LIMIT 1, and its key checked after: only the unique index matches a row
// comparison on those columns in that order and gives that order, so the
// lookup is O(log n) whatever the statistics. With plain equalities the
// planner, on a table with no or stale statistics (a new schema, a growing
// aggregate), may equally pick an index on (aggregate_id, aggregate_type,
// …) and filter the version out of the whole aggregate: O(aggregate) per
// write (measured: 135 buffer hits and 1.3 ms per write at 4,000 events,
// against 3 and 0.27 ms this way).
func (q *queries) insertSQL(hook string) string {
	with, from := q.lockCTE(hook)
	return with + `,
p AS MATERIALIZED (
	SELECT p.t, p.i, p.r, (SELECT CASE WHEN e.aggregate_type = p.t AND e.aggregate_id = p.i AND e.version = p.v
			AND e.tx < coalesce(pg_current_xact_id_if_assigned(), '18446744073709551615'::xid8) THEN e.routing_key END
		FROM ` + q.ev + ` e WHERE (e.aggregate_type, e.aggregate_id, e.version) >= (p.t, p.i, p.v)
		ORDER BY e.aggregate_type, e.aggregate_id, e.version LIMIT 1) AS stored
	FROM unnest($9::bytea[], $10::bytea[], $11::bigint[], $12::bytea[]) AS p(t, i, v, r))
INSERT INTO ` + q.ev + ` (tx, id, aggregate_type, aggregate_id, version, name, routing_key, data, metadata)
SELECT ` + q.txValue + `, u.id, u.t, u.i, u.v, u.n, CASE WHEN p.t IS NULL THEN u.r ELSE p.stored END, u.d, u.m
FROM ` + from + `, unnest($1::bytea[], $2::bytea[], $3::bytea[], $4::bigint[], $5::bytea[], $6::bytea[], $7::bytea[], $8::bytea[])
	WITH ORDINALITY AS u(id, t, i, v, n, r, d, m, ord)
	LEFT JOIN p ON p.t = u.t AND p.i = u.i
WHERE NOT EXISTS (SELECT 1 FROM p WHERE p.stored IS NULL OR p.stored <> coalesce(p.r, p.stored))
ORDER BY u.ord
RETURNING tx, seq, ts, routing_key`
}

// lockCTE returns the WITH clause taking the ordering lock (and evaluating
// hook after it, if any) and the FROM list an insert joins it by.
func (q *queries) lockCTE(hook string) (with, from string) {
	with, from = "WITH l AS MATERIALIZED ("+q.lock+" AS locked)", "l"
	if hook != "" {
		with += ", h AS MATERIALIZED (SELECT " + hook + " FROM l)"
		from = "l, h"
	}
	return with, from
}

// insertOneSQL is insertSQL for a single event, with scalar arguments: the
// same lock, predecessor and routing-key check and RETURNING, without
// encoding, decoding and unnesting a dozen one-element arrays, which cost
// about a third of a single-event append's CPU (server and client). $9 is
// the expected version, 0 for a new aggregate; $6 is the routing key of a
// new aggregate's event, and for an existing aggregate the key the batch
// gave, or NULL to inherit the stored one.
func (q *queries) insertOneSQL(hook string) string {
	with, from := q.lockCTE(hook)
	return with + `
INSERT INTO ` + q.ev + ` (tx, id, aggregate_type, aggregate_id, version, name, routing_key, data, metadata)
SELECT ` + q.txValue + `, $1::bytea, $2::bytea, $3::bytea, $4::bigint, $5::bytea, CASE WHEN $9::bigint = 0 THEN $6::bytea ELSE p.stored END, $7::bytea, $8::bytea
FROM ` + from + `, (SELECT CASE WHEN $9::bigint <> 0 THEN (SELECT CASE WHEN e.aggregate_type = $2::bytea AND e.aggregate_id = $3::bytea AND e.version = $9::bigint
			AND e.tx < coalesce(pg_current_xact_id_if_assigned(), '18446744073709551615'::xid8) THEN e.routing_key END
		FROM ` + q.ev + ` e WHERE (e.aggregate_type, e.aggregate_id, e.version) >= ($2::bytea, $3::bytea, $9::bigint)
		ORDER BY e.aggregate_type, e.aggregate_id, e.version LIMIT 1) END AS stored) p
WHERE $9::bigint = 0 OR p.stored = coalesce($6::bytea, p.stored)
RETURNING tx, seq, ts, routing_key`
}

// buildQueries makes a store's SQL. sessionPlans says the pool's
// connections start with sessionPlanSettings (a pool Open made); otherwise
// each read sets them in its first statement.
func buildQueries(schema string, o Ordering, writersKey, appendKey int64, sessionPlans bool) queries {
	ev := schema + ".events"
	q := queries{}
	txValue := "pg_current_xact_id()"
	settings := ""
	if !sessionPlans {
		settings = planSettings
	}
	readSettings := customPlans
	if settings != "" {
		readSettings = settings + ", " + customPlans
	}
	if o == OrderingTxHorizon {
		// The writer registers (shared advisory lock) before it has a
		// transaction id, so that readers can find every writer that has one.
		q.lock = fmt.Sprintf("SELECT pg_advisory_xact_lock_shared(%d)", writersKey)
		q.horizon = "tx < current_setting('evento.horizon')::xid8"
		q.prelude = horizonSQL(writersKey, readSettings)
		q.point = horizonSQL(writersKey, settings)
	} else {
		q.lock = fmt.Sprintf("SELECT pg_advisory_xact_lock(%d)", appendKey)
		txValue = "'0'::xid8"
		q.prelude = "SELECT " + readSettings
		if settings != "" {
			q.point = "SELECT " + settings
		}
	}
	q.ev, q.txValue = ev, txValue
	q.insert = q.insertSQL("")
	q.insertOne = q.insertOneSQL("")
	// The current version of an aggregate is the last key at or below
	// (type, id, maxint) in the unique index. The row comparison and the
	// ORDER BY can only be served by that index, whatever the statistics
	// say (plain equality on type and id may plan onto the id-led indexes and
	// read the whole aggregate); the outer check drops a row of another
	// aggregate.
	// It gives the aggregate's routing key too (its last event's, which
	// every write keeps equal to its first's).
	q.versions = `SELECT coalesce(x.v, 0), coalesce(x.r, ''::bytea) FROM unnest($1::bytea[], $2::bytea[]) WITH ORDINALITY AS p(t, i, ord)
LEFT JOIN LATERAL (SELECT CASE WHEN y.t = p.t AND y.i = p.i THEN y.v END AS v, CASE WHEN y.t = p.t AND y.i = p.i THEN y.r END AS r FROM (
	SELECT e.aggregate_type AS t, e.aggregate_id AS i, e.version AS v, e.routing_key AS r FROM ` + ev + ` e
	WHERE (e.aggregate_type, e.aggregate_id, e.version) <= (p.t, p.i, 9223372036854775807::bigint)
	ORDER BY e.aggregate_type DESC, e.aggregate_id DESC, e.version DESC LIMIT 1) y) x ON true
ORDER BY p.ord`
	// Point reads (an aggregate's events, its version) see no event at or
	// above the horizon either: a cursor or version taken from one must not
	// be ahead of what Read and Head show, or a reader continuing from it
	// would skip events committed later below it. An aggregate's events are
	// in version order in the global order, so the ones hidden are the
	// last few, in flight: the scans below read past O(1) of them.
	andH := ""
	if q.horizon != "" {
		andH = " AND " + q.horizon
	}
	// ReadAggregate seeks to (type, id, after) in the unique index and reads
	// on: equalities on type and id and version > after are all index
	// conditions of that index, the first two required (the scan stops at
	// the aggregate's end), so a read after a snapshot is O(limit), not
	// O(version). ORDER BY version (type and id are constant) can only be
	// given by that index without a sort, which the plan settings disable,
	// so no other index is picked whatever the statistics or plan mode. (A
	// row comparison mixed with these equalities starts the scan at the
	// aggregate's first event: the scan key on each column is the equality.)
	q.readAgg = `SELECT ` + eventCols + ` FROM ` + ev + ` WHERE aggregate_type = $1::bytea AND aggregate_id = $2::bytea AND version > $3::bigint` +
		andH + ` ORDER BY version LIMIT $4`
	q.aggVersion = `SELECT coalesce((SELECT CASE WHEN x.t = $1 AND x.i = $2 THEN x.v END FROM (
	SELECT aggregate_type AS t, aggregate_id AS i, version AS v FROM ` + ev + `
	WHERE (aggregate_type, aggregate_id, version) <= ($1::bytea, $2::bytea, 9223372036854775807::bigint)` + andH + `
	ORDER BY aggregate_type DESC, aggregate_id DESC, version DESC LIMIT 1) x), 0)`
	q.aggIDs = `WITH RECURSIVE r(id, n) AS (
	(SELECT aggregate_id, 1 FROM ` + ev + ` WHERE aggregate_type = $1 AND aggregate_id > $2 ORDER BY aggregate_id LIMIT 1)
	UNION ALL
	SELECT (SELECT e.aggregate_id FROM ` + ev + ` e WHERE e.aggregate_type = $1 AND e.aggregate_id > r.id ORDER BY e.aggregate_id LIMIT 1), r.n + 1
	FROM r WHERE r.id IS NOT NULL AND r.n < $3)
SELECT id FROM r WHERE id IS NOT NULL`
	where := ""
	if q.horizon != "" {
		where = " WHERE " + q.horizon
	}
	q.head = `SELECT tx, seq FROM ` + ev + where + ` ORDER BY tx DESC, seq DESC LIMIT 1`
	q.cursorID = `SELECT id FROM ` + ev + ` WHERE tx = $1 AND seq = $2`
	q.subscriber = subscriberSelectSQL(schema)
	return q
}

// maxWriteAttempts bounds the internal retries of a write whose expected
// predecessor was committed by a transaction with a larger id than its own.
const maxWriteAttempts = 10

type batchArrays struct {
	types, aggIDs, names, routing, data, meta [][]byte
	versions                                  []int64
	predT, predI, predR                       [][]byte // predR: the key a span gave, or nil
	predV                                     []int64
}

// Write appends events atomically. See evento.EventStore.
func (s *Store) Write(ctx context.Context, events []evento.Event) error {
	if err := s.check(); err != nil {
		return err
	}
	spans, err := storekit.ValidateBatch(events)
	if err != nil {
		return err
	}
	n := len(events)
	a := batchArrays{
		types: make([][]byte, n), aggIDs: make([][]byte, n), names: make([][]byte, n), routing: make([][]byte, n),
		data: make([][]byte, n), meta: make([][]byte, n), versions: make([]int64, n),
	}
	for i := range events {
		e := &events[i]
		if e.Version > math.MaxInt64 {
			return &evento.InvalidEventError{Index: i, Reason: fmt.Sprintf("version %d is above PostgreSQL's bigint range", e.Version)}
		}
		m, err := storekit.EncodeMetadata(e.Metadata)
		if err != nil {
			return &evento.InvalidEventError{Index: i, Reason: "metadata: " + err.Error()}
		}
		a.types[i], a.aggIDs[i], a.names[i], a.routing[i] = []byte(e.AggregateType), []byte(e.AggregateID), []byte(e.Name), []byte(e.RoutingKey)
		a.data[i], a.meta[i], a.versions[i] = e.Data, m, int64(e.Version)
	}
	for _, sp := range spans {
		if sp.Expected > 0 {
			a.predT = append(a.predT, []byte(sp.Type))
			a.predI = append(a.predI, []byte(sp.ID))
			a.predV = append(a.predV, int64(sp.Expected))
			var given []byte // NULL: inherit the stored key
			if sp.RoutingGiven {
				given = []byte(sp.RoutingKey)
			}
			a.predR = append(a.predR, given)
		}
	}
	if a.predT == nil {
		a.predT, a.predI, a.predV, a.predR = [][]byte{}, [][]byte{}, []int64{}, [][]byte{}
	}
	for attempt := 1; ; attempt++ {
		retry, err := s.writeOnce(ctx, events, spans, &a)
		if err == nil {
			s.notifier.committed()
			return nil
		}
		if !retry || attempt >= maxWriteAttempts {
			return err
		}
	}
}

// writeOnce runs one write: a single INSERT statement alone in its
// transaction, implicit, or explicit READ COMMITTED (BEGIN, INSERT and
// COMMIT pipelined in one round trip) on a connection marked explicitRC.
// It reports whether a failure is worth retrying.
func (s *Store) writeOnce(ctx context.Context, events []evento.Event, spans []storekit.Span, a *batchArrays) (retry bool, err error) {
	// IDs increase with call order in this process; positions are assigned
	// by the database.
	ids := make([][]byte, len(events))
	now := time.Now()
	for i := range ids {
		id := s.ids.New(now)
		ids[i] = id[:]
	}
	one := len(events) == 1
	insert := s.q.insert
	if one {
		insert = s.q.insertOne
	}
	if h := s.cfg.beforeInsert; h != nil {
		if hook := h(ctx); hook != "" {
			insert = s.q.insertSQL(hook)
			if one {
				insert = s.q.insertOneSQL(hook)
			}
		}
	}
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return false, s.wrap("write", err)
	}
	defer conn.Release()
again:
	wrap := explicitRC(conn)
	b := &pgx.Batch{}
	if wrap {
		b.Queue(beginWrite)
	}
	if one {
		var r any = a.routing[0]
		if sp := &spans[0]; sp.Expected > 0 && !sp.RoutingGiven {
			r = nil // inherit the stored key
		}
		b.Queue(insert, ids[0], a.types[0], a.aggIDs[0], a.versions[0], a.names[0], r, a.data[0], a.meta[0], int64(spans[0].Expected))
	} else {
		b.Queue(insert, ids, a.types, a.aggIDs, a.versions, a.names, a.routing, a.data, a.meta, a.predT, a.predI, a.predV, a.predR)
	}
	if wrap {
		b.Queue("COMMIT")
	}
	br := conn.SendBatch(ctx, b)
	n := 0
	if wrap {
		_, err = br.Exec()
	}
	if err == nil {
		var rows pgx.Rows
		rows, err = br.Query()
		var (
			txid uint64
			seq  int64
			ts   time.Time
			rk   pgtype.DriverBytes
		)
		for err == nil && rows.Next() {
			if err = rows.Scan(&txid, &seq, &ts, &rk); err != nil {
				break
			}
			if n < len(events) {
				e := &events[n]
				copy(e.ID[:], ids[n])
				e.Position = evento.Position{Tx: txid, Seq: uint64(seq)}
				e.Timestamp = ts.UTC()
				if string(rk) != e.RoutingKey {
					e.RoutingKey = string(rk) // inherited from the aggregate
				}
			}
			n++
		}
		rows.Close()
		if err == nil {
			err = rows.Err()
		}
	}
	if cerr := br.Close(); err == nil {
		err = cerr // the COMMIT's
	}
	if err == nil && n == len(events) {
		return false, nil
	}
	if serializationFailure(conn, err) {
		if conn.Conn().PgConn().TxStatus() != 'I' {
			if _, err := conn.Exec(ctx, "ROLLBACK"); err != nil {
				return false, s.wrap("write: rollback", err)
			}
		}
		goto again
	}
	var pgErr *pgconn.PgError
	unique := errors.As(err, &pgErr) && pgErr.Code == "23505"
	if err != nil && !unique {
		return false, s.wrap("write", err)
	}
	if err == nil && n != 0 {
		return false, fmt.Errorf("postgres executor: write: inserted %d of %d events", n, len(events))
	}
	// A version conflict (unique violation), or no row inserted: an
	// expected version is missing, or was not yet visible, or was written
	// by a newer transaction, or a routing key differs from the stored
	// one. Nothing was written: end the failed transaction and read the
	// actual versions and keys.
	spanT, spanI := make([][]byte, len(spans)), make([][]byte, len(spans))
	for i, sp := range spans {
		spanT[i], spanI[i] = []byte(sp.Type), []byte(sp.ID)
	}
	if conn.Conn().PgConn().TxStatus() != 'I' {
		// A separate round trip: the batch below prepares its statements
		// first, which an aborted transaction refuses.
		if _, err := conn.Exec(ctx, "ROLLBACK"); err != nil {
			return false, s.wrap("write: rollback after conflict", err)
		}
	}
	vb := &pgx.Batch{}
	vb.Queue(beginRead)
	vb.Queue(s.q.versions, spanT, spanI)
	vb.Queue("COMMIT")
	vbr := conn.SendBatch(ctx, vb)
	var actual []int64
	var keys []string
	var verr error
	for range len(vb.QueuedQueries) - 2 {
		if _, verr = vbr.Exec(); verr != nil {
			break
		}
	}
	if verr == nil {
		var vrows pgx.Rows
		if vrows, verr = vbr.Query(); verr == nil {
			var v int64
			var k []byte
			_, verr = pgx.ForEachRow(vrows, []any{&v, &k}, func() error {
				actual, keys = append(actual, v), append(keys, string(k))
				return nil
			})
		}
	}
	if cerr := vbr.Close(); verr == nil {
		verr = cerr
	}
	if verr == nil && len(actual) != len(spans) {
		verr = fmt.Errorf("%d versions for %d aggregates", len(actual), len(spans))
	}
	if verr != nil {
		return false, s.wrap("write: read versions after conflict", verr)
	}
	for i := range spans {
		if sp := &spans[i]; uint64(actual[i]) != sp.Expected {
			return false, &evento.VersionConflictError{AggregateType: sp.Type, AggregateID: sp.ID, Expected: sp.Expected, Actual: uint64(actual[i])}
		}
	}
	for i := range spans {
		if _, rerr := spans[i].Routing(keys[i]); rerr != nil {
			return false, rerr
		}
	}
	// Every aggregate is at its expected version now, with the keys given:
	// a concurrent writer committed it after this statement's snapshot.
	// Retry.
	return true, &evento.VersionConflictError{AggregateType: spans[0].Type, AggregateID: spans[0].ID, Expected: spans[0].Expected, Actual: uint64(actual[0])}
}

// Read returns one page of the events matching q. See evento.EventStore.
func (s *Store) Read(ctx context.Context, q evento.Query) (evento.Page, error) {
	if err := s.check(); err != nil {
		return evento.Page{}, err
	}
	if err := q.Validate(s.cfg.maxPage); err != nil {
		return evento.Page{}, err
	}
	limit := q.Args.Limit(s.cfg.defaultPage)
	backward := q.Args.IsBackward()
	var pos *evento.Position
	var curID ulid.ULID
	if c := q.Args.After + q.Args.Before; c != "" {
		id, p, err := storekit.DecodeCursor(c)
		if err != nil {
			return evento.Page{}, fmt.Errorf("postgres executor: read: %w", err)
		}
		pos, curID = &p, id
	}
	horizon := s.q.horizon
	filters := q.Filters
	if len(filters) == 0 {
		filters = []evento.Filter{{}}
	}
	dir, cmp, otherCmp := "ASC", ">", "<="
	if backward {
		dir, cmp, otherCmp = "DESC", "<", ">="
	}
	ev := s.q.ev
	order := " ORDER BY tx " + dir + ", seq " + dir
	lim := " LIMIT " + strconv.Itoa(limit+1)
	// build returns one WHERE clause per filter, with the position condition
	// op (if any), and the arguments they use.
	build := func(op string) ([]string, []any) {
		var args []any
		arg := func(v any) string { args = append(args, v); return "$" + strconv.Itoa(len(args)) }
		var common []string
		keyArg := ""
		if k, ok := q.Routing.Value(); ok {
			keyArg = arg([]byte(k))
			common = append(common, "routing_key = "+keyArg)
		}
		if horizon != "" {
			common = append(common, horizon)
		}
		switch {
		case op != "" && s.ordering == OrderingAdvisoryLock:
			// tx is always 0: an equality on it lets every index range
			// over seq.
			common = append(common, "tx = "+arg(pos.Tx)+"::xid8 AND seq "+op+" "+arg(int64(pos.Seq))+"::bigint")
		case op != "":
			common = append(common, "(tx, seq) "+op+" ("+arg(pos.Tx)+"::xid8, "+arg(int64(pos.Seq))+"::bigint)")
		}
		out := make([]string, len(filters))
		for i, f := range filters {
			var c []string
			typeArg := ""
			if f.AggregateType != "" {
				typeArg = arg([]byte(f.AggregateType))
				c = append(c, "aggregate_type = "+typeArg)
			}
			if f.AggregateID != "" {
				idArg := arg([]byte(f.AggregateID))
				c = append(c, "aggregate_id = "+idArg)
				if keyArg != "" && typeArg != "" {
					// An aggregate's events all carry its first event's
					// routing key: when that is not the key asked for, a
					// one-time filter (the subquery is an InitPlan) skips
					// the scan, which would otherwise read the whole
					// aggregate to return nothing; when it is, every event
					// of the aggregate matches, and events_aggregate
					// serves the page in order. No index on (aggregate,
					// routing_key) is needed.
					c = append(c, "(SELECT f.routing_key FROM "+ev+" f WHERE f.aggregate_type = "+typeArg+" AND f.aggregate_id = "+idArg+
						" ORDER BY f.version LIMIT 1) = "+keyArg)
				}
			}
			if f.Name != "" {
				c = append(c, "name = "+arg([]byte(f.Name)))
			}
			c = append(c, common...)
			if len(c) > 0 {
				out[i] = " WHERE " + strings.Join(c, " AND ")
			}
		}
		return out, args
	}
	posOp := ""
	if pos != nil {
		posOp = cmp
	}
	wheres, pageArgs := build(posOp)
	var pageSQL string
	if len(wheres) == 1 {
		pageSQL = "SELECT " + eventCols + " FROM " + ev + wheres[0] + order + lim
	} else {
		parts := make([]string, len(wheres))
		for i, w := range wheres {
			parts[i] = "(SELECT " + eventCols + " FROM " + ev + w + order + lim + ")"
		}
		// UNION drops an event matched by several filters; each branch
		// reads at most a page from its own index.
		pageSQL = strings.Join(parts, " UNION ") + order + lim
	}
	if s.cfg.explain != nil {
		s.cfg.explain(pageSQL, pageArgs)
	}
	var otherSQL string
	var otherArgs []any
	if pos != nil {
		ws, oargs := build(otherCmp)
		parts := make([]string, len(ws))
		for i, w := range ws {
			parts[i] = "EXISTS (SELECT 1 FROM " + ev + w + ")"
		}
		otherSQL, otherArgs = "SELECT "+strings.Join(parts, " OR "), oargs
	}
	hasOther := false
	var evs []evento.Event
	err := s.read(ctx, func(b *pgx.Batch) {
		b.Queue(s.q.prelude)
		if pos != nil {
			b.Queue(s.q.cursorID, pos.Tx, int64(pos.Seq))
			b.Queue(otherSQL, otherArgs...)
		}
		b.Queue(pageSQL, pageArgs...)
	}, func(br pgx.BatchResults) error {
		if err := s.scanPrelude(br, s.q.prelude); err != nil {
			return err
		}
		if pos != nil {
			var id []byte
			err := br.QueryRow().Scan(&id)
			if errors.Is(err, pgx.ErrNoRows) || (err == nil && string(id) != string(curID[:])) {
				return fmt.Errorf("cursor does not name an event of this store: %w", evento.ErrInvalidCursor)
			}
			if err != nil {
				return err
			}
			if err := br.QueryRow().Scan(&hasOther); err != nil {
				return err
			}
		}
		rows, err := br.Query()
		if err != nil {
			return err
		}
		evs, err = scanEvents(rows, limit+1)
		return err
	})
	if errors.Is(err, evento.ErrInvalidCursor) {
		return evento.Page{}, fmt.Errorf("postgres executor: read: %w", err)
	}
	if err != nil {
		return evento.Page{}, s.wrap("read", err)
	}
	return storekit.NewPage(evs, limit, backward, hasOther), nil
}

// scanEvents reads event rows in eventCols order. Identifiers are scanned
// without a copy (pgtype.DriverBytes, valid until the next row) and copied
// once into strings; Data is scanned into a fresh slice the caller owns.
func scanEvents(rows pgx.Rows, capHint int) ([]evento.Event, error) {
	defer rows.Close()
	out := make([]evento.Event, 0, capHint)
	var (
		tx            uint64
		seq, version  int64
		id, t, i, n   pgtype.DriverBytes
		r, m          pgtype.DriverBytes
		d             []byte
		ts            time.Time
		lastT, lastID string
		lastName      string
	)
	for rows.Next() {
		d = nil
		if err := rows.Scan(&tx, &seq, &id, &t, &i, &version, &n, &r, &d, &m, &ts); err != nil {
			return nil, err
		}
		// Consecutive rows often share a type or aggregate: reuse the
		// string.
		if string(t) != lastT {
			lastT = string(t)
		}
		if string(i) != lastID {
			lastID = string(i)
		}
		if string(n) != lastName {
			lastName = string(n)
		}
		e := evento.Event{
			AggregateType: lastT, AggregateID: lastID, Version: uint64(version), Name: lastName, RoutingKey: string(r),
			Timestamp: ts.UTC(), Position: evento.Position{Tx: tx, Seq: uint64(seq)},
		}
		if len(d) > 0 {
			e.Data = d
		}
		copy(e.ID[:], id)
		if len(m) > 0 {
			md, err := storekit.DecodeMetadata(m)
			if err != nil {
				return nil, fmt.Errorf("event %s: %w", e.ID, err)
			}
			e.Metadata = md
		}
		out = append(out, e)
	}
	return out, rows.Err()
}

// ReadAggregate returns an aggregate's events with versions in
// (after, after+limit]. See evento.EventStore.
func (s *Store) ReadAggregate(ctx context.Context, aggregateType, id string, after uint64, limit int) ([]evento.Event, error) {
	if err := s.check(); err != nil {
		return nil, err
	}
	var lim any
	if limit > 0 {
		lim = int64(limit)
	}
	if after > math.MaxInt64 {
		return []evento.Event{}, nil
	}
	hint := limit
	if hint <= 0 || hint > 1024 {
		hint = 16
	}
	var evs []evento.Event
	err := s.read(ctx, func(b *pgx.Batch) {
		if s.q.point != "" {
			b.Queue(s.q.point)
		}
		b.Queue(s.q.readAgg, []byte(aggregateType), []byte(id), int64(after), lim)
	}, func(br pgx.BatchResults) error {
		if err := s.scanPrelude(br, s.q.point); err != nil {
			return err
		}
		rows, err := br.Query()
		if err != nil {
			return err
		}
		evs, err = scanEvents(rows, hint)
		return err
	})
	if err != nil {
		return nil, s.wrap("read aggregate", err)
	}
	return evs, nil
}

// AggregateVersion returns an aggregate's current version. See
// evento.EventStore.
func (s *Store) AggregateVersion(ctx context.Context, aggregateType, id string) (uint64, error) {
	if err := s.check(); err != nil {
		return 0, err
	}
	var v int64
	err := s.read(ctx, func(b *pgx.Batch) {
		if s.q.point != "" {
			b.Queue(s.q.point)
		}
		b.Queue(s.q.aggVersion, []byte(aggregateType), []byte(id))
	}, func(br pgx.BatchResults) error {
		if err := s.scanPrelude(br, s.q.point); err != nil {
			return err
		}
		return br.QueryRow().Scan(&v)
	})
	if err != nil {
		return 0, s.wrap("aggregate version", err)
	}
	return uint64(v), nil
}

// AggregateIDs returns up to limit ids of one type after the id after, in
// byte order, with a loose index scan. limit <= 0 means
// cursor.MaxPageSize.
func (s *Store) AggregateIDs(ctx context.Context, aggregateType, after string, limit int) ([]string, error) {
	if err := s.check(); err != nil {
		return nil, err
	}
	if limit <= 0 {
		limit = cursor.MaxPageSize
	}
	var ids []string
	err := s.read(ctx, func(b *pgx.Batch) { b.Queue(s.q.aggIDs, []byte(aggregateType), []byte(after), int64(limit)) },
		func(br pgx.BatchResults) error {
			rows, err := br.Query()
			if err == nil {
				ids, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (string, error) {
					var b []byte
					err := r.Scan(&b)
					return string(b), err
				})
			}
			return err
		})
	if err != nil {
		return nil, s.wrap("aggregate ids", err)
	}
	return ids, nil
}

// Head returns the position of the last event readers can see. See
// evento.EventStore.
func (s *Store) Head(ctx context.Context) (evento.Position, error) {
	if err := s.check(); err != nil {
		return evento.Position{}, err
	}
	var tx uint64
	var seq int64
	err := s.read(ctx, func(b *pgx.Batch) {
		if s.q.point != "" {
			b.Queue(s.q.point)
		}
		b.Queue(s.q.head)
	}, func(br pgx.BatchResults) error {
		if err := s.scanPrelude(br, s.q.point); err != nil {
			return err
		}
		return br.QueryRow().Scan(&tx, &seq)
	})
	if errors.Is(err, pgx.ErrNoRows) {
		return evento.Position{}, nil
	}
	if err != nil {
		return evento.Position{}, s.wrap("head", err)
	}
	return evento.Position{Tx: tx, Seq: uint64(seq)}, nil
}
