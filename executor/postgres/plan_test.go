package postgres_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/evento-go/evento"
	"github.com/evento-go/evento/executor/postgres"
	"github.com/evento-go/evento/executor/postgres/postgrestest"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// bulkLoad inserts n events of ten types, prefix0…prefix9, interleaved
// (so the type column has no physical correlation), aggregates b0…b999 of
// each, routing key "rb", name "E", straight into the schema's events table in one statement, as
// one transaction: the tx column takes the same value a write of the store
// gives (pg_current_xact_id(), or 0 with the lock ordering).
func bulkLoad(t testing.TB, s *postgres.Store, o postgres.Ordering, prefix string, n int) {
	t.Helper()
	tx := "pg_current_xact_id()"
	if o == postgres.OrderingAdvisoryLock {
		tx = "'0'::xid8"
	}
	sql := `INSERT INTO ` + pgx.Identifier{s.Schema(), "events"}.Sanitize() + ` (tx, id, aggregate_type, aggregate_id, version, name, routing_key, data)
SELECT ` + tx + `, uuid_send(gen_random_uuid()), convert_to($1 || (g % 10), 'UTF8'), convert_to('b' || (g / 10 % 1000), 'UTF8'), g / 10000 + 1, '\x45', '\x7262', '\x010203'
FROM generate_series(0, $2::bigint - 1) g`
	if _, err := s.Pool().Exec(context.Background(), sql, prefix, int64(n)); err != nil {
		t.Fatalf("bulk load: %v", err)
	}
}

// planStats is what a plan read: shared buffers (hit or read), rows read
// by scan nodes, and whether it has a sequential scan.
type planStats struct {
	buffers, rows int
	seq           bool
}

type bufNode struct {
	node
	SharedHit  int `json:"Shared Hit Blocks"`
	SharedRead int `json:"Shared Read Blocks"`
}

func explainStats(t testing.TB, plan string) planStats {
	t.Helper()
	var root []struct {
		Plan json.RawMessage
	}
	if err := json.Unmarshal([]byte(plan), &root); err != nil || len(root) != 1 {
		t.Fatalf("plan JSON: %v", err)
	}
	var n bufNode
	if err := json.Unmarshal(root[0].Plan, &n); err != nil {
		t.Fatalf("plan JSON: %v", err)
	}
	rows, seq := n.rowsRead()
	return planStats{buffers: n.SharedHit + n.SharedRead, rows: rows, seq: seq}
}

// preparedPlan explains, with ANALYZE and BUFFERS, the statement sql as the
// connection conn has it prepared in pgx's statement cache, executing it
// with args after the store's prelude, as a read does: the plan cache gives
// EXECUTE the plan the next execution of the store's read would get. With
// generic, the generic plan is forced. It fails the test if sql is not
// prepared on conn, or was executed fewer than minExec times.
func preparedPlan(t testing.TB, s *postgres.Store, conn *pgxpool.Conn, sql string, args []any, minExec int, generic bool) (plan string, generics, customs int64) {
	t.Helper()
	ctx := context.Background()
	var name string
	err := conn.QueryRow(ctx, "SELECT name, generic_plans, custom_plans FROM pg_prepared_statements WHERE statement = $1", sql).Scan(&name, &generics, &customs)
	if err != nil {
		t.Fatalf("statement not prepared on the store's connection: %v\n%s", err, sql)
	}
	if generics+customs < int64(minExec) {
		t.Fatalf("statement executed %d times (%d generic, %d custom plans), want at least %d", generics+customs, generics, customs, minExec)
	}
	tx, err := conn.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, postgres.PreludeSQL(s)); err != nil {
		t.Fatal(err)
	}
	if generic {
		if _, err := tx.Exec(ctx, "SET LOCAL plan_cache_mode = force_generic_plan"); err != nil {
			t.Fatal(err)
		}
	}
	// EXECUTE takes its arguments as SQL: the simple protocol writes them
	// as literals.
	ph := make([]string, len(args))
	for i := range args {
		ph[i] = fmt.Sprintf("$%d", i+1)
	}
	q := "EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) EXECUTE " + name
	if len(args) > 0 {
		q += "(" + strings.Join(ph, ", ") + ")"
	}
	if err := tx.QueryRow(ctx, q, append([]any{pgx.QueryExecModeSimpleProtocol}, args...)...).Scan(&plan); err != nil {
		t.Fatalf("EXPLAIN EXECUTE: %v\n%s", err, sql)
	}
	if os.Getenv("EVENTO_PRINT_PLANS") != "" {
		t.Logf("generic=%v generic_plans=%d custom_plans=%d\n%s\n%s", generic, generics, customs, sql, plan)
	}
	return plan, generics, customs
}

