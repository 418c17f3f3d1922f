package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/evento-go/evento"
	"github.com/evento-go/evento/executor"
	"github.com/evento-go/evento/executor/storekit"
)

func setup(t *testing.T, opts ...Option) (*Store, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "evento.db")
	s, err := Open(t.Context(), path, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Error(err)
		}
	})
	return s, path
}

func mustWrite(t *testing.T, s *Store, es ...evento.Event) []evento.Event {
	t.Helper()
	if err := s.Write(t.Context(), es); err != nil {
		t.Fatal(err)
	}
	return es
}

// TestQueryPlans checks with EXPLAIN QUERY PLAN that every query shape is
// an index range read in position order: no full scan, no temporary b-tree.
func TestQueryPlans(t *testing.T) {
	s, _ := setup(t)
	// Some data so the planner sees real tables.
	for i := range 50 {
		// An aggregate keeps its first event's routing key.
		mustWrite(t, s, evento.Event{AggregateType: "T", AggregateID: fmt.Sprint("a", i%5), Version: uint64(i/5 + 1), Name: "N", RoutingKey: []string{"", "k"}[i%5%2]})
	}
	bound := int64(10)
	type shape struct {
		name string
		q    evento.Query
	}
	f1 := evento.Filter{AggregateType: "T"}
	f2 := evento.Filter{AggregateType: "T", AggregateID: "a1"}
	f3 := evento.Filter{AggregateType: "T", Name: "N"}
	f4 := evento.Filter{AggregateType: "T", AggregateID: "a1", Name: "N"}
	var shapes []shape
	for _, r := range []struct {
		name string
		r    evento.Routing
	}{{"any", evento.AnyRouting()}, {"none", evento.NoRoutingKey()}, {"key", evento.RoutingKey("k")}} {
		shapes = append(shapes,
			shape{"all/" + r.name, evento.All().WithRouting(r.r)},
			shape{"type/" + r.name, evento.Query{Filters: []evento.Filter{f1}}.WithRouting(r.r)},
			shape{"aggregate/" + r.name, evento.Query{Filters: []evento.Filter{f2}}.WithRouting(r.r)},
			shape{"name/" + r.name, evento.Query{Filters: []evento.Filter{f3}}.WithRouting(r.r)},
			shape{"aggregate+name/" + r.name, evento.Query{Filters: []evento.Filter{f4}}.WithRouting(r.r)},
			shape{"or/" + r.name, evento.Query{Filters: []evento.Filter{f1, f2, f3, {AggregateType: "U"}}}.WithRouting(r.r)},
		)
	}
	for _, sh := range shapes {
		p := planQuery(&sh.q)
		type stmt struct {
			what string
			sql  string
			args []any
		}
		var stmts []stmt
		// One statement per page, one arm or several.
		for _, c := range []struct {
			what     string
			backward bool
			bound    int64
		}{{"first page", false, 0}, {"forward", false, bound}, {"backward", true, bound}, {"last page", true, 0}} {
			q, a := p.pageSQL(c.backward, c.bound, 21)
			stmts = append(stmts, stmt{c.what, q, a})
		}
		for i := range p.arms {
			q, a := p.arms[i].existsSQL(true, bound)
			stmts = append(stmts, stmt{fmt.Sprint("arm", i, " exists before"), q, a})
			q, a = p.arms[i].existsSQL(false, bound)
			stmts = append(stmts, stmt{fmt.Sprint("arm", i, " exists after"), q, a})
		}
		for _, c := range stmts {
			t.Run(sh.name+"/"+c.what, func(t *testing.T) { checkPlan(t, s, c.sql, c.args) })
		}
	}
	// The aggregate load path, the version check, the head and the id walk.
	for _, c := range []struct {
		sql  string
		args []any
	}{
		{`SELECT ` + eventCols + ` FROM events WHERE aggregate_type = ? AND aggregate_id = ? AND version > ? ORDER BY version LIMIT ?`, []any{blob("T"), blob("a1"), 0, 10}},
		{sqlAggVersion, []any{blob("T"), blob("a1")}},
		{sqlLastEvent, nil},
		{sqlWriteHead, []any{blob("T"), blob("a1")}},
		{sqlAggregateIDs, []any{blob("T"), blob(""), 10}},
	} {
		checkPlan(t, s, c.sql, c.args)
	}
}

