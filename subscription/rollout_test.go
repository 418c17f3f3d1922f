package subscription

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/evento-go/evento"
	"github.com/evento-go/evento/executor/pebble"
	"github.com/evento-go/evento/executor/postgres"
	"github.com/evento-go/evento/executor/postgres/postgrestest"
	"github.com/evento-go/evento/executor/sqlite"
)

// balModel is a versioned balances read model kept in the executor's own
// store: each version in its own table (TableName) or Pebble namespace
// (the versioned key's).
type balModel interface {
	// prepare creates version v's table.
	prepare(ctx context.Context, v int) error
	// add adds delta to an account inside the handler's transaction.
	add(ctx context.Context, id string, delta int64) error
	// balances reads version v's committed balances; ok is false when its
	// table or namespace does not exist (or is empty, on Pebble).
	balances(t testing.TB, v int) (m map[string]int64, ok bool)
	// drop drops version v's table.
	drop(ctx context.Context, v int) error
}

const balBase = "bal"

type pebbleBal struct{ s *pebble.Store }

func (pebbleBal) prepare(context.Context, int) error { return nil }
func (pebbleBal) drop(context.Context, int) error    { return nil } // DropVersion clears the namespace

func (pebbleBal) add(ctx context.Context, id string, delta int64) error {
	kv := pebble.KVFrom(ctx)
	if kv == nil {
		return errors.New("no pebble KV in the handler's context")
	}
	v, _, err := kv.Get([]byte(id))
	if err != nil {
		return err
	}
	var n int64
	if len(v) == 8 {
		n = int64(binary.BigEndian.Uint64(v))
	}
	return kv.Set([]byte(id), binary.BigEndian.AppendUint64(nil, uint64(n+delta)))
}

func (m pebbleBal) balances(t testing.TB, v int) (map[string]int64, bool) {
	t.Helper()
	out := map[string]int64{}
	err := m.s.ReadModel(VersionedKey(balBase, v)).Scan(context.Background(), nil, func(k, val []byte) error {
		out[string(k)] = int64(binary.BigEndian.Uint64(val))
		return nil
	})
	if err != nil {
		t.Fatalf("scan read model v%d: %v", v, err)
	}
	return out, len(out) > 0
}

type sqliteBal struct{ s *sqlite.Store }

func (m sqliteBal) prepare(ctx context.Context, v int) error {
	_, err := m.s.DB().ExecContext(ctx, `CREATE TABLE IF NOT EXISTS `+TableName(balBase, v)+` (account TEXT PRIMARY KEY, balance INTEGER NOT NULL)`)
	return err
}

func (m sqliteBal) drop(ctx context.Context, v int) error {
	_, err := m.s.DB().ExecContext(ctx, `DROP TABLE IF EXISTS `+TableName(balBase, v))
	return err
}

func (sqliteBal) add(ctx context.Context, id string, delta int64) error {
	tx := sqlite.TxFrom(ctx)
	if tx == nil {
		return errors.New("no sqlite tx in the handler's context")
	}
	_, err := tx.ExecContext(ctx, `INSERT INTO `+TableNameFrom(ctx, balBase)+` (account, balance) VALUES (?1, ?2)
ON CONFLICT (account) DO UPDATE SET balance = balance + ?2`, id, delta)
	return err
}

