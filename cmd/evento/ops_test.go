package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/evento-go/evento"
	"github.com/evento-go/evento/executor"
	"github.com/evento-go/evento/executor/postgres/postgrestest"
)

// TestMain lets a test start this binary as another process that holds a
// Pebble store open (EVENTO_CLI_HOLD=<dsn>): it prints "ready" and keeps
// the store until its stdin closes.
func TestMain(m *testing.M) {
	if dsn := os.Getenv("EVENTO_CLI_HOLD"); dsn != "" {
		x, err := executor.Open(context.Background(), dsn)
		if err != nil {
			fmt.Println("error:", err)
			os.Exit(1)
		}
		fmt.Println("ready")
		_, _ = io.Copy(io.Discard, os.Stdin)
		x.Close()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func cliIn(t *testing.T, stdin string, args ...string) (string, string, int) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := run(context.Background(), args, strings.NewReader(stdin), &out, &errOut)
	return out.String(), errOut.String(), code
}

func open(t *testing.T, dsn string) evento.Executor {
	t.Helper()
	x, err := executor.Open(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	return x
}

// TestReadOnlyCreatesNothing: read-only commands on a mistyped DSN fail
// with exit 1 and a clear message, and create no directory, file or
// schema.
func TestReadOnlyCreatesNothing(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct{ dsn, path string }{
		{"pebble:" + filepath.Join(dir, "nonexistent", "x"), filepath.Join(dir, "nonexistent")},
		{"sqlite:" + filepath.Join(dir, "nope.db"), filepath.Join(dir, "nope.db")},
	} {
		for _, cmd := range [][]string{{"head"}, {"events"}, {"subscribers"}, {"aggregate", "--type", "t", "--id", "i"}, {"parked", "--key", "k"}, {"tail"}, {"reset", "--key", "k", "--yes"}, {"subscribers", "delete", "--key", "k", "--yes"}} {
			out, errOut, code := cli(t, append([]string{"--dsn", c.dsn}, cmd...)...)
			if code != 1 || !strings.Contains(errOut, "no store") || !strings.Contains(errOut, "evento migrate") {
				t.Errorf("%s %v: exit %d, stdout %q, stderr %q; want exit 1 naming the missing store", c.dsn, cmd, code, out, errOut)
			}
			if _, err := os.Stat(c.path); !errors.Is(err, os.ErrNotExist) {
				t.Fatalf("%s %v created %s", c.dsn, cmd, c.path)
			}
		}
	}
	// An existing directory that holds no store stays empty.
	empty := t.TempDir()
	if _, errOut, code := cli(t, "head", "--dsn", "pebble:"+empty); code != 1 || !strings.Contains(errOut, "no Pebble store") {
		t.Errorf("head on an empty directory: exit %d, %q", code, errOut)
	}
	if names, _ := os.ReadDir(empty); len(names) != 0 {
		t.Errorf("head on an empty directory created %v", names)
	}
}

// TestReadOnlyPostgresSchema: a PostgreSQL DSN naming a schema that does
// not exist fails and does not create it.
func TestReadOnlyPostgresSchema(t *testing.T) {
	dsn := postgrestest.DSN(t) // a fresh schema name, dropped at cleanup
	_, errOut, code := cli(t, "--dsn", dsn, "head")
	if code != 1 || !strings.Contains(errOut, "no store") {
		t.Fatalf("head on a missing schema: exit %d, %q", code, errOut)
	}
	if _, errOut, code := cli(t, "--dsn", dsn, "reset", "--key", "k", "--yes"); code != 1 || !strings.Contains(errOut, "no store") {
		t.Fatalf("reset on a missing schema: exit %d, %q", code, errOut)
	}
	if _, err := executor.Open(context.Background(), dsn+"&migrate=false"); !errors.Is(err, executor.ErrNotMigrated) {
		t.Fatalf("after head and reset, opening with migrate=false = %v, want ErrNotMigrated (nothing created)", err)
	}
	// migrate creates it; then head reads it.
	if _, errOut, code := cli(t, "--dsn", dsn, "migrate"); code != 0 {
		t.Fatalf("migrate: %d %s", code, errOut)
	}
	if out, _, code := cli(t, "--dsn", dsn, "head"); code != 0 || strings.TrimSpace(out) != "0" {
		t.Errorf("head after migrate: %d %q", code, out)
	}
}

// TestLockedByAnotherProcess: a Pebble store held by another process gives
// exit 1 and names the remedy.
func TestLockedByAnotherProcess(t *testing.T) {
	dsn := seed(t)
	child := exec.Command(os.Args[0], "-test.run=^$")
	child.Env = append(os.Environ(), "EVENTO_CLI_HOLD="+dsn)
	stdin, err := child.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := child.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { stdin.Close(); _ = child.Wait() }()
	line, _ := bufio.NewReader(stdout).ReadString('\n')
	if strings.TrimSpace(line) != "ready" {
		t.Fatalf("holder process: %q", line)
	}
	for _, cmd := range [][]string{{"head"}, {"reset", "--key", "balances", "--yes"}} {
		_, errOut, code := cli(t, append([]string{"--dsn", dsn}, cmd...)...)
		if code != 1 || !strings.Contains(errOut, "locked by another process") || !strings.Contains(errOut, "HTTP") || !strings.Contains(errOut, "SQLite or PostgreSQL") {
			t.Errorf("%v on a store another process holds: exit %d, stderr %q; want exit 1, the lock and the remedy", cmd, code, errOut)
		}
	}
}

// TestUsage: help exits 0 with examples; unknown commands, flags and
// arguments and bad values exit 2; --dsn and EVENTO_DSN work anywhere.
func TestUsage(t *testing.T) {
	dsn := seed(t)
	for _, args := range [][]string{{"-h"}, {"--help"}, {"help"}, {"help", "reset"}, {"events", "-h"}, {"parked", "replay", "--help"}, {"subscribers", "delete", "-h"}, {"tail", "--help"}} {
		out, errOut, code := cli(t, args...)
		if code != 0 || !strings.Contains(out, "Example") {
			t.Errorf("%v: exit %d, stdout %q, stderr %q; want exit 0 with examples", args, code, out, errOut)
		}
	}
	if out, _, code := cli(t, "--help"); !strings.Contains(out, "Exit codes") || !strings.Contains(out, "camelCase") {
		t.Errorf("root help does not document exit codes and JSON style (exit %d):\n%s", code, out)
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"head", "extra"}, "takes no arguments"},
		{[]string{"frobnicate"}, "unknown command"},
		{[]string{"head", "--frob"}, "unknown flag"},
		{[]string{"events", "--first", "x"}, "invalid argument"},
		{[]string{"events", "--first", "-1"}, "must not be negative"},
		{[]string{"events", "--routing", "eu", "--no-routing"}, "together"},
		{[]string{"events", "--type", "a", "--type", "b", "--id", "x"}, "exactly one --type"},
		{[]string{"reset", "--key", "balances", "--partition", "4294967297"}, "out of range"},
		{[]string{"reset", "--key", "balances", "--partition", "-1"}, "invalid argument"},
		{[]string{"reset"}, "--key is required"},
		{[]string{"tail", "--from", "yesterday"}, "--from"},
		{[]string{"tail", "--poll", "0s"}, "--poll"},
		{[]string{"parked", "discard", "--key", "balances"}, "--event"},
		{[]string{"parked", "discard", "--key", "balances", "--all", "--event", "01J9Z3X4Q5R6S7T8V9W0XYZABC"}, "--event"},
		{[]string{"parked", "replay", "--key", "balances", "--event", "nope"}, "not an event ID"},
	} {
		_, errOut, code := cli(t, append(c.args, "--dsn", dsn)...)
		if code != 2 || !strings.Contains(errOut, c.want) {
			t.Errorf("%v: exit %d, stderr %q; want 2 and %q", c.args, code, errOut, c.want)
		}
	}
	// --dsn before, after, and between; single-dash spelling; EVENTO_DSN.
	for _, args := range [][]string{{"--dsn", dsn, "head"}, {"head", "--dsn", dsn}, {"head", "-dsn=" + dsn}, {"-dsn", dsn, "head"}} {
		if out, errOut, code := cli(t, args...); code != 0 || strings.TrimSpace(out) != "3" {
			t.Errorf("%v: exit %d %q %q", args, code, out, errOut)
		}
	}
	t.Setenv("EVENTO_DSN", dsn)
	if out, _, code := cli(t, "head"); code != 0 || strings.TrimSpace(out) != "3" {
		t.Errorf("head with EVENTO_DSN: exit %d %q", code, out)
	}
}