// checkPlan fails if q's plan scans the events table other than in rowid
// order with no filter (which stops at the LIMIT), sorts in a temporary
// b-tree, or uses no index.
func checkPlan(t *testing.T, s *Store, q string, args []any) {
	t.Helper()
	plan := explain(t, s, q, args)
	show := strings.Join(plan, "\n") + "\nfor " + q
	for _, line := range plan {
		if strings.HasPrefix(line, "SCAN events") && !strings.Contains(line, "INDEX") && strings.Contains(q, " WHERE ") {
			t.Errorf("full scan in plan:\n%s", show)
		}
		if strings.Contains(line, "TEMP B-TREE") {
			t.Errorf("temporary b-tree in plan:\n%s", show)
		}
	}
	if strings.Contains(q, " WHERE ") && !slices.ContainsFunc(plan, func(l string) bool {
		return strings.Contains(l, "INDEX") || strings.Contains(l, "PRIMARY KEY")
	}) {
		t.Errorf("no index in plan:\n%s", show)
	}
}

func explain(t *testing.T, s *Store, q string, args []any) []string {
	t.Helper()
	rows, err := s.db.QueryContext(t.Context(), "EXPLAIN QUERY PLAN "+q, args...)
	if err != nil {
		t.Fatalf("%v: %s", err, q)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var id, parent, unused int
		var detail string
		if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
			t.Fatal(err)
		}
		out = append(out, detail)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestRoundTripAwkwardIdentifiers(t *testing.T) {
	s, _ := setup(t)
	ids := []string{"nul\x00byte", "quote'\"", "ünïcødé ☃", "x\x00", "\x00"}
	for _, id := range ids {
		mustWrite(t, s, evento.Event{AggregateType: "t\x00ype", AggregateID: id, Version: 1, Name: "n\x00'", RoutingKey: "r\x00k"})
	}
	for _, id := range ids {
		got, err := s.ReadAggregate(t.Context(), "t\x00ype", id, 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 1 || got[0].AggregateID != id || got[0].Name != "n\x00'" || got[0].RoutingKey != "r\x00k" || got[0].AggregateType != "t\x00ype" {
			t.Fatalf("ReadAggregate(%q) = %+v", id, got)
		}
	}
	page, err := s.Read(t.Context(), evento.ByName("t\x00ype", "n\x00'").WithRouting(evento.RoutingKey("r\x00k")))
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Events) != len(ids) {
		t.Fatalf("read by name and key: %d events, want %d", len(page.Events), len(ids))
	}
	// "t" is a prefix of "t\x00ype": it must not match.
	if v, err := s.AggregateVersion(t.Context(), "t", "nul"); err != nil || v != 0 {
		t.Fatalf("AggregateVersion of a prefix = %d, %v", v, err)
	}
	got, err := s.AggregateIDs(t.Context(), "t\x00ype", "", 100)
	if err != nil {
		t.Fatal(err)
	}
	want := slices.Clone(ids)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("AggregateIDs = %q, want %q", got, want)
	}
}

