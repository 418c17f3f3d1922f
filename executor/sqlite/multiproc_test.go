package sqlite

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/evento-go/evento"
)

// Child processes: the test binary re-executed with childEnv set to a role.
// They write to the file in childPathEnv and print one line per
// acknowledged event: "ack <type> <id> <version> <position> <ulid>".
const (
	childEnv      = "EVENTO_SQLITE_CHILD"
	childPathEnv  = "EVENTO_SQLITE_CHILD_PATH"
	childNameEnv  = "EVENTO_SQLITE_CHILD_NAME"
	childCountEnv = "EVENTO_SQLITE_CHILD_COUNT"
)

// runChild runs a child role and returns the exit code.
func runChild(role string) int {
	path := os.Getenv(childPathEnv)
	name := os.Getenv(childNameEnv)
	n, _ := strconv.Atoi(os.Getenv(childCountEnv))
	ctx := context.Background()
	opts := []Option{WithBusyTimeout(30 * time.Second)}
	if m := os.Getenv(childSyncEnv); m != "" {
		opts = append(opts, WithSynchronous(m))
	}
	s, err := Open(ctx, path, opts...)
	if err != nil {
		fmt.Fprintln(os.Stderr, "child open:", err)
		return 2
	}
	defer s.Close()
	out := bufio.NewWriter(os.Stdout)
	ack := func(es []evento.Event) {
		for _, e := range es {
			fmt.Fprintf(out, "ack %s %s %d %d %s\n", e.AggregateType, e.AggregateID, e.Version, e.Position.Seq, e.ID)
		}
		out.Flush() // one write per acknowledged commit
	}
	switch role {
	case "append":
		// Appends n events: alternately to an aggregate of its own (no
		// conflicts) and to a shared one (conflicts, retried), in batches
		// of 1 to 3.
		own := uint64(0)
		for i := 0; i < n; {
			size := 1 + i%3
			if i%2 == 0 {
				batch := make([]evento.Event, size)
				for j := range batch {
					batch[j] = evento.Event{AggregateType: "proc", AggregateID: "own-" + name, Version: own + uint64(j) + 1, Name: "Appended", Data: []byte(name)}
				}
				if err := s.Write(ctx, batch); err != nil {
					fmt.Fprintln(os.Stderr, "child write own:", err)
					return 3
				}
				own += uint64(size)
				ack(batch)
			} else {
				for {
					v, err := s.AggregateVersion(ctx, "proc", "shared")
					if err != nil {
						fmt.Fprintln(os.Stderr, "child version:", err)
						return 3
					}
					batch := make([]evento.Event, size)
					for j := range batch {
						batch[j] = evento.Event{AggregateType: "proc", AggregateID: "shared", Version: v + uint64(j) + 1, Name: "Shared", Data: []byte(name)}
					}
					err = s.Write(ctx, batch)
					if errors.Is(err, evento.ErrVersionConflict) {
						continue
					}
					if err != nil {
						fmt.Fprintln(os.Stderr, "child write shared:", err)
						return 3
					}
					ack(batch)
					break
				}
			}
			i += size
		}
		return 0
	case "ordering":
		return runOrderingChild(s, name, n) // ordering_test.go
	case "forever":
		// Appends single events until killed.
		for v := uint64(1); ; v++ {
			e := []evento.Event{{AggregateType: "proc", AggregateID: "victim", Version: v, Name: "Appended", Data: make([]byte, 100)}}
			if err := s.Write(ctx, e); err != nil {
				fmt.Fprintln(os.Stderr, "child write:", err)
				return 3
			}
			ack(e)
		}
	}
	fmt.Fprintln(os.Stderr, "unknown child role", role)
	return 2
}

type acked struct {
	typ, id string
	version uint64
	pos     uint64
	ulid    string
}

func parseAcks(t *testing.T, r io.Reader) []acked {
	t.Helper()
	var out []acked
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) != 6 || f[0] != "ack" {
			continue // a line cut by SIGKILL
		}
		v, err1 := strconv.ParseUint(f[3], 10, 64)
		p, err2 := strconv.ParseUint(f[4], 10, 64)
		if err1 != nil || err2 != nil {
			continue
		}
		out = append(out, acked{typ: f[1], id: f[2], version: v, pos: p, ulid: f[5]})
	}
	return out
}

func childCmd(t *testing.T, role, path, name string, n int) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"="+role, childPathEnv+"="+path, childNameEnv+"="+name, childCountEnv+"="+strconv.Itoa(n))
	var stderr strings.Builder
	cmd.Stderr = &stderr
	t.Cleanup(func() {
		if t.Failed() && stderr.Len() > 0 {
			t.Logf("child %s stderr:\n%s", name, stderr.String())
		}
	})
	return cmd
}