// TestPlansStayOPage checks that every read shape reads O(page) index
// entries and buffers on the 1st and on the 10th+ execution of its
// prepared statement, when PostgreSQL may have switched to a generic plan:
// on a store where the events read are 1% of 200k, ANALYZEd, through the
// store's own code path on one connection, then by EXPLAIN (ANALYZE,
// BUFFERS) EXECUTE of the very statement pgx prepared, as the store runs it
// and with the generic plan forced. No timing is asserted.
func TestPlansStayOPage(t *testing.T) {
	if testing.Short() {
		t.Skip("loads 200k events")
	}
	for _, o := range []postgres.Ordering{postgres.OrderingTxHorizon, postgres.OrderingAdvisoryLock} {
		t.Run(string(o), func(t *testing.T) { testPlansStayOPage(t, o) })
	}
}

func testPlansStayOPage(t *testing.T, o postgres.Ordering) {
	ctx := context.Background()
	var captured struct {
		sql  string
		args []any
	}
	dsn := postgrestest.DSN(t) + "&pool_max_conns=1"
	s, err := postgres.Open(ctx, dsn, postgres.WithOrdering(o), postgres.WithExplain(func(sql string, args []any) {
		captured.sql, captured.args = sql, args
	}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	const unrelated = 200_000
	bulkLoad(t, s, o, "other", unrelated)
	// 2,000 events of type X (1%), after the unrelated ones, by the store:
	// ids x0…x9, names N1 and N2, routing keys "" and r1 by aggregate.
	xv := map[string]uint64{}
	var middle string
	for b := range 20 {
		batch := make([]evento.Event, 100)
		for i := range batch {
			id := fmt.Sprintf("x%d", i%10)
			xv[id]++
			e := ev("X", id, xv[id])
			e.Name = []string{"N1", "N2"}[(i/10)%2]
			e.RoutingKey = []string{"", "r1"}[i%2]
			batch[i] = e
		}
		if err := s.Write(ctx, batch); err != nil {
			t.Fatal(err)
		}
		if b == 10 {
			middle = batch[50].Cursor()
		}
	}
	if _, err := s.Pool().Exec(ctx, "ANALYZE "+pgx.Identifier{s.Schema(), "events"}.Sanitize()); err != nil {
		t.Fatal(err)
	}
	const limit = 50
	const execs = 12
	// Buffers a page may touch: a few index pages per filter (descent and
	// leaves) and one heap page per event at worst.
	shapes := map[string]evento.Query{
		"all":             evento.All(),
		"type":            evento.ByType("X"),
		"aggregate":       evento.ByAggregate("X", "x3"),
		"name":            evento.ByName("X", "N2"),
		"or":              evento.ByName("X", "N1").Or(evento.Filter{AggregateType: "X", AggregateID: "x4"}),
		"all-nokey":       evento.All().WithRouting(evento.NoRoutingKey()),
		"all-key":         evento.All().WithRouting(evento.RoutingKey("r1")),
		"type-key":        evento.ByType("X").WithRouting(evento.RoutingKey("r1")),
		"type-nokey":      evento.ByType("X").WithRouting(evento.NoRoutingKey()),
		"aggregate-key":   evento.ByAggregate("X", "x3").WithRouting(evento.RoutingKey("r1")),
		"aggregate-nokey": evento.ByAggregate("X", "x4").WithRouting(evento.NoRoutingKey()),
		"name-key":        evento.ByName("X", "N1").WithRouting(evento.RoutingKey("r1")),
		"or-key":          evento.ByName("X", "N1").Or(evento.Filter{AggregateType: "X", AggregateID: "x4"}).WithRouting(evento.RoutingKey("r1")),
		"or-nokey":        evento.ByName("X", "N1").Or(evento.Filter{AggregateType: "X", AggregateID: "x4"}).WithRouting(evento.NoRoutingKey()),
	}
	for name, q := range shapes {
		for _, page := range []struct {
			what string
			q    evento.Query
		}{
			{"first", q.First(limit, "")},
			{"after", q.First(limit, middle)},
			{"last", q.Last(limit, "")},
		} {
			t.Run(name+"/"+page.what, func(t *testing.T) {
				var sql string
				var args []any
				for i := range execs {
					captured.sql = ""
					p, err := s.Read(ctx, page.q)
					if err != nil {
						t.Fatal(err)
					}
					if len(p.Events) == 0 {
						t.Fatalf("execution %d: empty page", i+1)
					}
					if i > 0 && captured.sql != sql {
						t.Fatalf("execution %d ran another statement", i+1)
					}
					sql, args = captured.sql, captured.args
				}
				conn, err := s.Pool().Acquire(ctx)
				if err != nil {
					t.Fatal(err)
				}
				defer conn.Release()
				filters := max(1, len(page.q.Filters))
				plan, generics, customs := preparedPlan(t, s, conn, sql, args, execs, false)
				// Every execution was planned with its arguments (a
				// statement without parameters has one plan).
				if len(args) > 0 && (generics != 0 || customs < execs) {
					t.Errorf("%d generic and %d custom plans for %d executions, want custom plans only", generics, customs, execs)
				}
				st := explainStats(t, plan)
				if st.seq || st.rows > 3*(limit+1)*filters+20 || st.buffers > 100*filters {
					t.Errorf("reads %d rows, %d buffers (seq scan: %v); want at most %d rows, %d buffers\n%s\n%s",
						st.rows, st.buffers, st.seq, 3*(limit+1)*filters+20, 100*filters, sql, plan)
				}
			})
		}
	}

	// ReadAggregate after a version of a 10,000-event aggregate (next to
	// others of its type), with and without a limit: a seek to the version
	// and O(limit) entries, as the store plans it and as a generic plan.
	const long = 10_000
	aggSQL := `INSERT INTO ` + pgx.Identifier{s.Schema(), "events"}.Sanitize() + ` (tx, id, aggregate_type, aggregate_id, version, name, data)
SELECT ` + map[postgres.Ordering]string{postgres.OrderingTxHorizon: "pg_current_xact_id()", postgres.OrderingAdvisoryLock: "'0'::xid8"}[o] + `, uuid_send(gen_random_uuid()), '\x41', a, v, '\x45', '\x010203'
FROM unnest('{"\\x6c6f6e67","\\x6c6f6e68"}'::bytea[], '{` + fmt.Sprint(long) + `,20}'::bigint[]) AS x(a, n), generate_series(1, n) v`
	if _, err := s.Pool().Exec(ctx, aggSQL); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Pool().Exec(ctx, "ANALYZE "+pgx.Identifier{s.Schema(), "events"}.Sanitize()); err != nil {
		t.Fatal(err)
	}
	// A read of the long aggregate with a routing key: the key it has (no
	// key) reads a page; another key reads nothing, not the 10,000 events
	// (no index has the aggregate and the key: the first event's key is
	// checked once, before the scan).
	for _, c := range []struct {
		name string
		q    evento.Query
		want int
	}{
		{"long-aggregate-key-mismatch", evento.ByAggregate("A", "long").WithRouting(evento.RoutingKey("r1")).First(limit, ""), 0},
		{"long-aggregate-key-mismatch-last", evento.ByAggregate("A", "long").WithRouting(evento.RoutingKey("r1")).Last(limit, ""), 0},
		{"long-aggregate-key-match", evento.ByAggregate("A", "long").WithRouting(evento.NoRoutingKey()).First(limit, ""), limit},
		{"long-aggregate-key-match-last", evento.ByAggregate("A", "long").WithRouting(evento.NoRoutingKey()).Last(limit, ""), limit},
	} {
		t.Run(c.name, func(t *testing.T) {
			var sql string
			var args []any
			for i := range execs {
				captured.sql = ""
				p, err := s.Read(ctx, c.q)
				if err != nil {
					t.Fatal(err)
				}
				if len(p.Events) != c.want {
					t.Fatalf("execution %d: %d events, want %d", i+1, len(p.Events), c.want)
				}
				sql, args = captured.sql, captured.args
			}
			conn, err := s.Pool().Acquire(ctx)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Release()
			for _, generic := range []bool{false, true} {
				plan, _, _ := preparedPlan(t, s, conn, sql, args, execs, generic)
				st := explainStats(t, plan)
				if st.seq || st.rows > 3*(limit+1)+20 || st.buffers > 100 {
					t.Errorf("generic plan forced: %v: reads %d rows, %d buffers (seq scan: %v); want at most %d rows, 100 buffers\n%s\n%s",
						generic, st.rows, st.buffers, st.seq, 3*(limit+1)+20, sql, plan)
				}
			}
		})
	}
	for _, c := range []struct {
		name  string
		limit int
		want  int
	}{{"limit", 10, 10}, {"rest", 0, 10}} {
		t.Run("read-aggregate/"+c.name, func(t *testing.T) {
			for i := range execs {
				evs, err := s.ReadAggregate(ctx, "A", "long", long-10, c.limit)
				if err != nil {
					t.Fatal(err)
				}
				if len(evs) != c.want || evs[0].Version != long-9 {
					t.Fatalf("execution %d: %d events from version %d, want %d from %d", i+1, len(evs), evs[0].Version, c.want, long-9)
				}
			}
			var lim any
			if c.limit > 0 {
				lim = int64(c.limit)
			}
			conn, err := s.Pool().Acquire(ctx)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Release()
			for _, generic := range []bool{false, true} {
				plan, _, _ := preparedPlan(t, s, conn, postgres.ReadAggSQL(s), []any{[]byte("A"), []byte("long"), int64(long - 10), lim}, execs, generic)
				st := explainStats(t, plan)
				if st.seq || st.rows > 12 || st.buffers > 12 {
					t.Errorf("generic plan forced: %v: reads %d rows, %d buffers (seq scan: %v), want at most 12 of each\n%s", generic, st.rows, st.buffers, st.seq, plan)
				}
			}
		})
	}
}
