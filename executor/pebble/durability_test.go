package pebble

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/evento-go/evento"
)

// childEnv names the directory the durability child writes to; TestMain
// runs runDurabilityChild instead of the tests when it is set.
const childEnv = "EVENTO_PEBBLE_DURABILITY_CHILD"

const childWriters = 4

// runDurabilityChild writes events to the store in dir from several
// goroutines, one aggregate each, printing "<aggregate> <version>" after
// every acknowledged write, until it is killed.
func runDurabilityChild(dir string) {
	s, err := Open(context.Background(), dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, "open:", err)
		os.Exit(2)
	}
	var mu sync.Mutex
	out := bufio.NewWriter(os.Stdout)
	var wg sync.WaitGroup
	for w := range childWriters {
		wg.Go(func() {
			id := strconv.Itoa(w)
			for v := uint64(1); ; v++ {
				e := []evento.Event{{AggregateType: "D", AggregateID: id, Version: v, Name: "Tick", Data: []byte(strings.Repeat("x", 100))}}
				if err := s.Write(context.Background(), e); err != nil {
					fmt.Fprintln(os.Stderr, "write:", err)
					os.Exit(3)
				}
				mu.Lock()
				fmt.Fprintf(out, "%s %d\n", id, v)
				out.Flush()
				mu.Unlock()
			}
		})
	}
	wg.Wait()
}

// TestDurabilityAfterSIGKILL runs a child process that writes with durable
// commits, kills it with SIGKILL mid-stream, and checks that every write
// the child saw acknowledged is in the reopened store, with contiguous
// versions and a dense global log.
func TestDurabilityAfterSIGKILL(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a child process")
	}
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"="+dir)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	acked := map[string]uint64{}
	sc := bufio.NewScanner(stdout)
	total := 0
	for total < 400 && sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) != 2 {
			t.Fatalf("child printed %q", sc.Text())
		}
		v, err := strconv.ParseUint(f[1], 10, 64)
		if err != nil {
			t.Fatal(err)
		}
		acked[f[0]] = max(acked[f[0]], v)
		total++
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	// Lines acknowledged before the kill landed may still be in the pipe.
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 2 {
			if v, err := strconv.ParseUint(f[1], 10, 64); err == nil {
				acked[f[0]] = max(acked[f[0]], v)
			}
		}
	}
	_ = cmd.Wait()
	if total < 400 {
		t.Fatalf("child stopped after %d acknowledgements", total)
	}

	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	s, err := Open(ctx, dir)
	if err != nil {
		t.Fatalf("reopen after SIGKILL: %v", err)
	}
	defer s.Close()
	var sum uint64
	for id, want := range acked {
		got, err := s.ReadAggregate(ctx, "D", id, 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		if uint64(len(got)) < want {
			t.Errorf("aggregate %s: %d events after reopen, %d were acknowledged", id, len(got), want)
		}
		for i, e := range got {
			if e.Version != uint64(i+1) {
				t.Fatalf("aggregate %s: version %d at index %d", id, e.Version, i)
			}
		}
		sum += uint64(len(got))
	}
	head, err := s.Head(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if head.Seq != sum {
		t.Errorf("head %d, but the aggregates hold %d events", head.Seq, sum)
	}
	// The global log is dense from 1 to head.
	next, c := uint64(1), ""
	for {
		p, err := s.Read(ctx, evento.All().First(1000, c))
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range p.Events {
			if e.Position.Seq != next {
				t.Fatalf("global log: position %d where %d was expected", e.Position.Seq, next)
			}
			next++
		}
		if !p.PageInfo.HasNextPage {
			break
		}
		c = p.PageInfo.EndCursor
	}
	if next-1 != head.Seq {
		t.Errorf("global log holds %d events, head is %d", next-1, head.Seq)
	}
	t.Logf("child acknowledged %d writes; reopened store holds %d events", total, head.Seq)
}
