package main

import (
	"bytes"
	"errors"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the generated files of testdata/src (the goldens)")

// The golden files are the generated files committed beside the testdata
// packages; package internal/gentest compiles and runs them. If they no
// longer compile, regenerate them with
//
//	go test ./cmd/evento-gen/ -run TestGolden -update
func TestGolden(t *testing.T) {
	dirs, err := filepath.Glob("testdata/src/*")
	if err != nil || len(dirs) == 0 {
		t.Fatalf("no testdata packages: %v", err)
	}
	for _, dir := range dirs {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			changed, err := generateDir(dir, *update)
			if err != nil {
				t.Fatal(err)
			}
			if len(changed) > 0 && !*update {
				t.Errorf("generated code differs from the golden files %v: run go test -run TestGolden -update and review the diff", changed)
			}
			// Determinism: two more runs give the same bytes.
			a, b := generateMem(t, dir), generateMem(t, dir)
			if len(a) == 0 {
				t.Fatal("nothing generated")
			}
			for name := range a {
				if !bytes.Equal(a[name], b[name]) {
					t.Errorf("%s: two runs differ", name)
				}
				if !bytes.HasPrefix(a[name], []byte(header+"\n\npackage ")) {
					t.Errorf("%s: no header before the package clause", name)
				}
			}
		})
	}
}