func TestPaging(t *testing.T) {
	s, _ := setup(t)
	var all []evento.Event
	for i := range 10 {
		all = append(all, mustWrite(t, s, evento.Event{AggregateType: "A", AggregateID: "x", Version: uint64(i + 1), Name: "E"},
			evento.Event{AggregateType: "B", AggregateID: "y", Version: uint64(i + 1), Name: "E"})...)
	}
	ctx := t.Context()
	q := evento.ByType("A").Or(evento.Filter{AggregateType: "B", Name: "E"})
	// Forward in pages of 3.
	var got []evento.Event
	after := ""
	for page := 0; ; page++ {
		p, err := s.Read(ctx, q.First(3, after))
		if err != nil {
			t.Fatal(err)
		}
		if p.PageInfo.HasPreviousPage != (after != "") {
			t.Fatalf("page %d: HasPreviousPage = %v", page, p.PageInfo.HasPreviousPage)
		}
		got = append(got, p.Events...)
		if !p.PageInfo.HasNextPage {
			break
		}
		after = p.PageInfo.EndCursor
	}
	if len(got) != len(all) {
		t.Fatalf("forward read %d events, want %d", len(got), len(all))
	}
	for i := range got {
		if !got[i].Equal(&all[i]) {
			t.Fatalf("event %d: got %+v, want %+v", i, got[i], all[i])
		}
	}
	// Backward in pages of 4.
	got = nil
	before := ""
	for {
		p, err := s.Read(ctx, q.Last(4, before))
		if err != nil {
			t.Fatal(err)
		}
		if p.PageInfo.HasNextPage != (before != "") {
			t.Fatalf("backward HasNextPage = %v", p.PageInfo.HasNextPage)
		}
		got = append(slices.Clone(p.Events), got...)
		if !p.PageInfo.HasPreviousPage {
			break
		}
		before = p.PageInfo.StartCursor
	}
	if len(got) != len(all) {
		t.Fatalf("backward read %d events, want %d", len(got), len(all))
	}
	for i := range got {
		if !got[i].Equal(&all[i]) {
			t.Fatalf("backward event %d: got %v, want %v", i, got[i].Position, all[i].Position)
		}
	}
	// A cursor of an event outside the query: HasPreviousPage says whether
	// a matching event lies at or before it.
	p, err := s.Read(ctx, evento.ByType("B").First(1, all[0].Cursor()))
	if err != nil {
		t.Fatal(err)
	}
	if p.PageInfo.HasPreviousPage || len(p.Events) != 1 || p.Events[0].AggregateType != "B" {
		t.Fatalf("read B after A's first event: %+v", p.PageInfo)
	}
}

func TestForeignCursor(t *testing.T) {
	s, _ := setup(t)
	es := mustWrite(t, s, evento.Event{AggregateType: "A", AggregateID: "x", Version: 1, Name: "E"})
	other, _ := setup(t)
	oes := mustWrite(t, other, evento.Event{AggregateType: "A", AggregateID: "x", Version: 1, Name: "E"})
	for name, c := range map[string]string{
		"other store":  oes[0].Cursor(),
		"no such pos":  storekit.EncodeCursor(es[0].ID, evento.Position{Seq: 99}),
		"tx position":  storekit.EncodeCursor(es[0].ID, evento.Position{Tx: 1, Seq: 1}),
		"garbage":      "not-a-cursor",
		"empty base64": "AAAA",
	} {
		for _, q := range []evento.Query{evento.All().First(5, c), evento.All().Last(5, c)} {
			if _, err := s.Read(t.Context(), q); !errors.Is(err, evento.ErrInvalidCursor) {
				t.Errorf("%s: Read = %v, want ErrInvalidCursor", name, err)
			}
		}
	}
}

