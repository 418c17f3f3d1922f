package executortest

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/evento-go/evento"
	"github.com/evento-go/evento/executor"
	"github.com/oklog/ulid/v2"
)

// Child processes of the stress test: the test binary re-executed with
// -test.run=^$ and these variables set. The backend's TestMain calls
// ChildMain first when IsChild reports true, so the binary writes instead
// of running tests.
const (
	childEnv           = "EVENTO_EXECUTORTEST_CHILD" // the role: "stress"
	childDSNEnv        = "EVENTO_EXECUTORTEST_DSN"
	childProcEnv       = "EVENTO_EXECUTORTEST_PROC"       // the child's index
	childCommitsEnv    = "EVENTO_EXECUTORTEST_COMMITS"    // commits per goroutine
	childGoroutinesEnv = "EVENTO_EXECUTORTEST_GOROUTINES" // writers in the child
)

// IsChild reports whether this process is a child process of the stress
// test. A backend's TestMain calls it first:
//
//	func TestMain(m *testing.M) {
//		if executortest.IsChild() {
//			os.Exit(executortest.ChildMain())
//		}
//		os.Exit(m.Run())
//	}
//
// The backend's package must be linked into the test binary so that
// executor.Open finds its scheme (it is, in the backend's own tests).
func IsChild() bool { return os.Getenv(childEnv) != "" }

// ChildMain runs the child role named by the environment and returns the
// process exit code. The stress child opens the store with executor.Open
// and the DSN it was given, prints "ready", waits for a line on stdin, runs
// its writers and prints one "ack" line per acknowledged event (ID,
// position, version, type, id, name, routing key, timestamp), then "done"
// and the number of lost races. Errors go to stderr with a non-zero exit
// code.
func ChildMain() int {
	role := os.Getenv(childEnv)
	switch role {
	case "stress":
		if err := stressChild(); err != nil {
			fmt.Fprintln(os.Stderr, "executortest stress child:", err)
			return 1
		}
		return 0
	}
	fmt.Fprintf(os.Stderr, "executortest: unknown child role %s=%q\n", childEnv, role)
	return 2
}

func stressChild() error {
	dsn := os.Getenv(childDSNEnv)
	proc, err1 := strconv.Atoi(os.Getenv(childProcEnv))
	commits, err2 := strconv.Atoi(os.Getenv(childCommitsEnv))
	gs, err3 := strconv.Atoi(os.Getenv(childGoroutinesEnv))
	if dsn == "" || err1 != nil || err2 != nil || err3 != nil || gs < 1 {
		return fmt.Errorf("bad environment: %s=%q %s=%q %s=%q (DSN set: %v)", childProcEnv, os.Getenv(childProcEnv),
			childCommitsEnv, os.Getenv(childCommitsEnv), childGoroutinesEnv, os.Getenv(childGoroutinesEnv), dsn != "")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Hour)
	defer cancel()
	x, err := executor.Open(ctx, dsn)
	if err != nil {
		return fmt.Errorf("open %s: %w", executor.Redact(dsn), err)
	}
	defer x.Close()
	out := bufio.NewWriter(os.Stdout)
	var mu sync.Mutex
	emit := func(format string, a ...any) {
		mu.Lock()
		defer mu.Unlock()
		fmt.Fprintf(out, format, a...)
		out.Flush()
	}
	emit("ready\n")
	// Wait for the parent's go: every writer of every process starts
	// together.
	if _, err := bufio.NewReader(os.Stdin).ReadString('\n'); err != nil {
		return fmt.Errorf("waiting for the parent's go: %w", err)
	}
	errs := make([]error, gs)
	conflicts := make([]int, gs)
	var wg sync.WaitGroup
	for g := range gs {
		wg.Go(func() {
			w := newStressWriter(fmt.Sprintf("p%dg%d", proc, g), 1000+proc*gs+g, 0, x)
			for c := range commits {
				cm, err := w.commit(ctx, c)
				if err != nil {
					errs[g] = err
					return
				}
				var b strings.Builder
				for i := range cm.batch {
					e := &cm.batch[i]
					fmt.Fprintf(&b, "ack %s %d %d %d %q %q %q %q %s\n", e.ID, e.Position.Tx, e.Position.Seq, e.Version,
						e.AggregateType, e.AggregateID, e.Name, e.RoutingKey, e.Timestamp.Format(time.RFC3339Nano))
				}
				emit("%s", b.String())
			}
			conflicts[g] = w.conflicts
		})
	}
	wg.Wait()
	total := 0
	for g := range gs {
		if errs[g] != nil {
			return errs[g]
		}
		total += conflicts[g]
	}
	emit("done %d\n", total)
	return nil
}

// stressChildren runs the child processes of one stress test.
type stressChildren struct {
	t      *testing.T
	procs  []*stressProc
	wg     sync.WaitGroup
	waited bool
}