// parkedStore seeds a SQLite store with 4 events, subscriber "rm" on 2
// partitions with its cursor at the last event, and 2 parked events on
// partition 0 (events 1 and 2) and 1 on partition 1 (event 3).
func parkedStore(t *testing.T) (string, []evento.Event) {
	t.Helper()
	ctx := context.Background()
	dsn := "sqlite:" + filepath.Join(t.TempDir(), "ev.db")
	x := open(t, dsn)
	defer x.Close()
	var evs []evento.Event
	for i := 1; i <= 4; i++ {
		evs = append(evs, evento.Event{AggregateType: "bank/Account", AggregateID: fmt.Sprintf("a%d", i), Version: 1, Name: "Opened", Data: []byte{0x80}})
	}
	if err := x.Write(ctx, evs); err != nil {
		t.Fatal(err)
	}
	for part, parked := range map[uint32][]evento.Event{0: evs[:2], 1: evs[2:3]} {
		l, err := x.ClaimLease(ctx, "rm", part, "w1", time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		var ps []evento.ParkedEvent
		for _, e := range parked {
			ps = append(ps, evento.ParkedEvent{Key: "rm", Partition: part, Event: e, Error: "boom", Attempts: 3, ParkedAt: time.Now()})
		}
		if err := x.Acknowledge(ctx, l, evento.Ack{Cursor: evs[3].Cursor(), Park: ps}); err != nil {
			t.Fatal(err)
		}
	}
	return dsn, evs
}

func parkedIDs(t *testing.T, dsn string) []string {
	t.Helper()
	out, errOut, code := cli(t, "--dsn", dsn, "parked", "--key", "rm", "--json")
	var rows []struct {
		Partition uint32 `json:"partition"`
		Event     struct {
			ID string `json:"id"`
		} `json:"event"`
		Attempts int `json:"attempts"`
	}
	if code != 0 || json.Unmarshal([]byte(out), &rows) != nil {
		t.Fatalf("parked --json: exit %d %q %q", code, out, errOut)
	}
	ids := []string{}
	for _, r := range rows {
		ids = append(ids, fmt.Sprintf("%d:%s", r.Partition, r.Event.ID))
	}
	return ids
}

func TestParkedDiscardAndReplay(t *testing.T) {
	dsn, evs := parkedStore(t)
	id := func(i int) string { return evs[i].ID.String() }
	if got := parkedIDs(t, dsn); len(got) != 3 {
		t.Fatalf("parked = %v, want 3", got)
	}
	// Refusals change nothing.
	if _, errOut, code := cli(t, "--dsn", dsn, "parked", "discard", "--key", "rm", "--event", evs[3].ID.String(), "--yes"); code != 2 || !strings.Contains(errOut, "no parked event") {
		t.Errorf("discard of an event that is not parked: exit %d %q", code, errOut)
	}
	if _, errOut, code := cli(t, "--dsn", dsn, "parked", "discard", "--key", "nope", "--all", "--yes"); code != 2 || !strings.Contains(errOut, `no subscriber "nope"`) || !strings.Contains(errOut, `"rm"`) {
		t.Errorf("discard on an unknown key: exit %d %q", code, errOut)
	}
	if _, errOut, code := cliIn(t, "n\n", "--dsn", dsn, "parked", "discard", "--key", "rm", "--event", id(0)); code != 1 || !strings.Contains(errOut, "not confirmed") {
		t.Errorf("discard answered n: exit %d %q", code, errOut)
	}
	if got := parkedIDs(t, dsn); len(got) != 3 {
		t.Fatalf("parked after refusals = %v, want all 3", got)
	}
	// Discard one, confirmed on stdin.
	if out, errOut, code := cliIn(t, "y\n", "--dsn", dsn, "parked", "discard", "--key", "rm", "--event", id(0)); code != 0 || !strings.Contains(out, "discarded 1") {
		t.Fatalf("discard: exit %d %q %q", code, out, errOut)
	}
	if got := parkedIDs(t, dsn); strings.Join(got, ",") != "0:"+id(1)+",1:"+id(2) {
		t.Fatalf("parked after discarding %s = %v", id(0), got)
	}
	// Replay all: partition 0 rewinds to just before event 1 (its earliest
	// remaining parked event), partition 1 to just before event 2.
	out, errOut, code := cli(t, "--dsn", dsn, "parked", "replay", "--key", "rm", "--all", "--yes")
	if code != 0 || !strings.Contains(out, "replayed 2") {
		t.Fatalf("replay: exit %d %q %q", code, out, errOut)
	}
	if got := parkedIDs(t, dsn); len(got) != 0 {
		t.Errorf("parked after replay = %v, want none", got)
	}
	x := open(t, dsn)
	defer x.Close()
	for part, want := range map[uint32]evento.Event{0: evs[0], 1: evs[1]} {
		s, err := x.Subscriber(context.Background(), "rm", part)
		if err != nil {
			t.Fatal(err)
		}
		if s.Cursor != want.Cursor() || s.Holder != "" {
			t.Errorf("rm/%d after replay: cursor %q holder %q; want the cursor of event %s (just before the parked one) and no holder (lease revoked)", part, s.Cursor, s.Holder, want.ID)
		}
	}
}

func TestResetAndDeleteValidated(t *testing.T) {
	dsn, evs := parkedStore(t)
	other := seed(t)
	foreign := func() string {
		x := open(t, other)
		defer x.Close()
		p, err := x.Read(context.Background(), evento.All().First(1, ""))
		if err != nil {
			t.Fatal(err)
		}
		return p.Events[0].Cursor()
	}()
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"reset", "--key", "nope", "--yes"}, `no subscriber "nope"`},
		{[]string{"reset", "--key", "rm", "--partition", "7", "--yes"}, "no partition 7"},
		{[]string{"reset", "--key", "rm", "--cursor", foreign, "--yes"}, "hold"},
		{[]string{"subscribers", "delete", "--key", "nope", "--yes"}, `no subscriber "nope"`},
		{[]string{"subscribers", "delete", "--key", "rm", "--partition", "7", "--yes"}, "no partition 7"},
		{[]string{"subscribers", "--key", "nope"}, `no subscriber "nope"`},
	} {
		if _, errOut, code := cli(t, append(c.args, "--dsn", dsn)...); code != 2 || !strings.Contains(errOut, c.want) {
			t.Errorf("%v: exit %d %q; want 2 and %q", c.args, code, errOut, c.want)
		}
	}
	x := open(t, dsn)
	subs, err := x.Subscribers(context.Background())
	x.Close()
	if err != nil || len(subs) != 2 {
		t.Fatalf("subscribers after refusals: %v %v, want rm/0 and rm/1 only (nothing created)", subs, err)
	}
	// No answer on stdin: nothing changes.
	if _, errOut, code := cliIn(t, "", "--dsn", dsn, "reset", "--key", "rm"); code != 1 || !strings.Contains(errOut, "not confirmed") {
		t.Errorf("reset without an answer: exit %d %q", code, errOut)
	}
	// A held cursor, one partition.
	if out, errOut, code := cli(t, "--dsn", dsn, "reset", "--key", "rm", "--partition", "1", "--cursor", evs[1].Cursor(), "--yes"); code != 0 || !strings.Contains(out, "rm/1 reset") {
		t.Fatalf("reset: exit %d %q %q", code, out, errOut)
	}
	// Delete one partition, then the rest.
	if out, errOut, code := cli(t, "--dsn", dsn, "subscribers", "delete", "--key", "rm", "--partition", "0", "-y"); code != 0 || !strings.Contains(out, "deleted") {
		t.Fatalf("delete: exit %d %q %q", code, out, errOut)
	}
	if got := parkedIDs(t, dsn); strings.Join(got, ",") != "1:"+evs[2].ID.String() {
		t.Errorf("parked after deleting rm/0 = %v, want only rm/1's", got)
	}
	if _, errOut, code := cliIn(t, "yes\n", "--dsn", dsn, "subscribers", "delete", "--key", "rm"); code != 0 {
		t.Fatalf("delete the rest: exit %d %q", code, errOut)
	}
	out, _, code := cli(t, "--dsn", dsn, "subscribers", "--json")
	if code != 0 || strings.TrimSpace(out) != "[]" {
		t.Errorf("subscribers after deleting every partition: exit %d %q", code, out)
	}
}