func TestVersionConflict(t *testing.T) {
	s, _ := setup(t)
	mustWrite(t, s, evento.Event{AggregateType: "A", AggregateID: "x", Version: 1, Name: "E"})
	batch := []evento.Event{
		{AggregateType: "A", AggregateID: "y", Version: 1, Name: "E"},
		{AggregateType: "A", AggregateID: "x", Version: 1, Name: "E"},
	}
	err := s.Write(t.Context(), batch)
	var vc *evento.VersionConflictError
	if !errors.As(err, &vc) || vc.Actual != 1 || vc.Expected != 0 || vc.AggregateID != "x" {
		t.Fatalf("Write = %v, want conflict on x (expected 0, actual 1)", err)
	}
	if v, _ := s.AggregateVersion(t.Context(), "A", "y"); v != 0 {
		t.Fatalf("partial write: y is at version %d", v)
	}
	// A unique violation found by the insert itself (a version check
	// bypassed) is reported the same way, recognised by its result code.
	_, err = s.db.ExecContext(t.Context(), `INSERT INTO events (id, aggregate_type, aggregate_id, version, name, routing_key, timestamp) VALUES (?, ?, ?, 1, ?, X'', 0)`,
		make([]byte, 16), blob("A"), blob("x"), blob("E"))
	if !isUniqueViolation(err) {
		t.Fatalf("duplicate insert = %v, want a unique violation", err)
	}
}

func TestConcurrentWriters(t *testing.T) {
	s, _ := setup(t, WithSynchronous("off"))
	const writers, each = 8, 25
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				for {
					id := "shared"
					if i%2 == 0 {
						id = fmt.Sprint("own", w)
					}
					v, err := s.AggregateVersion(context.Background(), "C", id)
					if err != nil {
						errs <- err
						return
					}
					err = s.Write(context.Background(), []evento.Event{{AggregateType: "C", AggregateID: id, Version: v + 1, Name: "E"}})
					if errors.Is(err, evento.ErrVersionConflict) {
						continue
					}
					if err != nil {
						errs <- err
						return
					}
					break
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	all := checkLog(t, s, nil)
	if len(all) != writers*each {
		t.Fatalf("%d events, want %d", len(all), writers*each)
	}
}

func TestMigrations(t *testing.T) {
	s, path := setup(t)
	mustWrite(t, s, evento.Event{AggregateType: "A", AggregateID: "x", Version: 1, Name: "E"})
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	// Reopening is idempotent and keeps the data.
	for range 2 {
		s2, err := Open(t.Context(), path)
		if err != nil {
			t.Fatal(err)
		}
		var n int
		if err := s2.db.QueryRow("SELECT count(*) FROM schema_migrations").Scan(&n); err != nil || n != SchemaVersion() {
			t.Fatalf("schema_migrations has %d rows (%v), want %d", n, err, SchemaVersion())
		}
		if v, err := s2.AggregateVersion(t.Context(), "A", "x"); err != nil || v != 1 {
			t.Fatalf("after reopen: version %d, %v", v, err)
		}
		var mode string
		if err := s2.db.QueryRow("PRAGMA journal_mode").Scan(&mode); err != nil || mode != "wal" {
			t.Fatalf("journal_mode = %q, %v", mode, err)
		}
		// A newer schema is refused.
		if _, err := s2.db.Exec("INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, 'future', 0)", SchemaVersion()+1); err != nil {
			t.Fatal(err)
		}
		s2.Close()
		if _, err := Open(t.Context(), path); !errors.Is(err, evento.ErrSchemaTooNew) {
			t.Fatalf("open newer schema = %v, want ErrSchemaTooNew", err)
		}
		// Remove the future row through a plain handle and go round again.
		s3, err := openRaw(t, path)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s3.Exec("DELETE FROM schema_migrations WHERE name = 'future'"); err != nil {
			t.Fatal(err)
		}
		s3.Close()
	}
}

// TestConcurrentOpen opens a new file from several handles at once: the
// schema is created exactly once.
func TestConcurrentOpen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "race.db")
	var wg sync.WaitGroup
	stores := make([]*Store, 4)
	errs := make([]error, 4)
	for i := range stores {
		wg.Add(1)
		go func() {
			defer wg.Done()
			stores[i], errs[i] = Open(context.Background(), path)
		}()
	}
	wg.Wait()
	for i, s := range stores {
		if errs[i] != nil {
			t.Fatalf("open %d: %v", i, errs[i])
		}
		defer s.Close()
	}
	mustWrite(t, stores[0], evento.Event{AggregateType: "A", AggregateID: "x", Version: 1, Name: "E"})
	if v, err := stores[3].AggregateVersion(t.Context(), "A", "x"); err != nil || v != 1 {
		t.Fatalf("version via another handle: %d, %v", v, err)
	}
}

