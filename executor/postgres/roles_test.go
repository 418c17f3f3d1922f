package postgres_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
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

// readerRole is the role TestReaderRole reads as when the test's role
// cannot create one (CREATEROLE): not a superuser, not the schema's owner.
// Create it once per cluster:
//
//	CREATE ROLE evento_reader LOGIN PASSWORD 'evento_reader';
//	GRANT CONNECT ON DATABASE evento_test TO evento_reader;
const readerRole = "evento_reader"

// readerCreds returns the role and password of the reader: a fresh role
// dropped at cleanup when the test's role has CREATEROLE, else readerRole
// (password EVENTO_POSTGRES_READER_PASSWORD, default the role's name).
func readerCreds(t *testing.T, c *pgx.Conn) (role, pw string) {
	ctx := context.Background()
	var can bool
	if err := c.QueryRow(ctx, "SELECT rolsuper OR rolcreaterole FROM pg_roles WHERE rolname = current_user").Scan(&can); err != nil {
		t.Fatal(err)
	}
	if !can {
		pw = os.Getenv("EVENTO_POSTGRES_READER_PASSWORD")
		if pw == "" {
			pw = readerRole
		}
		return readerRole, pw
	}
	var rnd [8]byte
	_, _ = rand.Read(rnd[:])
	role, pw = "evt_rd_"+hex.EncodeToString(rnd[:4]), hex.EncodeToString(rnd[4:])
	if _, err := c.Exec(ctx, "CREATE ROLE "+role+" LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD '"+pw+"'"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		c, err := pgx.Connect(context.Background(), postgrestest.BaseDSN())
		if err != nil {
			t.Errorf("drop role %s: %v", role, err)
			return
		}
		defer c.Close(context.Background())
		if _, err := c.Exec(context.Background(), "DROP ROLE IF EXISTS "+role); err != nil {
			t.Errorf("drop role %s: %v", role, err)
		}
	})
	return role, pw
}

// withUser returns dsn with other credentials.
func withUser(t *testing.T, dsn, role, pw string) string {
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	u.User = url.UserPassword(role, pw)
	return u.String()
}

// TestReaderRole: a reader connected as a role that is neither a superuser
// nor the schema's owner (USAGE on the schema, SELECT on its tables) sees
// the writers of another role in its horizon, and a tailing reader of that
// role misses nothing.
func TestReaderRole(t *testing.T) {
	ctx := context.Background()
	// Registered before open's cleanups, so the role is dropped after the
	// schema.
	role, pw := readerCreds(t, rawConn(t))
	s, dsn := open(t)
	rdsn := withUser(t, dsn, role, pw)
	if c, err := pgx.Connect(ctx, withUser(t, postgrestest.BaseDSN(), role, pw)); err != nil {
		t.Skipf("role %s unavailable (%v): grant CREATEROLE to the test's role, or create %s as in readerRole's comment", role, err, readerRole)
	} else {
		c.Close(ctx)
	}
	schema := pgx.Identifier{s.Schema()}.Sanitize()
	for _, g := range []string{"GRANT USAGE ON SCHEMA " + schema + " TO " + role,
		"GRANT SELECT ON ALL TABLES IN SCHEMA " + schema + " TO " + role} {
		if _, err := s.Pool().Exec(ctx, g); err != nil {
			t.Fatal(err)
		}
	}
	r, err := postgres.Open(ctx, rdsn)
	if err != nil {
		// Open creates and migrates the schema: it needs CREATE on the
		// schema even when there is nothing to do (issue 12).
		t.Logf("Open as %s with USAGE and SELECT only: %v", role, err)
		for _, g := range []string{"GRANT CREATE ON SCHEMA " + schema + " TO " + role,
			"GRANT INSERT ON " + schema + ".settings TO " + role} {
			if _, err := s.Pool().Exec(ctx, g); err != nil {
				t.Fatal(err)
			}
		}
		if r, err = postgres.Open(ctx, rdsn); err != nil {
			t.Fatalf("Open as %s with CREATE on the schema: %v", role, err)
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
			t.Errorf("reader %s (role %s) missed %d events", tl.name, role, missed)
		}
		t.Logf("reader %s (role %s): %d events, %d reads, missed %d", tl.name, role, len(tl.seen), tl.reads, missed)
	}
}
