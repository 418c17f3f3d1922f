package postgres_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/evento-go/evento"
	"github.com/evento-go/evento/executor/postgres"
	"github.com/jackc/pgx/v5"
)

// TestQueryShapesReadOPage checks with EXPLAIN ANALYZE that every query
// shape reads O(page) rows from indexes, with unrelated events outnumbering
// the matching ones, in both directions and from a cursor.
func TestQueryShapesReadOPage(t *testing.T) {
	for _, o := range []postgres.Ordering{postgres.OrderingTxHorizon, postgres.OrderingAdvisoryLock} {
		t.Run(string(o), func(t *testing.T) { testQueryShapes(t, o) })
	}
}

func testQueryShapes(t *testing.T, o postgres.Ordering) {
	var captured struct {
		sql  string
		args []any
	}
	s, _ := open(t, postgres.WithOrdering(o), postgres.WithExplain(func(sql string, args []any) {
		captured.sql, captured.args = sql, args
	}))
	ctx := context.Background()
	// 6000 unrelated events, 300 of type A spread among them.
	big, av := map[string]uint64{}, map[string]uint64{}
	var middle string
	for b := range 60 {
		batch := make([]evento.Event, 0, 105)
		for i := range 100 {
			id := fmt.Sprintf("b%d", i%50)
			big[id]++
			e := ev("big", id, big[id])
			e.RoutingKey = "rb"
			batch = append(batch, e)
		}
		for i := range 5 {
			id := fmt.Sprintf("a%d", (b*5+i)%10)
			av[id]++
			e := ev("A", id, av[id])
			e.Name = []string{"N1", "N2"}[i%2]
			e.RoutingKey = []string{"", "r1"}[(b+i)%2]
			batch = append(batch, e)
		}
		if err := s.Write(ctx, batch); err != nil {
			t.Fatal(err)
		}
		if b == 30 {
			middle = batch[len(batch)-1].Cursor()
		}
	}
	conn, err := s.Pool().Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Release()

	queries := map[string]evento.Query{
		"all":            evento.All(),
		"type":           evento.ByType("A"),
		"aggregate":      evento.ByAggregate("A", "a3"),
		"name":           evento.ByName("A", "N2"),
		"or":             evento.ByName("A", "N1").Or(evento.Filter{AggregateType: "A", AggregateID: "a4"}),
		"or-type-agg":    evento.ByType("A").Or(evento.Filter{AggregateType: "big", AggregateID: "b7"}),
		"all-nokey":      evento.All().WithRouting(evento.NoRoutingKey()),
		"all-key":        evento.All().WithRouting(evento.RoutingKey("r1")),
		"type-key":       evento.ByType("A").WithRouting(evento.RoutingKey("r1")),
		"type-nokey":     evento.ByType("A").WithRouting(evento.NoRoutingKey()),
		"name-key":       evento.ByName("A", "N1").WithRouting(evento.RoutingKey("r1")),
		"aggregate-key":  evento.ByAggregate("A", "a3").WithRouting(evento.RoutingKey("r1")),
		"or-key":         evento.ByName("A", "N1").Or(evento.Filter{AggregateType: "A", AggregateID: "a4"}).WithRouting(evento.RoutingKey("r1")),
		"type-no-match":  evento.ByType("nothing"),
		"name-none-left": evento.ByName("A", "N3"),
	}
	const limit = 10
	// First with the statistics autovacuum may not have gathered yet (as
	// for a table that grows), then with fresh ones.
	for _, stats := range []string{"stale-stats", "analyzed"} {
		if stats == "analyzed" {
			if _, err := s.Pool().Exec(ctx, "ANALYZE "+pgx.Identifier{s.Schema(), "events"}.Sanitize()); err != nil {
				t.Fatal(err)
			}
		}
		for name, q := range queries {
			for _, args := range []struct {
				what string
				q    evento.Query
			}{
				{"first", q.First(limit, "")},
				{"after", q.First(limit, middle)},
				{"last", q.Last(limit, "")},
				{"before", q.Last(limit, middle)},
			} {
				t.Run(stats+"/"+name+"/"+args.what, func(t *testing.T) {
					captured.sql = ""
					if _, err := s.Read(ctx, args.q); err != nil {
						t.Fatal(err)
					}
					if captured.sql == "" {
						t.Fatal("no page query captured")
					}
					// The read's pipeline runs its prelude first, in the same
					// transaction.
					tx, err := conn.Begin(ctx)
					if err != nil {
						t.Fatal(err)
					}
					defer tx.Rollback(ctx)
					if _, err := tx.Exec(ctx, postgres.PreludeSQL(s)); err != nil {
						t.Fatal(err)
					}
					var plan string
					if err := tx.QueryRow(ctx, "EXPLAIN (ANALYZE, FORMAT JSON) "+captured.sql, captured.args...).Scan(&plan); err != nil {
						t.Fatalf("EXPLAIN: %v\n%s", err, captured.sql)
					}
					var root []struct{ Plan node }
					if err := json.Unmarshal([]byte(plan), &root); err != nil || len(root) != 1 {
						t.Fatalf("plan JSON: %v", err)
					}
					read, seq := root[0].Plan.rowsRead()
					filters := max(1, len(args.q.Filters))
					bound := 3*(limit+1)*filters + 20
					if seq || read > bound {
						t.Errorf("query reads %d rows (seq scan: %v), want at most %d\n%s\n%s", read, seq, bound, captured.sql, plan)
					}
				})
			}
		}
	}
}