func generateMem(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	m, err := load(dir)
	if err != nil {
		t.Fatal(err)
	}
	out, err := m.generate()
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestErrors(t *testing.T) {
	cases := map[string][]string{
		"badtype": {`a.go:3:1: malformed aggregate type "bank//Account": want segments of letters, digits, _ - . separated by /`},
		"notype": {
			`a.go:3:1: //evento:aggregate on Account needs the aggregate type, e.g. //evento:aggregate bank/Account`,
			`a.go:4:6: aggregate Account has no events: declare methods func (*Account) Apply<Event>(*<Event>) error`,
		},
		"noapply": {`a.go:11:6: event Closed (marked //evento:event) has no ApplyClosed method on any aggregate`},
		"dupname": {`a.go:9:6: events Created and Opened of aggregate Account have the same name "Opened"`},
		"shared":  {`a.go:12:16: event Opened is applied by two aggregates, Account and Loan; an event belongs to one aggregate`},
		"unexported": {
			"a.go:8:2: Opened: unexported field note would silently not be stored; export it or tag it `msgpack:\"-\"`",
		},
		"unsupported": {
			`a.go:9:2: Opened.C has unsupported type chan int: msgpack cannot encode channels`,
			`a.go:10:2: Opened.F has unsupported type func(): msgpack cannot encode functions`,
			`a.go:11:2: Opened.S has unsupported type fmt.Stringer: msgpack cannot decode into an interface with methods (only any is supported)`,
			`a.go:12:2: Opened.M has unsupported type map[string]complex128: msgpack cannot encode complex128`,
		},
		"signature": {
			`a.go:10:19: Account.ApplyOpened has the wrong signature (o Opened) error; want func (*Account) ApplyOpened(*Opened) error, optionally with a second parameter *evento.Event and without the error result`,
			`a.go:11:18: Account.ApplyClosed has a value receiver; want func (*Account) ApplyClosed(*Closed) error, optionally with a second parameter *evento.Event and without the error result`,
			`a.go:12:19: Account.ApplyMoved has the wrong signature (*Moved) (bool, error); want func (*Account) ApplyMoved(*Moved) error, optionally with a second parameter *evento.Event and without the error result`,
			`a.go:13:19: Account.ApplyDiscount: no type Discount in package signature (Apply<Event> methods are reserved for events)`,
		},
		// An aggregate's snapshot keeps all of its state: every field, and
		// every field of the package's structs it holds, is stored or
		// explicitly excluded. Ledger encodes itself and is not checked.
		"snapshot": {
			"a.go:8:2: Account: unexported field total would silently not be stored in snapshots, so a load from a snapshot would see it zero; export it, or tag it `msgpack:\"-\"` with a comment saying why it need not survive a snapshot",
			"a.go:9:2: Account.Notify has unsupported type chan int: msgpack cannot encode channels; snapshots cannot store it: tag it `msgpack:\"-\"` with a comment saying why it need not survive a snapshot, or change its type",
			"a.go:11:17: Account.Meta: unexported field seen would silently not be stored in snapshots, so a load from a snapshot would see it zero; export it, or tag it `msgpack:\"-\"` with a comment saying why it need not survive a snapshot",
			`a.go:12:2: Account: embedded field Base is not supported in an aggregate by evento-gen (msgpack would inline its fields into snapshots unchecked); give the field a name`,
			"a.go:24:2: Item: unexported field price would silently not be stored in snapshots, so a load from a snapshot would see it zero; export it, or tag it `msgpack:\"-\"` with a comment saying why it need not survive a snapshot",
		},
		// The package is loaded without its tests: what they declare for
		// evento-gen would be ignored, so it is refused.
		"testfile": {
			`a_test.go:3:1: //evento:aggregate in a_test.go, a test file, which evento-gen does not read, so Loan would get no generated code; declare it in a file whose name does not end in _test.go (a package under testdata/ or internal/ can hold types only tests use)`,
			`a_test.go:8:19: Account.ApplyClosed is declared in a_test.go, a test file, which evento-gen does not read: Account.ApplyEvent would not dispatch event Closed; declare it in a file whose name does not end in _test.go`,
		},
		// One run reports every problem of every file: a malformed
		// aggregate type does not hide the problems of that aggregate's
		// events, nor those of other files.
		"multi": {
			`a.go:3:1: malformed aggregate type "bank//Account": want segments of letters, digits, _ - . separated by /`,
			"a.go:8:2: Opened: unexported field note would silently not be stored; export it or tag it `msgpack:\"-\"`",
			"b.go:6:2: Loan: unexported field total would silently not be stored in snapshots, so a load from a snapshot would see it zero; export it, or tag it `msgpack:\"-\"` with a comment saying why it need not survive a snapshot",
			`b.go:10:1: second //evento:event on Lent: a type takes one; remove this line`,
			`c.go:3:1: "// evento:aggregate bank/Card" is not a directive, because of the space after //: write //evento:aggregate`,
			"c.go:6:1: //evento:aggregate is not in the doc comment of a package-level type declaration, so it would do nothing; put it in the comment right above `type Name struct`",
			`c.go:9:1: unknown directive "//evento:agregate bank/Fee" (want //evento:aggregate or //evento:event)`,
			`c_test.go:3:1: //evento:aggregate in c_test.go, a test file, which evento-gen does not read, so Fake would get no generated code; declare it in a file whose name does not end in _test.go (a package under testdata/ or internal/ can hold types only tests use)`,
		},
		// A declaration with the name of a generated one would make the
		// generated file fail to compile with a confusing redeclaration.
		"names": {
			`a.go:11:6: DepositedHandler is declared here, and evento-gen generates the handler interface of event Deposited under that name; rename this declaration`,
			`a.go:14:6: AccountAppend is declared here, and evento-gen generates the commit builder of Account under that name; rename this declaration`,
		},
		"tags": {
			`a.go:10:2: Opened: fields A and B have the same msgpack key "a"`,
			`a.go:11:2: Opened.C: msgpack tag option "inline" is not supported by evento-gen`,
			`a.go:12:2: Opened: embedded field Inner is not supported by evento-gen (msgpack would inline it); give the field a name`,
			`a.go:13:2: Opened.D: omitempty on type any is not supported by evento-gen`,
		},
	}
	dirs, _ := filepath.Glob("testdata/errors/*")
	if len(dirs) != len(cases) {
		t.Errorf("%d error packages in testdata/errors, %d cases", len(dirs), len(cases))
	}
	for name, want := range cases {
		t.Run(name, func(t *testing.T) {
			checkErrors(t, filepath.Join("testdata/errors", name), want)
		})
	}
}

// checkErrors checks that generating the package in dir fails with the
// errors want, in this order.
func checkErrors(t *testing.T, dir string, want []string) {
	t.Helper()
	_, err := generateDir(dir, false)
	var list errorList
	if !errors.As(err, &list) {
		t.Fatalf("got %v, want a list of errors", err)
	}
	var got []string
	for _, e := range list {
		got = append(got, e.Pos.String()+": "+e.Msg)
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("errors:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// TestSyntaxErrors checks that syntax errors in several files are all
// reported (one per line, as the compiler does), with the directive
// problems, which do not need the rest of the syntax. The package is
// written at run time: CI runs gofmt on every committed .go file.
func TestSyntaxErrors(t *testing.T) {
	dir, err := os.MkdirTemp("testdata", "tmp-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	files := map[string]string{
		"a.go": "package syntax\n\ntype A struct {\n\tX int\n",
		"b.go": "package syntax\n\nfunc f() int { return 1 + }\n",
		"c.go": "package syntax\n\n//evento:aggregate bank//C\ntype C struct{}\n\n//evento:event\nvar v int\n",
	}
	for name, src := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	checkErrors(t, dir, []string{
		`a.go:4:8: expected ';', found 'EOF'`,
		`b.go:3:27: expected operand, found '}'`,
		`c.go:3:1: malformed aggregate type "bank//C": want segments of letters, digits, _ - . separated by /`,
		"c.go:6:1: //evento:event is not in the doc comment of a package-level type declaration, so it would do nothing; put it in the comment right above `type Name struct`",
	})
}

// scratch copies testdata/src/bank into a fresh package inside the module
// (under testdata, which go ./... skips) and returns its directory.
func scratch(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("testdata", "tmp-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	for _, f := range []string{"account.go"} {
		b, err := os.ReadFile(filepath.Join("testdata/src/bank", f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, f), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		t.Fatal(err)
	}
	return abs
}

var revisionRE = regexp.MustCompile(`AccountSnapshotRevision = "([0-9a-f]+)"`)

func revisionOf(t *testing.T, dir string) string {
	t.Helper()
	if _, err := generateDir(dir, true); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, "account_evento.go"))
	if err != nil {
		t.Fatal(err)
	}
	m := revisionRE.FindSubmatch(b)
	if m == nil {
		t.Fatal("no revision in generated file")
	}
	return string(m[1])
}

func edit(t *testing.T, dir, old, new string) {
	t.Helper()
	name := filepath.Join(dir, "account.go")
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(b, []byte(old)) {
		t.Fatalf("%q not in account.go", old)
	}
	if err := os.WriteFile(name, bytes.Replace(b, []byte(old), []byte(new), 1), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestSnapshotRevision(t *testing.T) {
	dir := scratch(t)
	base := revisionOf(t, dir)

	// Comments and layout do not count.
	edit(t, dir, "\ta.Balance += e.Amount\n", "\n\t// Add it.\n\ta.Balance  +=  e.Amount  // the amount\n\n")
	edit(t, dir, "// MoneyDeposited adds money.", "// MoneyDeposited adds money to the account.")
	edit(t, dir, "func (a *Account) ApplyAccountClosed(*AccountClosed) { a.Closed = true }", "func (a *Account) ApplyAccountClosed(*AccountClosed) {\n\ta.Closed = true;\n}")
	if rev := revisionOf(t, dir); rev != base {
		t.Errorf("comment and whitespace changed the revision: %s -> %s", base, rev)
	}

	steps := []struct{ what, old, new string }{
		{"an Apply body", "a.Balance  +=  e.Amount", "a.Balance += 2 * e.Amount"},
		{"an aggregate field", "\tClosed  bool\n", "\tClosed  bool\n\tFrozen  bool\n"},
		{"an event tag", "`msgpack:\"amount\"`\n\tNote", "`msgpack:\"amt\"`\n\tNote"},
		{"an event name", "//evento:event Withdrawn", "//evento:event MoneyWithdrawn"},
		{"the aggregate type", "//evento:aggregate bank/Account", "//evento:aggregate bank/Acct"},
	}
	seen := map[string]string{base: "base"}
	for _, s := range steps {
		edit(t, dir, s.old, s.new)
		rev := revisionOf(t, dir)
		if prev, dup := seen[rev]; dup {
			t.Errorf("changing %s kept revision %s (as after %s)", s.what, rev, prev)
		}
		seen[rev] = s.what
	}
}

func goCmd(t *testing.T, dir string, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command("go", args...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	return string(out), err
}

const scratchMain = `package main

import (
	"fmt"

	"github.com/evento-go/evento"
)

func main() {
	var a Account
	for i, d := range []interface {
		EventName() string
	}{AccountOpened{Owner: "ada"}, MoneyDeposited{Amount: 40, Note: "x"}, MoneyWithdrawn{Amount: 2}} {
		b, err := evento.Marshal(d)
		if err != nil {
			panic(err)
		}
		e := evento.Event{Version: uint64(i + 1), Name: d.EventName(), Data: b}
		if err := a.ApplyEvent(&e); err != nil {
			panic(err)
		}
	}
	fmt.Println(a.Owner, a.Balance, a.History, a.SnapshotRevision() == AccountSnapshotRevision)
}
`

// TestGoGenerate runs the generator the way users do, through the
// //go:generate directive, builds and runs a program using the output, and
// checks that the compile guard rejects stale generated code.
func TestGoGenerate(t *testing.T) {
	if testing.Short() {
		t.Skip("builds programs")
	}
	dir := scratch(t)
	edit(t, dir, "package bank", "package main")
	if err := os.WriteFile(filepath.Join(dir, "main.go"), []byte(scratchMain), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := goCmd(t, dir, "generate", "."); err != nil {
		t.Fatalf("go generate: %v\n%s", err, out)
	}
	out, err := goCmd(t, dir, "run", ".")
	if err != nil {
		t.Fatalf("go run: %v\n%s", err, out)
	}
	if want := "ada 38 [x withdrawn at version 3] true\n"; out != want {
		t.Errorf("program printed %q, want %q", out, want)
	}

	// The -check flag agrees that the output is current.
	var stderr bytes.Buffer
	if code := run([]string{"-dir", dir, "-check"}, &stderr, &stderr); code != 0 {
		t.Errorf("-check on fresh output: exit %d: %s", code, stderr.String())
	}

	// An event that changes shape without go generate stops compiling.
	edit(t, dir, "\tAmount int64 `msgpack:\"amount\"`\n}", "\tAmount int64 `msgpack:\"amount\"`\n\tReason string\n}")
	out, err = goCmd(t, dir, "build", "-o", os.DevNull, ".")
	if err == nil || !strings.Contains(out, "account_evento.go") || !strings.Contains(out, "MoneyWithdrawn") {
		t.Errorf("stale generated code compiled (err %v):\n%s", err, out)
	}
	stderr.Reset()
	if code := run([]string{"-dir", dir, "-check"}, &stderr, &stderr); code != 1 || !strings.Contains(stderr.String(), "not up to date") {
		t.Errorf("-check on stale output: exit %d: %s", code, stderr.String())
	}
	// Regenerating over the stale, non-compiling file works.
	if out, err := goCmd(t, dir, "generate", "."); err != nil {
		t.Fatalf("go generate over stale output: %v\n%s", err, out)
	}
	if out, err := goCmd(t, dir, "build", "-o", os.DevNull, "."); err != nil {
		t.Fatalf("build after regenerating: %v\n%s", err, out)
	}
}

func TestRunErrors(t *testing.T) {
	var out bytes.Buffer
	if code := run([]string{"-dir", "testdata/errors/badtype"}, &out, &out); code != 1 {
		t.Errorf("exit %d", code)
	}
	if want := "a.go:3:1: evento-gen: malformed aggregate type"; !strings.Contains(out.String(), want) {
		t.Errorf("output %q lacks %q", out.String(), want)
	}
	// A problem without a position (here from go list) is one line too.
	out.Reset()
	if code := run([]string{"-dir", "testdata"}, &out, &out); code != 1 {
		t.Errorf("-dir testdata: exit %d", code)
	}
	if got := out.String(); !strings.HasPrefix(got, "evento-gen: ") || !strings.Contains(got, "no Go files") || strings.Count(got, "\n") != 1 {
		t.Errorf("-dir testdata: output %q, want one line evento-gen: ... no Go files ...", got)
	}
	out.Reset()
	if code := run([]string{"extra"}, &out, &out); code != 2 {
		t.Errorf("extra argument: exit %d", code)
	}
}