// TestJSONStyle: every JSON output is camelCase with durations as strings.
func TestJSONStyle(t *testing.T) {
	dsn, _ := parkedStore(t)
	for _, args := range [][]string{{"subscribers", "--json"}, {"parked", "--key", "rm", "--json"}, {"events", "--json"}, {"aggregate", "--type", "bank/Account", "--id", "a1", "--json"}, {"head", "--json"}} {
		out, errOut, code := cli(t, append(args, "--dsn", dsn)...)
		var v any
		if code != 0 || json.Unmarshal([]byte(out), &v) != nil {
			t.Fatalf("%v: exit %d %q %q", args, code, out, errOut)
		}
		checkCamel(t, fmt.Sprint(args), v)
	}
	out, _, _ := cli(t, "--dsn", dsn, "subscribers", "--json")
	var subs []map[string]any
	_ = json.Unmarshal([]byte(out), &subs)
	if len(subs) != 2 {
		t.Fatalf("subscribers --json: %s", out)
	}
	if s, ok := subs[0]["sinceAck"].(string); !ok || !strings.HasSuffix(s, "s") {
		t.Errorf("sinceAck = %#v, want a duration string", subs[0]["sinceAck"])
	}
	if s, ok := subs[0]["lagTime"].(string); !ok || s == "" {
		t.Errorf("lagTime = %#v, want a duration string", subs[0]["lagTime"])
	}
}