type node struct {
	NodeType       string  `json:"Node Type"`
	ActualRows     float64 `json:"Actual Rows"`
	ActualLoops    float64 `json:"Actual Loops"`
	RemovedFilter  float64 `json:"Rows Removed by Filter"`
	RemovedRecheck float64 `json:"Rows Removed by Index Recheck"`
	Plans          []node  `json:"Plans"`
}

// rowsRead sums the rows scan nodes read (returned or filtered out) and
// reports whether any node is a sequential scan. Function scans are not
// counted: they read no table (the horizon's pg_locks and backend status,
// whose size is the server's, not the log's).
func (n node) rowsRead() (int, bool) {
	total, seq := 0.0, n.NodeType == "Seq Scan"
	if strings.Contains(n.NodeType, "Scan") && n.NodeType != "Subquery Scan" && n.NodeType != "CTE Scan" && n.NodeType != "Function Scan" {
		total += (n.ActualRows + n.RemovedFilter + n.RemovedRecheck) * max(n.ActualLoops, 1)
	}
	for _, c := range n.Plans {
		r, s := c.rowsRead()
		total += float64(r)
		seq = seq || s
	}
	return int(total), seq
}

// TestWriteReadsOLogN checks with EXPLAIN ANALYZE that an append's
// predecessor check reads O(1) index entries, not the whole aggregate, with
// stale and fresh statistics, as a custom and as a generic plan (pgx's
// prepared statement switches to the generic plan after five executions).
func TestWriteReadsOLogN(t *testing.T) {
	for _, o := range []postgres.Ordering{postgres.OrderingTxHorizon, postgres.OrderingAdvisoryLock} {
		t.Run(string(o), func(t *testing.T) {
			s, _ := open(t, postgres.WithOrdering(o))
			ctx := context.Background()
			const n = 2000
			for k := 0; k < n; k += 100 {
				batch := make([]evento.Event, 100)
				for j := range batch {
					batch[j] = ev("A", "big", uint64(k+j+1))
				}
				if err := s.Write(ctx, batch); err != nil {
					t.Fatal(err)
				}
			}
			// The next event of the big aggregate, with its predecessor n, as
			// the batch statement (arrays) and the single-event one.
			oneArgs := []any{make([]byte, 16), []byte("A"), []byte("big"), int64(n + 1), []byte("E"), []byte{}, []byte("d"), nil, int64(n)}
			oneLits := `'\x00000000000000000000000000000000', '\x41', '\x626967', ` + fmt.Sprint(n+1) + `, '\x45', '\x', '\x64', NULL, ` + fmt.Sprint(n)
			batchArgs := []any{[][]byte{make([]byte, 16)}, [][]byte{[]byte("A")}, [][]byte{[]byte("big")}, []int64{n + 1},
				[][]byte{[]byte("E")}, [][]byte{{}}, [][]byte{[]byte("d")}, [][]byte{nil},
				[][]byte{[]byte("A")}, [][]byte{[]byte("big")}, []int64{n}, [][]byte{nil}}
			batchLits := `'{"\\x00000000000000000000000000000000"}', '{"\\x41"}', '{"\\x626967"}', '{` + fmt.Sprint(n+1) + `}',
	'{"\\x45"}', '{"\\x"}', '{"\\x64"}', '{NULL}', '{"\\x41"}', '{"\\x626967"}', '{` + fmt.Sprint(n) + `}', '{NULL}'`
			stmts := []struct {
				name, sql, lits string
				args            []any
			}{
				{"batch", postgres.InsertSQL(s), batchLits, batchArgs},
				{"one", postgres.InsertOneSQL(s), oneLits, oneArgs},
			}
			for _, stats := range []string{"stale-stats", "analyzed"} {
				if stats == "analyzed" {
					if _, err := s.Pool().Exec(ctx, "ANALYZE "+pgx.Identifier{s.Schema(), "events"}.Sanitize()); err != nil {
						t.Fatal(err)
					}
				}
				for _, st := range stmts {
					for _, mode := range []string{"custom", "generic"} {
						t.Run(stats+"/"+st.name+"/"+mode, func(t *testing.T) {
							tx, err := s.Pool().Begin(ctx)
							if err != nil {
								t.Fatal(err)
							}
							defer tx.Rollback(ctx) // EXPLAIN ANALYZE inserts
							var plan string
							if mode == "custom" {
								err = tx.QueryRow(ctx, "EXPLAIN (ANALYZE, FORMAT JSON) "+st.sql, st.args...).Scan(&plan)
							} else {
								if _, err = tx.Exec(ctx, "SET LOCAL plan_cache_mode = force_generic_plan"); err == nil {
									_, err = tx.Exec(ctx, "PREPARE evento_insert_plan AS "+st.sql)
								}
								if err == nil {
									// EXECUTE takes no protocol parameters: the
									// same arguments as literals.
									err = tx.QueryRow(ctx, "EXPLAIN (ANALYZE, FORMAT JSON) EXECUTE evento_insert_plan("+st.lits+")").Scan(&plan)
									if _, derr := tx.Exec(ctx, "DEALLOCATE evento_insert_plan"); err == nil {
										err = derr
									}
								}
							}
							if err != nil {
								t.Fatalf("EXPLAIN: %v", err)
							}
							var root []struct{ Plan node }
							if err := json.Unmarshal([]byte(plan), &root); err != nil || len(root) != 1 {
								t.Fatalf("plan JSON: %v", err)
							}
							if root[0].Plan.ActualRows != 1 {
								t.Fatalf("inserted %v rows, want 1\n%s", root[0].Plan.ActualRows, plan)
							}
							if read, seq := root[0].Plan.rowsRead(); seq || read > 10 {
								t.Errorf("write reads %d rows (seq scan: %v), want at most 10 of the %d-event aggregate\n%s", read, seq, n, plan)
							}
						})
					}
				}
			}
		})
	}
}

