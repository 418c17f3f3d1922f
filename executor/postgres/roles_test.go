package postgres_test

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"sync"
	"testing"

	"github.com/evento-go/evento"
	"github.com/evento-go/evento/executor/postgres"
	"github.com/evento-go/evento/executor/postgres/postgrestest"
	"github.com/jackc/pgx/v5"
	"github.com/oklog/ulid/v2"
)

// readerRole is the role TestReaderRole reads as: not a superuser, not the
// schema's owner. Create it once per cluster:
//
//	CREATE ROLE evento_reader LOGIN PASSWORD 'evento_reader';
//	GRANT CONNECT ON DATABASE evento_test TO evento_reader;
const readerRole = "evento_reader"

// readerDSN returns dsn with the reader role's credentials
// (EVENTO_POSTGRES_READER_PASSWORD, default the role's name).
func readerDSN(t *testing.T, dsn string) string {
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	pw := os.Getenv("EVENTO_POSTGRES_READER_PASSWORD")
	if pw == "" {
		pw = readerRole
	}
	u.User = url.UserPassword(readerRole, pw)
	return u.String()
}

// TestReaderRole: a reader connected as a role that is neither a superuser
// nor the schema's owner (USAGE on the schema, SELECT on its tables) sees
// the writers of another role in its horizon, and a tailing reader of that
// role misses nothing.
func TestReaderRole(t *testing.T) {
	ctx := context.Background()
	s, dsn := open(t)
	rdsn := readerDSN(t, dsn)
	if c, err := pgx.Connect(ctx, readerDSN(t, postgrestest.BaseDSN())); err != nil {
		t.Skipf("role %s unavailable (%v): create it as in readerRole's comment", readerRole, err)
	} else {
		c.Close(ctx)
	}
	schema := pgx.Identifier{s.Schema()}.Sanitize()
	for _, g := range []string{"GRANT USAGE ON SCHEMA " + schema + " TO " + readerRole,
		"GRANT SELECT ON ALL TABLES IN SCHEMA " + schema + " TO " + readerRole} {
		if _, err := s.Pool().Exec(ctx, g); err != nil {
			t.Fatal(err)
		}
	}
	r, err := postgres.Open(ctx, rdsn)
	if err != nil {
		// Open creates and migrates the schema: it needs CREATE on the
		// schema even when there is nothing to do (issue 12).
		t.Logf("Open as %s with USAGE and SELECT only: %v", readerRole, err)
		for _, g := range []string{"GRANT CREATE ON SCHEMA " + schema + " TO " + readerRole,
			"GRANT INSERT ON " + schema + ".settings TO " + readerRole} {
			if _, err := s.Pool().Exec(ctx, g); err != nil {
				t.Fatal(err)
			}
		}
		if r, err = postgres.Open(ctx, rdsn); err != nil {
			t.Fatalf("Open as %s with CREATE on the schema: %v", readerRole, err)
		}
	}
	defer r.Close()
	var super bool
	if err := r.Pool().QueryRow(ctx, "SELECT rolsuper FROM pg_roles WHERE rolname = current_user").Scan(&super); err != nil || super {
		t.Fatalf("reader is a superuser (%v) or: %v", super, err)
	}

	// A writer of the owner's role, registered and with a transaction id,
	// held open: the reader's horizon must stop below it.
	if err := s.Write(ctx, []evento.Event{ev("A", "before", 1)}); err != nil {
		t.Fatal(err)
	}
	hold, err := s.Pool().Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer hold.Rollback(ctx)
	var xid uint64
	if err := hold.QueryRow(ctx, "SELECT pg_advisory_xact_lock_shared($1)::text, pg_current_xact_id()::text::bigint",
		postgres.WritersLockKey(s.Schema())).Scan(new(string), &xid); err != nil {
		t.Fatal(err)
	}
	var seen uint64
	key := postgres.WritersLockKey(s.Schema())
	if err := r.Pool().QueryRow(ctx, `SELECT a.backend_xid::text::bigint FROM pg_locks l CROSS JOIN LATERAL pg_stat_get_activity(l.pid) a
		WHERE l.locktype = 'advisory' AND l.objsubid = 1 AND a.backend_xid IS NOT NULL
		AND l.classid = $1::bigint::oid AND l.objid = $2::bigint::oid`, int64(uint64(key)>>32), int64(uint32(key))).Scan(&seen); err != nil {
		t.Fatalf("reader role cannot see the writer's xid: %v", err)
	}
	if seen != xid&0xffffffff {
		t.Fatalf("reader sees writer xid %d, want %d", seen, xid)
	}
	if err := s.Write(ctx, []evento.Event{ev("A", "after", 1)}); err != nil {
		t.Fatal(err)
	}
	page, err := r.Read(ctx, evento.All().First(10, ""))
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Events) != 1 || page.Events[0].AggregateID != "before" {
		t.Fatalf("reader saw %d events past an open writer, want only the one before it", len(page.Events))
	}
	if _, err := hold.Exec(ctx, "INSERT INTO "+schema+`.events (id, aggregate_type, aggregate_id, version, name) VALUES ('\x00', 'A', 'held', 1, 'E')`); err != nil {
		t.Fatal(err)
	}
	if err := hold.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	page, err = r.Read(ctx, evento.All().First(10, ""))
	if err != nil || len(page.Events) != 3 || page.Events[1].AggregateID != "held" {
		t.Fatalf("after the writer committed the reader saw %d events (%v), want before, held, after", len(page.Events), err)
	}

	// Tailing readers of the reader role while the owner's writers append.
	const writers, commits = 16, 100
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := range writers {
		wg.Go(func() {
			if err := (stressPlan{prefix: fmt.Sprintf("w%d", w), commits: commits}).run(ctx, s); err != nil {
				errs <- err
			}
		})
	}
	finished := make(chan struct{})
	go func() { wg.Wait(); close(finished) }()
	tailers := []*stressTailer{
		{name: "all", q: evento.All(), s: r, seen: map[ulid.ULID]evento.Event{}},
		{name: "or", q: evento.ByName("A", "E1").Or(evento.Filter{AggregateType: "B"}), s: r, seen: map[ulid.ULID]evento.Event{}},
	}
	var rwg sync.WaitGroup
	terrs := make([]error, len(tailers))
	for i, tl := range tailers {
		rwg.Go(func() {
			for {
				select {
				case <-finished:
					terrs[i] = tl.step(ctx)
					return
				default:
				}
				if err := tl.step(ctx); err != nil {
					terrs[i] = err
					<-finished
					return
				}
			}
		})
	}
	rwg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	for _, err := range terrs {
		if err != nil {
			t.Error(err)
		}
	}
	full := &stressTailer{name: "final", q: evento.All(), s: s, seen: map[ulid.ULID]evento.Event{}}
	if err := full.step(ctx); err != nil {
		t.Fatal(err)
	}
	for _, tl := range tailers {
		missed := 0
		for id, e := range full.seen {
			if _, ok := tl.seen[id]; tl.q.Matches(&e) && !ok {
				missed++
			}
		}
		if missed > 0 {
			t.Errorf("reader %s (role %s) missed %d events", tl.name, readerRole, missed)
		}
		t.Logf("reader %s (role %s): %d events, %d reads, missed %d", tl.name, readerRole, len(tl.seen), tl.reads, missed)
	}
}