// checkLog verifies the whole log: positions strictly increasing without
// duplicates, ULIDs increasing with positions, versions contiguous per
// aggregate, and every acknowledged event stored as acknowledged.
func checkLog(t *testing.T, s *Store, acks []acked) []evento.Event {
	t.Helper()
	ctx := context.Background()
	var all []evento.Event
	after := ""
	for {
		p, err := s.Read(ctx, evento.All().First(1000, after))
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, p.Events...)
		if !p.PageInfo.HasNextPage {
			break
		}
		after = p.PageInfo.EndCursor
	}
	versions := map[string]uint64{}
	byPos := map[uint64]*evento.Event{}
	for i := range all {
		e := &all[i]
		if i > 0 {
			if !all[i-1].Position.Less(e.Position) {
				t.Fatalf("position %v follows %v", e.Position, all[i-1].Position)
			}
			if all[i-1].ID.Compare(e.ID) >= 0 {
				t.Fatalf("ULID %s at %v does not exceed %s at %v", e.ID, e.Position, all[i-1].ID, all[i-1].Position)
			}
		}
		k := e.AggregateType + "/" + e.AggregateID
		if e.Version != versions[k]+1 {
			t.Fatalf("%s: version %d follows %d", k, e.Version, versions[k])
		}
		versions[k] = e.Version
		byPos[e.Position.Seq] = e
	}
	for _, a := range acks {
		e, ok := byPos[a.pos]
		if !ok {
			t.Fatalf("acknowledged event %+v is missing", a)
		}
		if e.AggregateType != a.typ || e.AggregateID != a.id || e.Version != a.version || e.ID.String() != a.ulid {
			t.Fatalf("acknowledged %+v, stored %s/%s v%d %s", a, e.AggregateType, e.AggregateID, e.Version, e.ID)
		}
	}
	return all
}

// TestMultiProcessAppend runs three processes appending to one file at
// once, to aggregates of their own and to a shared one.
func TestMultiProcessAppend(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process test skipped in -short mode")
	}
	path := filepath.Join(t.TempDir(), "shared.db")
	const procs, per = 3, 150
	var wg sync.WaitGroup
	results := make([][]acked, procs)
	errs := make([]error, procs)
	for i := range procs {
		cmd := childCmd(t, "append", path, fmt.Sprintf("p%d", i), per)
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = parseAcks(t, out)
			errs[i] = cmd.Wait()
		}()
	}
	wg.Wait()
	var acks []acked
	for i := range procs {
		if errs[i] != nil {
			t.Fatalf("child %d: %v", i, errs[i])
		}
		if len(results[i]) != per {
			t.Fatalf("child %d acknowledged %d events, want %d", i, len(results[i]), per)
		}
		acks = append(acks, results[i]...)
	}
	s, err := Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	all := checkLog(t, s, acks)
	if len(all) != procs*per {
		t.Fatalf("store holds %d events, want %d", len(all), procs*per)
	}
	// Every process wrote to the shared aggregate.
	writers := map[string]bool{}
	for _, e := range all {
		if e.AggregateID == "shared" {
			writers[string(e.Data)] = true
		}
	}
	if len(writers) != procs {
		t.Fatalf("shared aggregate written by %d processes, want %d", len(writers), procs)
	}
	seen := map[uint64]bool{}
	for _, a := range acks {
		if seen[a.pos] {
			t.Fatalf("position %d acknowledged twice", a.pos)
		}
		seen[a.pos] = true
	}
}

// TestMultiProcessKill SIGKILLs a writer mid-stream and checks that the
// file opens and holds every acknowledged event.
func TestMultiProcessKill(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process test skipped in -short mode")
	}
	path := filepath.Join(t.TempDir(), "killed.db")
	cmd := childCmd(t, "forever", path, "victim", 0)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// Read acknowledgements until enough have arrived, then kill the
	// writer without warning while it keeps writing.
	pr, pw := io.Pipe()
	enough := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(out)
		n := 0
		for sc.Scan() {
			pw.Write(append(sc.Bytes(), '\n'))
			if n++; n == 200 {
				close(enough)
			}
		}
		pw.Close()
	}()
	done := make(chan []acked)
	go func() { done <- parseAcks(t, pr) }()
	select {
	case <-enough:
	case <-time.After(60 * time.Second):
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatal("child did not acknowledge 200 writes in 60s")
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	acks := <-done
	werr := cmd.Wait()
	var ee *exec.ExitError
	if !errors.As(werr, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("child ended with %v, want killed by SIGKILL", werr)
	}
	s, err := Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	all := checkLog(t, s, acks)
	if len(all) < len(acks) {
		t.Fatalf("store holds %d events, fewer than the %d acknowledged", len(all), len(acks))
	}
	// The store still takes writes after the crash.
	v := uint64(len(all))
	if err := s.Write(context.Background(), []evento.Event{{AggregateType: "proc", AggregateID: "victim", Version: v + 1, Name: "After"}}); err != nil {
		t.Fatal(err)
	}
	t.Logf("acknowledged %d, stored %d before the kill", len(acks), len(all))
}