// TestAggregateVersionReadsOLogN checks that AggregateVersion reads a few
// index entries of a long aggregate, not all of them, with stale and fresh
// statistics, as a custom and as a generic plan.
func TestAggregateVersionReadsOLogN(t *testing.T) {
	s, _ := open(t)
	ctx := context.Background()
	const n = 2000
	for k := 0; k < n; k += 200 {
		batch := make([]evento.Event, 200)
		for j := range batch {
			batch[j] = ev("A", "big", uint64(k+j+1))
		}
		if err := s.Write(ctx, batch); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Write(ctx, []evento.Event{ev("A", "bih", 1)}); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		id   string
		want uint64
	}{{"big", n}, {"bih", 1}, {"bif", 0}, {"zzz", 0}} {
		if v, err := s.AggregateVersion(ctx, "A", c.id); err != nil || v != c.want {
			t.Fatalf("AggregateVersion(A, %s) = %d, %v; want %d", c.id, v, err, c.want)
		}
	}
	for _, stats := range []string{"stale-stats", "analyzed"} {
		if stats == "analyzed" {
			if _, err := s.Pool().Exec(ctx, "ANALYZE "+pgx.Identifier{s.Schema(), "events"}.Sanitize()); err != nil {
				t.Fatal(err)
			}
		}
		for _, mode := range []string{"custom", "generic"} {
			t.Run(stats+"/"+mode, func(t *testing.T) {
				tx, err := s.Pool().Begin(ctx)
				if err != nil {
					t.Fatal(err)
				}
				defer tx.Rollback(ctx)
				// AggregateVersion runs the prelude (horizon) first.
				if _, err := tx.Exec(ctx, postgres.PreludeSQL(s)); err != nil {
					t.Fatal(err)
				}
				var plan string
				if mode == "custom" {
					err = tx.QueryRow(ctx, "EXPLAIN (ANALYZE, FORMAT JSON) "+postgres.AggVersionSQL(s), []byte("A"), []byte("big")).Scan(&plan)
				} else {
					if _, err = tx.Exec(ctx, "SET LOCAL plan_cache_mode = force_generic_plan"); err == nil {
						_, err = tx.Exec(ctx, "PREPARE evento_aggv_plan AS "+postgres.AggVersionSQL(s))
					}
					if err == nil {
						err = tx.QueryRow(ctx, `EXPLAIN (ANALYZE, FORMAT JSON) EXECUTE evento_aggv_plan('\x41', '\x626967')`).Scan(&plan)
						// PREPARE outlives the rolled-back transaction.
						if _, derr := tx.Exec(ctx, "DEALLOCATE evento_aggv_plan"); err == nil {
							err = derr
						}
					}
				}
				if err != nil {
					t.Fatalf("EXPLAIN: %v", err)
				}
				var root []struct{ Plan node }
				if err := json.Unmarshal([]byte(plan), &root); err != nil || len(root) != 1 {
					t.Fatalf("plan JSON: %v", err)
				}
				if read, seq := root[0].Plan.rowsRead(); seq || read > 10 {
					t.Errorf("AggregateVersion reads %d rows (seq scan: %v), want at most 10 of the %d-event aggregate\n%s", read, seq, n, plan)
				}
			})
		}
	}
}