func (m sqliteBal) balances(t testing.TB, v int) (map[string]int64, bool) {
	t.Helper()
	var n int
	if err := m.s.DB().QueryRow(`SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?`, TableName(balBase, v)).Scan(&n); err != nil {
		t.Fatalf("sqlite_master: %v", err)
	}
	if n == 0 {
		return nil, false
	}
	rows, err := m.s.DB().Query(`SELECT account, balance FROM ` + TableName(balBase, v))
	if err != nil {
		t.Fatalf("read v%d: %v", v, err)
	}
	defer rows.Close()
	out := map[string]int64{}
	for rows.Next() {
		var id string
		var b int64
		if err := rows.Scan(&id, &b); err != nil {
			t.Fatal(err)
		}
		out[id] = b
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out, true
}

type postgresBal struct{ s *postgres.Store }

func (m postgresBal) table(v int) string { return m.s.Schema() + "." + TableName(balBase, v) }

func (m postgresBal) prepare(ctx context.Context, v int) error {
	_, err := m.s.Pool().Exec(ctx, `CREATE TABLE IF NOT EXISTS `+m.table(v)+` (account text PRIMARY KEY, balance bigint NOT NULL)`)
	return err
}

func (m postgresBal) drop(ctx context.Context, v int) error {
	_, err := m.s.Pool().Exec(ctx, `DROP TABLE IF EXISTS `+m.table(v))
	return err
}

func (m postgresBal) add(ctx context.Context, id string, delta int64) error {
	tx := postgres.TxFrom(ctx)
	if tx == nil {
		return errors.New("no postgres tx in the handler's context")
	}
	table := m.s.Schema() + "." + TableNameFrom(ctx, balBase)
	_, err := tx.Exec(ctx, `INSERT INTO `+table+` (account, balance) VALUES ($1, $2)
ON CONFLICT (account) DO UPDATE SET balance = `+table+`.balance + $2`, id, delta)
	return err
}

func (m postgresBal) balances(t testing.TB, v int) (map[string]int64, bool) {
	t.Helper()
	ctx := context.Background()
	var exists bool
	if err := m.s.Pool().QueryRow(ctx, `SELECT to_regclass($1) IS NOT NULL`, m.table(v)).Scan(&exists); err != nil {
		t.Fatalf("to_regclass: %v", err)
	}
	if !exists {
		return nil, false
	}
	rows, err := m.s.Pool().Query(ctx, `SELECT account, balance FROM `+m.table(v))
	if err != nil {
		t.Fatalf("read v%d: %v", v, err)
	}
	defer rows.Close()
	out := map[string]int64{}
	for rows.Next() {
		var id string
		var b int64
		if err := rows.Scan(&id, &b); err != nil {
			t.Fatal(err)
		}
		out[id] = b
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out, true
}

var balBackends = []struct {
	name string
	open func(t testing.TB) (evento.Executor, balModel)
}{
	{"pebble", func(t testing.TB) (evento.Executor, balModel) {
		s, err := pebble.Open(context.Background(), t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = s.Close() })
		return s, pebbleBal{s}
	}},
	{"sqlite", func(t testing.TB) (evento.Executor, balModel) {
		s, err := sqlite.Open(context.Background(), sqlitePath(t))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = s.Close() })
		return s, sqliteBal{s}
	}},
	{"postgres", func(t testing.TB) (evento.Executor, balModel) {
		s, err := postgres.Open(context.Background(), postgrestest.DSN(t))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = s.Close() })
		return s, postgresBal{s}
	}},
}

const balType = "test/Balance"

// balEvent is the payload of the test's events: its index in the log and
// an amount.
type balEvent struct {
	N      int
	Amount int64
}

// balLog writes deposits and withdrawals and remembers them.
type balLog struct {
	exec evento.Executor
	ver  map[string]uint64
	evs  []balEvent
	ids  []string
	kind []string
}

func (l *balLog) write(t testing.TB, n int) {
	t.Helper()
	if l.ver == nil {
		l.ver = map[string]uint64{}
	}
	for range n {
		i := len(l.evs)
		id := fmt.Sprintf("acc-%d", i%7)
		name, amount := "Deposited", int64(i%13+1)
		if i%5 == 4 {
			name = "Withdrawn"
		}
		data, err := evento.Marshal(balEvent{N: i, Amount: amount})
		if err != nil {
			t.Fatal(err)
		}
		l.ver[id]++
		if err := l.exec.Write(context.Background(), []evento.Event{{AggregateType: balType, AggregateID: id, Version: l.ver[id], Name: name, Data: data}}); err != nil {
			t.Fatalf("write: %v", err)
		}
		l.evs = append(l.evs, balEvent{N: i, Amount: amount})
		l.ids = append(l.ids, id)
		l.kind = append(l.kind, name)
	}
}

// want is the read model of logic mult over the first n events.
func (l *balLog) want(n int, mult int64) map[string]int64 {
	out := map[string]int64{}
	for i := range n {
		d := l.evs[i].Amount * mult
		if l.kind[i] == "Withdrawn" {
			d = -d
		}
		out[l.ids[i]] += d
	}
	return out
}

// balGate holds version 2's handler back at event index at, so its build
// is still in progress while the test looks; it fails the call (no
// transaction stays open during the backoff), it does not block.
type balGate struct {
	at      int
	open    atomic.Bool
	reached chan struct{}
	once    sync.Once
}

var errGate = errors.New("held back by the test")

// balSub is version v of the balances subscription: balance * mult.
func balSub(t testing.TB, v int, m balModel, mult int64, g *balGate) *Subscription {
	return New(balBase).Version(v).Transactional(true).ChunkSize(50).Logger(quiet).
		Retry(RetryPolicy{Initial: time.Millisecond, Max: 5 * time.Millisecond, MaxAttempts: 1 << 30}).
		HandleAll(balType, func(ctx context.Context, e *evento.Event) error {
			if got, ok := VersionFrom(ctx); !ok || got != v {
				t.Errorf("VersionFrom = %d, %v in version %d's handler", got, ok, v)
			}
			var d balEvent
			if err := evento.Unmarshal(e.Data, &d); err != nil {
				return err
			}
			if g != nil && !g.open.Load() && d.N >= g.at {
				g.once.Do(func() { close(g.reached) })
				return errGate
			}
			delta := d.Amount * mult
			if e.Name == "Withdrawn" {
				delta = -delta
			}
			return m.add(ctx, e.AggregateID, delta)
		})
}