func TestDSN(t *testing.T) {
	dir := t.TempDir()
	ctx := t.Context()
	for _, dsn := range []string{
		"sqlite:" + filepath.Join(dir, "a.db"),
		"sqlite://" + filepath.Join(dir, "b.db") + "?synchronous=normal&busy_timeout=2000",
		"sqlite::memory:",
		"sqlite::memory:?max_page_size=50",
	} {
		x, err := executor.Open(ctx, dsn)
		if err != nil {
			t.Fatalf("Open(%q): %v", dsn, err)
		}
		if x.Capabilities().Name != "sqlite" {
			t.Fatalf("Open(%q) gave %q", dsn, x.Capabilities().Name)
		}
		if err := x.Write(ctx, []evento.Event{{AggregateType: "A", AggregateID: "x", Version: 1, Name: "E"}}); err != nil {
			t.Fatal(err)
		}
		if err := x.Close(); err != nil {
			t.Fatal(err)
		}
	}
	for _, dsn := range []string{
		"sqlite:" + filepath.Join(dir, "c.db") + "?bogus=1",
		"sqlite:" + filepath.Join(dir, "c.db") + "?synchronous=sometimes",
		"sqlite:" + filepath.Join(dir, "c.db") + "?busy_timeout=soon",
		"sqlite:",
	} {
		_, err := executor.Open(ctx, dsn)
		if !errors.Is(err, executor.ErrInvalidDSN) {
			t.Fatalf("Open(%q) = %v, want ErrInvalidDSN", dsn, err)
		}
		if strings.Contains(dsn, "bogus") && !strings.Contains(err.Error(), `"bogus"`) {
			t.Fatalf("error %q does not name the option", err)
		}
	}
}

func TestMemoryStoreShared(t *testing.T) {
	s, err := OpenMemory(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	mustWrite(t, s, evento.Event{AggregateType: "A", AggregateID: "x", Version: 1, Name: "E"})
	// Several read connections at once all see the write.
	var wg sync.WaitGroup
	for range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if v, err := s.AggregateVersion(context.Background(), "A", "x"); err != nil || v != 1 {
				t.Errorf("version %d, %v", v, err)
			}
		}()
	}
	wg.Wait()
}

