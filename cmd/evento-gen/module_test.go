package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/evento-go/evento/executor/postgres/postgrestest"
)

// The fresh module of TestFreshModule: an aggregate whose replay counter is
// deliberately left out of snapshots, and a program that opens the store
// named by EVENTO_DSN as the README's quickstart does, commits, loads
// (asked to save a snapshot on load with WithSnapshotOnLoad: the default
// policy snapshots after 100 replayed events, and plain loads write
// nothing), commits more, snapshots on demand, loads again and subscribes
// with the generated typed handlers.
const (
	// The directive is spliced in so that go generate, which looks for it
	// at the start of any line of this file, does not run it here.
	freshCounter = `package main

//go:` + `generate go tool evento-gen

// Counter counts what was added.
//
//evento:aggregate shop/Counter
type Counter struct {
	Total int
	// replayed counts the events applied since the load began; it tells
	// how much a snapshot saved, so it must not survive one.
	replayed int ` + "`msgpack:\"-\"`" + `
}

// Added adds N.
type Added struct{ N int }

func (c *Counter) ApplyAdded(e *Added) {
	c.Total += e.N
	c.replayed++
}
`

	freshMain = `package main

import (
	"context"
	"fmt"
	"log"
	"os"

	"github.com/evento-go/evento"
	"github.com/evento-go/evento/aggregator"
	"github.com/evento-go/evento/executor"
	_ "github.com/evento-go/evento/executor/pebble"
	_ "github.com/evento-go/evento/executor/postgres"
	_ "github.com/evento-go/evento/executor/sqlite"
	"github.com/evento-go/evento/subscription"
)

// added is a read model of the Added events.
type added struct{ events, total int }

var _ AddedHandler = (*added)(nil)

func (a *added) OnAdded(ctx context.Context, e *evento.Event, d *Added) error {
	a.events++
	a.total += d.N
	return nil
}

func main() {
	ctx := context.Background()
	dsn := os.Getenv("EVENTO_DSN")
	if dsn == "" {
		dsn = "pebble::memory:"
	}
	exec, err := executor.Open(ctx, dsn)
	if err != nil {
		log.Fatal(err)
	}
	defer exec.Close()

	b := CounterCreate()
	for range 150 {
		b.Event(Added{N: 1})
	}
	if _, err := b.Commit(ctx, exec); err != nil {
		log.Fatal(err)
	}
	id := b.ID()
	load := func(step string) (Counter, uint64) {
		var c Counter
		v, err := aggregator.Load(ctx, exec, id, &c, aggregator.WithSnapshotOnLoad())
		if err != nil {
			log.Fatal(err)
		}
		fmt.Printf("%s: version %d, total %d, replayed %d\n", step, v, c.Total, c.replayed)
		return c, v
	}
	load("load")
	load("again")
	if _, err := CounterAppend(id, 150).Events(Added{N: 2}, Added{N: 3}).Commit(ctx, exec); err != nil {
		log.Fatal(err)
	}
	c, v := load("more")
	if err := aggregator.SaveSnapshot(ctx, exec, id, &c, v); err != nil {
		log.Fatal(err)
	}
	load("snapshot")

	rm := &added{}
	handlers, err := CounterHandlersOf(rm)
	if err != nil {
		log.Fatal(err)
	}
	if err := subscription.New("added").HandleSet(handlers).CatchUp(ctx, exec); err != nil {
		log.Fatal(err)
	}
	fmt.Printf("subscribe: %d events, total %d\n", rm.events, rm.total)
}
`

	freshWant = `load: version 150, total 150, replayed 150
again: version 150, total 150, replayed 0
more: version 152, total 155, replayed 2
snapshot: version 152, total 155, replayed 0
subscribe: 152 events, total 155
`
)