func checkCamel(t *testing.T, where string, v any) {
	t.Helper()
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			if k != "data" && k != "metadata" && k != "" && (k[0] < 'a' || k[0] > 'z' || strings.Contains(k, "_")) {
				t.Errorf("%s: JSON field %q is not camelCase", where, k)
			}
			if k != "data" && k != "metadata" {
				checkCamel(t, where, e)
			}
		}
	case []any:
		for _, e := range x {
			checkCamel(t, where, e)
		}
	}
}

// syncBuffer is a bytes.Buffer safe for a writer and a reader goroutine.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// startTail runs tail in the background; stop cancels it (Ctrl-C) and
// returns its exit code.
func startTail(t *testing.T, args ...string) (out *syncBuffer, stop func() int) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	out = &syncBuffer{}
	errOut := &syncBuffer{}
	done := make(chan int, 1)
	go func() { done <- run(ctx, append([]string{"tail"}, args...), strings.NewReader(""), out, errOut) }()
	return out, func() int {
		cancel()
		select {
		case code := <-done:
			if code != 0 {
				t.Errorf("tail: exit %d, stderr %q", code, errOut.String())
			}
			return code
		case <-time.After(30 * time.Second):
			t.Fatal("tail did not stop after its context was cancelled")
			return -1
		}
	}
}