func TestLeases(t *testing.T) {
	var mu sync.Mutex
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
	s, _ := setup(t, WithClock(clock))
	ctx := t.Context()
	es := mustWrite(t, s, evento.Event{AggregateType: "A", AggregateID: "x", Version: 1, Name: "E"})

	l1, err := s.ClaimLease(ctx, "sub", 0, "w1", time.Minute)
	if err != nil || l1.Token != 1 || !l1.ExpiresAt.Equal(now.Add(time.Minute)) {
		t.Fatalf("claim = %+v, %v", l1, err)
	}
	if _, err := s.ClaimLease(ctx, "sub", 0, "w2", time.Minute); !errors.Is(err, evento.ErrLeaseHeld) {
		t.Fatalf("second claim = %v, want ErrLeaseHeld", err)
	}
	if err := s.Acknowledge(ctx, l1, evento.Ack{Cursor: es[0].Cursor(), Lag: evento.Lag{Events: 3, Time: time.Second}}); err != nil {
		t.Fatal(err)
	}
	advance(2 * time.Minute)
	if err := s.Acknowledge(ctx, l1, evento.Ack{Cursor: es[0].Cursor()}); !errors.Is(err, evento.ErrLeaseLost) {
		t.Fatalf("ack after expiry = %v, want ErrLeaseLost", err)
	}
	l2, err := s.ClaimLease(ctx, "sub", 0, "w2", time.Minute)
	if err != nil || l2.Token != 2 {
		t.Fatalf("takeover = %+v, %v", l2, err)
	}
	if _, err := s.RenewLease(ctx, l1, time.Minute); !errors.Is(err, evento.ErrLeaseLost) {
		t.Fatalf("renew stale = %v", err)
	}
	parked := evento.ParkedEvent{Key: "sub", Partition: 0, Event: es[0], Error: "boom", Attempts: 3}
	if err := s.Acknowledge(ctx, l2, evento.Ack{LastError: "boom", Park: []evento.ParkedEvent{parked}}); err != nil {
		t.Fatal(err)
	}
	st, err := s.Subscriber(ctx, "sub", 0)
	if err != nil || st.Cursor != es[0].Cursor() || st.Holder != "w2" || st.Token != 2 || st.Parked != 1 || st.LastError != "boom" || st.Lag.Events != 0 {
		t.Fatalf("subscriber = %+v, %v", st, err)
	}
	ps, err := s.ParkedEvents(ctx, "sub")
	if err != nil || len(ps) != 1 || !ps[0].Event.Equal(&es[0]) || ps[0].Attempts != 3 || !ps[0].ParkedAt.Equal(now) {
		t.Fatalf("parked = %+v, %v", ps, err)
	}
	if err := s.ResetSubscriber(ctx, "sub", 0, ""); err != nil {
		t.Fatal(err)
	}
	if err := s.Acknowledge(ctx, l2, evento.Ack{}); !errors.Is(err, evento.ErrLeaseLost) {
		t.Fatalf("ack after reset = %v", err)
	}
	if err := s.DeleteParked(ctx, "sub", 0, es[0].ID); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteParked(ctx, "sub", 0, es[0].ID); !errors.Is(err, evento.ErrNotFound) {
		t.Fatalf("second delete = %v", err)
	}
	if _, err := s.Subscriber(ctx, "nope", 0); !errors.Is(err, evento.ErrNotFound) {
		t.Fatalf("missing subscriber = %v", err)
	}
}