// TestFreshModule follows the documented steps in a new module outside the
// repository, which depends on evento through a replace directive to this
// checkout: go get -tool, //go:generate go tool evento-gen, go generate, go
// build, and runs the program (commit, load, snapshot, subscribe) on each
// backend: Pebble, SQLite and PostgreSQL (a subtest that skips as
// postgrestest does without a server). On the way it checks that the
// generator refuses an aggregate whose unexported field a snapshot would
// lose, at its file:line:col.
//
// It needs the module cache (warm, it takes under a minute on two cores)
// and at most the module proxy: GOPROXY is the configured proxies with
// "|off" instead of "direct", so that a proxy's refusal of a path that is
// no module (go get asks about github.com/evento-go/evento/cmd/evento-gen
// as a module too) counts as "no such module" instead of failing, and
// nothing is fetched from version control.
func TestFreshModule(t *testing.T) {
	if testing.Short() {
		t.Skip("slow: builds a fresh module outside the repository (go get -tool, go generate, go run with Pebble); run without -short")
	}
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	env := freshEnv(t)
	write := func(name, src string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, name), []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	goRun := func(args ...string) (string, error) {
		t.Helper()
		cmd := exec.Command("go", args...)
		cmd.Dir = dir
		cmd.Env = env
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	mustGo := func(args ...string) string {
		t.Helper()
		out, err := goRun(args...)
		if err != nil {
			t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return out
	}

	write("go.mod", "module example.com/shop\n\ngo 1.26\n\nrequire github.com/evento-go/evento v0.0.0\n\nreplace github.com/evento-go/evento => "+root+"\n")
	// The repository's checksums cover every module version the fresh
	// module resolves (the same graph, from evento's go.mod), so the go
	// commands need not ask the checksum database.
	sums, err := os.ReadFile(filepath.Join(root, "go.sum"))
	if err != nil {
		t.Fatal(err)
	}
	write("go.sum", string(sums))
	// The aggregate as the user wrote it: its replay counter
	// untagged, so a snapshot would silently lose it.
	write("counter.go", strings.Replace(freshCounter, "replayed int `msgpack:\"-\"`", "replayed int", 1))
	write("main.go", freshMain)

	// The documented steps.
	mustGo("get", "-tool", "github.com/evento-go/evento/cmd/evento-gen")
	if mod, err := os.ReadFile(filepath.Join(dir, "go.mod")); err != nil || !strings.Contains(string(mod), "tool github.com/evento-go/evento/cmd/evento-gen") {
		t.Fatalf("go get -tool did not add the tool directive (%v):\n%s", err, mod)
	}
	out, err := goRun("generate", "./...")
	wantErr := regexp.MustCompile(`(?m)^counter\.go:12:2: evento-gen: Counter: unexported field replayed would silently not be stored in snapshots.*tag it ` + "`" + `msgpack:"-"` + "`" + ` with a comment`)
	if err == nil || !wantErr.MatchString(out) {
		t.Fatalf("go generate with an untagged unexported aggregate field: err %v, want the snapshot error at counter.go:12:2; output:\n%s", err, out)
	}

	write("counter.go", freshCounter)
	mustGo("generate", "./...")
	if _, err := os.Stat(filepath.Join(dir, "counter_evento.go")); err != nil {
		t.Fatalf("go generate wrote no counter_evento.go: %v", err)
	}
	bin := filepath.Join(dir, "shop")
	mustGo("build", "-o", bin, ".")
	for _, b := range []struct {
		name string
		dsn  func(t testing.TB) string
	}{
		{"pebble", func(t testing.TB) string { return "pebble:" + filepath.Join(t.TempDir(), "pebble") }},
		{"sqlite", func(t testing.TB) string { return "sqlite:" + filepath.Join(t.TempDir(), "shop.db") }},
		{"postgres", postgrestest.DSN},
	} {
		t.Run(b.name, func(t *testing.T) {
			cmd := exec.Command(bin)
			cmd.Dir = dir
			cmd.Env = append(os.Environ(), "EVENTO_DSN="+b.dsn(t))
			out, err := cmd.CombinedOutput()
			if err != nil || string(out) != freshWant {
				t.Errorf("the fresh module's program on %s (%v) printed:\n%s\nwant:\n%s", b.name, err, out, freshWant)
			}
		})
	}
}

// freshEnv is the environment of the go commands run in the fresh module:
// modules may be added to go.mod and go.sum (GOFLAGS=-mod=mod), no
// workspace, the local toolchain, and the configured proxies with "|off"
// (see TestFreshModule).
func freshEnv(t *testing.T) []string {
	t.Helper()
	out, err := exec.Command("go", "env", "GOPROXY", "GOFLAGS").Output()
	if err != nil {
		t.Fatalf("go env: %v", err)
	}
	lines := strings.Split(strings.TrimRight(string(out), "\n"), "\n")
	for len(lines) < 2 {
		lines = append(lines, "")
	}
	var proxies []string
	for _, p := range strings.FieldsFunc(lines[0], func(r rune) bool { return r == ',' || r == '|' }) {
		if p != "direct" && p != "off" {
			proxies = append(proxies, p)
		}
	}
	proxy := strings.Join(append(proxies, "off"), "|")
	flags := strings.TrimSpace(lines[1] + " -mod=mod")
	return append(os.Environ(), "GOPROXY="+proxy, "GOFLAGS="+flags, "GOWORK=off", "GOTOOLCHAIN=local")
}