// waitLines waits until out has n lines (a bounded deadline, not a sleep).
func waitLines(t *testing.T, out *syncBuffer, n int) []string {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		lines := strings.Split(strings.TrimSpace(out.String()), "\n")
		if out.String() == "" {
			lines = nil
		}
		if len(lines) >= n {
			return lines
		}
		if time.Now().After(deadline) {
			t.Fatalf("tail printed %d lines, want %d:\n%s", len(lines), n, out.String())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestTail: tail --from start prints the matching history then follows new
// commits of another executor (polling on SQLite), in JSON Lines; --from
// now prints only later events; --from a cursor continues after it; the
// query shape filters; cancelling stops it with exit 0.
func TestTail(t *testing.T) {
	dsn, evs := parkedStore(t)
	w := open(t, dsn)
	defer w.Close()

	all, stopAll := startTail(t, "--dsn", dsn, "--from", "start", "--json", "--poll", "20ms")
	now, stopNow := startTail(t, "--dsn", dsn, "--poll", "20ms", "--type", "bank/Account", "--name", "Deposited")
	after, stopAfter := startTail(t, "--dsn", dsn, "--from", evs[2].Cursor(), "--poll", "20ms")
	waitLines(t, all, 4)
	waitLines(t, after, 1)

	more := []evento.Event{
		{AggregateType: "bank/Account", AggregateID: "a1", Version: 2, Name: "Deposited", Data: []byte{0x80}},
		{AggregateType: "bank/Other", AggregateID: "o1", Version: 1, Name: "Deposited", Data: []byte{0x80}},
	}
	if err := w.Write(context.Background(), more); err != nil {
		t.Fatal(err)
	}
	lines := waitLines(t, all, 6)
	var last struct {
		ID            string `json:"id"`
		AggregateType string `json:"aggregateType"`
		Cursor        string `json:"cursor"`
	}
	if err := json.Unmarshal([]byte(lines[5]), &last); err != nil || last.ID != more[1].ID.String() || last.AggregateType != "bank/Other" || last.Cursor == "" {
		t.Errorf("tail --json line 6 = %q (%v), want event %s as JSON", lines[5], err, more[1].ID)
	}
	got := waitLines(t, now, 1)
	waitLines(t, after, 3)
	if code := stopAll(); code != 0 {
		return
	}
	stopNow()
	stopAfter()
	if len(got) != 1 || !strings.Contains(got[0], "bank/Account/a1") || !strings.Contains(got[0], more[0].ID.String()) {
		t.Errorf("tail --from now --type bank/Account --name Deposited printed %q, want only event %s", now.String(), more[0].ID)
	}
	if a := after.String(); strings.Count(a, "\n") != 3 || !strings.Contains(a, evs[3].ID.String()) || strings.Contains(a, evs[2].ID.String()) {
		t.Errorf("tail --from <cursor of event 3> printed:\n%s\nwant events 4, 5 and 6", a)
	}
}