func TestSnapshots(t *testing.T) {
	s, _ := setup(t)
	ctx := t.Context()
	for v := uint64(1); v <= 5; v++ {
		if err := s.SaveSnapshot(ctx, evento.Snapshot{AggregateType: "A", AggregateID: "x", Revision: "r1", Version: v * 10, Data: []byte{byte(v)}}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.SaveSnapshot(ctx, evento.Snapshot{AggregateType: "A", AggregateID: "x", Revision: "r0", Version: 100}); err != nil {
		t.Fatal(err)
	}
	sn, err := s.LoadSnapshot(ctx, "A", "r1", "x", 35)
	if err != nil || sn.Version != 30 || sn.Data[0] != 3 || sn.CreatedAt.IsZero() {
		t.Fatalf("load = %+v, %v", sn, err)
	}
	if err := s.PruneSnapshots(ctx, "A", "r1", "x", 2); err != nil {
		t.Fatal(err)
	}
	if _, err := s.LoadSnapshot(ctx, "A", "r1", "x", 35); !errors.Is(err, evento.ErrNotFound) {
		t.Fatalf("pruned load = %v", err)
	}
	if _, err := s.LoadSnapshot(ctx, "A", "r0", "x", 0); !errors.Is(err, evento.ErrNotFound) {
		t.Fatalf("other revision kept: %v", err)
	}
	if sn, err := s.LoadSnapshot(ctx, "A", "r1", "x", 0); err != nil || sn.Version != 50 {
		t.Fatalf("newest = %+v, %v", sn, err)
	}
}

func TestNotify(t *testing.T) {
	s, path := setup(t, WithPollInterval(5*time.Millisecond))
	ctx, cancel := context.WithCancel(t.Context())
	ch := s.Notify(ctx)
	mustWrite(t, s, evento.Event{AggregateType: "A", AggregateID: "x", Version: 1, Name: "E"})
	select {
	case <-ch:
	case <-time.After(10 * time.Second):
		t.Fatal("no signal after a local commit")
	}
	// A commit through another handle (as another process would) is seen
	// by the data_version poll.
	other, err := Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	drain(ch)
	mustWrite(t, other, evento.Event{AggregateType: "A", AggregateID: "x", Version: 2, Name: "E"})
	select {
	case <-ch:
	case <-time.After(10 * time.Second):
		t.Fatal("no signal after another handle's commit")
	}
	cancel()
	for range ch {
	}
	// After Close, channels are closed and calls fail with ErrClosed.
	ch2 := s.Notify(t.Context())
	s.Close()
	for range ch2 {
	}
	if err := s.Write(t.Context(), []evento.Event{{AggregateType: "A", AggregateID: "x", Version: 3, Name: "E"}}); !errors.Is(err, evento.ErrClosed) {
		t.Fatalf("write after close = %v", err)
	}
	if _, ok := <-s.Notify(t.Context()); ok {
		t.Fatal("Notify after Close gave an open channel")
	}
}

func drain(ch <-chan struct{}) {
	for {
		select {
		case <-ch:
		default:
			return
		}
	}
}

// openRaw opens path with the plain modernc driver.
func openRaw(t *testing.T, path string) (*sql.DB, error) {
	t.Helper()
	return sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(5000)")
}

// TestNewWithHandle wraps a handle the caller opened; Close leaves it open.
func TestNewWithHandle(t *testing.T) {
	db, err := openRaw(t, filepath.Join(t.TempDir(), "handle.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	s, err := New(t.Context(), db)
	if err != nil {
		t.Fatal(err)
	}
	mustWrite(t, s, evento.Event{AggregateType: "A", AggregateID: "x", Version: 1, Name: "E"})
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close = %v", err)
	}
	var n int
	if err := db.QueryRow("SELECT count(*) FROM events").Scan(&n); err != nil || n != 1 {
		t.Fatalf("handle after Close: %d events, %v", n, err)
	}
	var mode string
	if err := db.QueryRow("PRAGMA journal_mode").Scan(&mode); err != nil || mode != "wal" {
		t.Fatalf("journal_mode = %q, %v", mode, err)
	}
}

// TestCorruptRow: a stored row whose metadata does not decode fails every
// read path with ErrDecode instead of being dropped or returned half-made.
func TestCorruptRow(t *testing.T) {
	s, _ := setup(t)
	mustWrite(t, s, evento.Event{AggregateType: "A", AggregateID: "x", Version: 1, Name: "E"})
	if _, err := s.db.Exec(`INSERT INTO events (id, aggregate_type, aggregate_id, version, name, routing_key, metadata, timestamp) VALUES (?, ?, ?, 2, ?, X'', X'c1', 0)`,
		make([]byte, 16), blob("A"), blob("x"), blob("E")); err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	if _, err := s.Read(ctx, evento.All()); !errors.Is(err, evento.ErrDecode) {
		t.Fatalf("Read = %v, want ErrDecode", err)
	}
	if _, err := s.Read(ctx, evento.ByType("A").Or(evento.Filter{AggregateType: "B"})); !errors.Is(err, evento.ErrDecode) {
		t.Fatalf("Read of an OR = %v, want ErrDecode", err)
	}
	if _, err := s.ReadAggregate(ctx, "A", "x", 0, 0); !errors.Is(err, evento.ErrDecode) {
		t.Fatalf("ReadAggregate = %v, want ErrDecode", err)
	}
	if _, err := s.ReadAggregate(ctx, "A", "x", 0, 5); !errors.Is(err, evento.ErrDecode) {
		t.Fatalf("ReadAggregate with limit = %v, want ErrDecode", err)
	}
}