type stressProc struct {
	idx       int
	cmd       *exec.Cmd
	stdin     io.WriteCloser
	ready     chan error
	stderr    bytes.Buffer
	events    []evento.Event
	conflicts int
	done      bool
	parseErr  error
	waitErr   error
}

// startStressChildren starts n children writing to dsn and waits until
// each has opened the store.
func startStressChildren(t *testing.T, dsn string, n, goroutines, commits int) *stressChildren {
	t.Helper()
	cs := &stressChildren{t: t}
	for i := range n {
		p := &stressProc{idx: i, ready: make(chan error, 1)}
		cmd := exec.Command(os.Args[0], "-test.run=^$", "-test.count=1")
		cmd.Env = append(os.Environ(),
			childEnv+"=stress",
			childDSNEnv+"="+dsn,
			childProcEnv+"="+strconv.Itoa(i),
			childCommitsEnv+"="+strconv.Itoa(commits),
			childGoroutinesEnv+"="+strconv.Itoa(goroutines),
		)
		cmd.Stderr = &p.stderr
		stdin, err := cmd.StdinPipe()
		noErr(t, err, "child StdinPipe")
		stdout, err := cmd.StdoutPipe()
		noErr(t, err, "child StdoutPipe")
		if err := cmd.Start(); err != nil {
			t.Fatalf("start stress child %d (%s -test.run=^$): %v", i, os.Args[0], err)
		}
		p.cmd, p.stdin = cmd, stdin
		cs.procs = append(cs.procs, p)
		cs.wg.Go(func() {
			p.parse(stdout)
			p.waitErr = cmd.Wait()
		})
	}
	t.Cleanup(func() {
		// A test that stopped early: stop the children it started.
		if !cs.waited {
			for _, p := range cs.procs {
				p.stdin.Close()
				p.cmd.Process.Kill()
			}
		}
		cs.wg.Wait()
	})
	for _, p := range cs.procs {
		select {
		case err := <-p.ready:
			if err != nil {
				cs.wg.Wait()
				t.Fatalf("stress child %d did not start: %v\nstderr:\n%s", p.idx, err, p.stderr.String())
			}
		case <-time.After(2 * time.Minute):
			t.Fatalf("stress child %d did not open the store within 2 minutes", p.idx)
		}
	}
	return cs
}

// start tells every child to begin writing.
func (cs *stressChildren) start() {
	for _, p := range cs.procs {
		if _, err := io.WriteString(p.stdin, "go\n"); err != nil {
			cs.t.Errorf("stress child %d: send go: %v", p.idx, err)
		}
		p.stdin.Close()
	}
}

// wait waits for every child to exit and reports their failures.
func (cs *stressChildren) wait() {
	cs.wg.Wait()
	cs.waited = true
	for _, p := range cs.procs {
		if p.waitErr != nil || p.parseErr != nil || !p.done {
			cs.t.Errorf("stress child %d failed (exit: %v, output: %v, finished: %v) after acknowledging %d events; stderr:\n%s",
				p.idx, p.waitErr, p.parseErr, p.done, len(p.events), p.stderr.String())
		}
	}
}

// parse reads a child's stdout: "ready", ack lines, "done".
func (p *stressProc) parse(r io.Reader) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	readySent := false
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "ready":
			p.ready <- nil
			readySent = true
		case strings.HasPrefix(line, "ack "):
			e, err := parseAck(line)
			if err != nil && p.parseErr == nil {
				p.parseErr = err
			}
			p.events = append(p.events, e)
		case strings.HasPrefix(line, "done "):
			p.conflicts, _ = strconv.Atoi(strings.TrimPrefix(line, "done "))
			p.done = true
		default:
			if p.parseErr == nil {
				p.parseErr = fmt.Errorf("unexpected line %q", line)
			}
		}
	}
	if err := sc.Err(); err != nil && p.parseErr == nil {
		p.parseErr = err
	}
	if !readySent {
		p.ready <- fmt.Errorf("exited before it was ready (output error: %v)", p.parseErr)
	}
}

func parseAck(line string) (evento.Event, error) {
	var (
		e       evento.Event
		id, ts  string
		typ, ai string
		name, k string
	)
	if _, err := fmt.Sscanf(line, "ack %s %d %d %d %q %q %q %q %s", &id, &e.Position.Tx, &e.Position.Seq, &e.Version, &typ, &ai, &name, &k, &ts); err != nil {
		return e, fmt.Errorf("ack line %q: %w", line, err)
	}
	var err error
	if e.ID, err = ulid.ParseStrict(id); err != nil {
		return e, fmt.Errorf("ack line %q: ID: %w", line, err)
	}
	if e.Timestamp, err = time.Parse(time.RFC3339Nano, ts); err != nil {
		return e, fmt.Errorf("ack line %q: timestamp: %w", line, err)
	}
	e.Timestamp = e.Timestamp.UTC()
	e.AggregateType, e.AggregateID, e.Name, e.RoutingKey = typ, ai, name, k
	return e, nil
}