func TestRollout(t *testing.T) {
	for _, b := range balBackends {
		t.Run(b.name, func(t *testing.T) {
			exec, m := b.open(t)
			testRollout(t, exec, m)
		})
	}
}

// testRollout builds version 1 of a balances read model, then version 2
// with changed logic beside it while version 1 serves, across a restart
// in the middle of the build; checks the switch, the state of both, the
// drop of version 1 and the restarts after the switch.
func testRollout(t *testing.T, exec evento.Executor, m balModel) {
	ctx := context.Background()
	log := &balLog{exec: exec}
	log.write(t, 200)
	gate := &balGate{at: 120, reached: make(chan struct{})}
	v1 := balSub(t, 1, m, 1, nil)
	v2 := balSub(t, 2, m, 100, gate)
	switches := make(chan [2]int, 4)
	var dropped []int
	cfg := RolloutConfig{
		CheckInterval: 5 * time.Millisecond,
		Prepare:       m.prepare,
		DropData: func(ctx context.Context, v int) error {
			dropped = append(dropped, v)
			return m.drop(ctx, v)
		},
		OnSwitch: func(from, to int) { switches <- [2]int{from, to} },
		Logger:   quiet,
	}
	balancesEqual := func(v, n int, mult int64) func() bool {
		return func() bool {
			got, _ := m.balances(t, v)
			return maps.Equal(got, log.want(n, mult))
		}
	}

	// A fresh key: the only version is the target and active at once.
	r1, err := StartRollout(ctx, exec, cfg, v1)
	if err != nil {
		t.Fatal(err)
	}
	if r1.Active() != 1 || r1.Target() != 1 || r1.Key() != balBase {
		t.Fatalf("fresh rollout: active %d target %d key %q, want 1 1 %q", r1.Active(), r1.Target(), r1.Key(), balBase)
	}
	recv(t, r1.Switched(), time.Second, "a fresh rollout to be switched")
	waitFor(t, 30*time.Second, "version 1 to build", balancesEqual(1, 200, 1))
	if err := r1.Stop(ctx); err != nil {
		t.Fatalf("stop: %v", err)
	}

	// Version 2 builds beside version 1, which keeps serving; the build is
	// held back at event 120.
	r2, err := StartRollout(ctx, exec, cfg, v1, v2)
	if err != nil {
		t.Fatal(err)
	}
	if r2.Active() != 1 || r2.Target() != 2 {
		t.Fatalf("rollout: active %d target %d, want 1 2", r2.Active(), r2.Target())
	}
	recv(t, gate.reached, 30*time.Second, "version 2's build to reach the gate")
	log.write(t, 100)
	waitFor(t, 30*time.Second, "version 1 to keep serving new events during the build", balancesEqual(1, 300, 1))
	// Version 2 committed the events before the gate (each failing call
	// is rolled back alone), so 180 of the 300 events are pending.
	waitFor(t, 30*time.Second, "a progress check with 180 events pending", func() bool {
		p := r2.Progress()
		return p.Pending == 180 && p.PendingExact
	})
	if p := r2.Progress(); p.Active != 1 || p.Target != 2 || p.Switched || p.Key != balBase {
		t.Errorf("progress during the build = %+v", p)
	}
	if a, ok, err := ActiveVersion(ctx, exec, balBase); err != nil || !ok || a != 1 {
		t.Errorf("ActiveVersion during the build = %d, %v, %v; want 1", a, ok, err)
	}
	select {
	case <-r2.Switched():
		t.Fatal("switched while version 2 is held back")
	default:
	}
	if err := r2.Drop(ctx, 1); !errors.Is(err, ErrVersionInUse) {
		t.Errorf("drop of the serving version: %v, want ErrVersionInUse", err)
	}
	if err := r2.Drop(ctx, 2); !errors.Is(err, ErrVersionInUse) {
		t.Errorf("drop of the version being built: %v, want ErrVersionInUse", err)
	}
	// The process stops mid-build.
	if err := r2.Stop(ctx); err != nil {
		t.Fatalf("stop mid-build: %v", err)
	}
	if st, err := exec.Subscriber(ctx, VersionedKey(balBase, 2), 0); err != nil || st.Cursor == "" {
		t.Fatalf("version 2 after the stop: %+v, %v; want a cursor part-way", st, err)
	}

	// Restarted: version 1 is still the active one until version 2 has
	// caught up, then the rollout switches.
	gate.open.Store(true)
	r3, err := StartRollout(ctx, exec, cfg, v1, v2)
	if err != nil {
		t.Fatal(err)
	}
	if sw := recv(t, switches, 30*time.Second, "the switch"); sw != [2]int{1, 2} {
		t.Fatalf("OnSwitch(%d, %d), want (1, 2)", sw[0], sw[1])
	}
	recv(t, r3.Switched(), time.Second, "Switched")
	if r3.Active() != 2 {
		t.Fatalf("active after the switch = %d", r3.Active())
	}
	if a, ok, err := ActiveVersion(ctx, exec, balBase); err != nil || !ok || a != 2 {
		t.Errorf("ActiveVersion after the switch = %d, %v, %v; want 2", a, ok, err)
	}
	// Every event applied once by version 2's logic, across the restart.
	if got, _ := m.balances(t, 2); !maps.Equal(got, log.want(300, 100)) {
		t.Fatalf("version 2 at the switch = %v, want %v", got, log.want(300, 100))
	}
	if p := r3.Progress(); !p.Switched || p.Active != 2 || p.Pending != 0 || p.ETA != 0 {
		t.Errorf("progress after the switch = %+v", p)
	}
	// Version 2 serves new events; version 1 is no longer run.
	log.write(t, 50)
	waitFor(t, 30*time.Second, "version 2 to serve new events", balancesEqual(2, 350, 100))
	if got, _ := m.balances(t, 1); !maps.Equal(got, log.want(300, 1)) {
		t.Errorf("version 1 moved after the switch: %v", got)
	}

	// Drop version 1: its data, subscriber and record go; version 2 stays.
	if err := r3.Drop(ctx, 2); !errors.Is(err, ErrVersionInUse) {
		t.Errorf("drop of the active version: %v, want ErrVersionInUse", err)
	}
	if err := r3.Drop(ctx, 1); err != nil {
		t.Fatalf("drop version 1: %v", err)
	}
	if fmt.Sprint(dropped) != "[1]" {
		t.Errorf("DropData called for %v, want [1]", dropped)
	}
	if got, ok := m.balances(t, 1); ok {
		t.Errorf("version 1's read model after the drop: %v", got)
	}
	if got, _ := m.balances(t, 2); !maps.Equal(got, log.want(350, 100)) {
		t.Errorf("version 2 after dropping version 1 = %v", got)
	}
	st, err := exec.Subscriber(ctx, VersionedKey(balBase, 1), 0)
	if err != nil || st.Cursor != "" || !bytes.Equal(st.Selection, droppedSel) {
		t.Errorf("version 1's subscriber after the drop: cursor %q selection %q, %v", st.Cursor, st.Selection, err)
	}
	sts, err := Status(ctx, exec, VersionedKey(balBase, 1), ActiveKey(balBase))
	if err != nil {
		t.Fatal(err)
	}
	if len(sts) != 2 || sts[0].Key != ActiveKey(balBase) || sts[0].Partition != 2 || sts[1].Key != VersionedKey(balBase, 1) {
		// bal@active/2 (bal@active/1 is deleted with version 1) and bal@v1/0
		t.Errorf("status rows: %+v, want bal@active partition 2 and bal@v1 partition 0", sts)
	}
	for _, s := range sts {
		if s.Pending != 0 || !s.PendingExact {
			t.Errorf("status of %s/%d: pending %d exact %v, want exactly 0", s.Key, s.Partition, s.Pending, s.PendingExact)
		}
	}
	// An old process that still runs version 1 is refused, not rebuilt.
	if err := v1.CatchUp(ctx, exec); !errors.Is(err, ErrSelectionChanged) {
		t.Errorf("version 1 after its drop: %v, want ErrSelectionChanged", err)
	}
	if err := r3.Stop(ctx); err != nil {
		t.Fatalf("stop: %v", err)
	}

	// Restarted after the switch: version 2 is active at once and alone.
	r4, err := StartRollout(ctx, exec, cfg, v1, v2)
	if err != nil {
		t.Fatal(err)
	}
	if r4.Active() != 2 {
		t.Errorf("active after a restart past the switch = %d, want 2", r4.Active())
	}
	recv(t, r4.Switched(), time.Second, "Switched")
	if err := r4.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	// Code older than the switch is refused.
	if _, err := StartRollout(ctx, exec, cfg, v1); !errors.Is(err, ErrVersionNotDefined) {
		t.Errorf("rollout of version 1 alone after the switch to 2: %v, want ErrVersionNotDefined", err)
	}
	select {
	case sw := <-switches:
		t.Errorf("unexpected switch %v", sw)
	default:
	}
}
