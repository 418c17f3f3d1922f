package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/evento-go/evento"
	"github.com/evento-go/evento/backup"
	"github.com/evento-go/evento/executor"
	"github.com/evento-go/evento/executor/postgres/postgrestest"
)

// storeEvents reads every event of the store dsn names.
func storeEvents(t *testing.T, dsn string) []evento.Event {
	t.Helper()
	x, err := executor.Open(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer x.Close()
	p, err := x.Read(context.Background(), evento.All().First(1000, ""))
	if err != nil {
		t.Fatal(err)
	}
	return p.Events
}

// sameLog checks that got holds want's events, positions aside.
func sameLog(t *testing.T, what string, got, want []evento.Event) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d events, want %d", what, len(got), len(want))
	}
	for i := range want {
		g, w := got[i], want[i]
		g.Position, w.Position = evento.Position{}, evento.Position{}
		if !g.Equal(&w) {
			t.Errorf("%s: event %d = %+v, want %+v", what, i, g, w)
		}
	}
}

func TestCLIExportImport(t *testing.T) {
	src := seed(t)
	want := storeEvents(t, src)
	dir := t.TempDir()
	file := filepath.Join(dir, "all.jsonl")

	out, errOut, code := cli(t, "--dsn", src, "export", file)
	if code != 0 || out != "" || !strings.Contains(errOut, "exported 3 events") || !strings.Contains(errOut, "last cursor: "+want[2].Cursor()) {
		t.Fatalf("export: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	// An existing file is never overwritten.
	if _, errOut, code := cli(t, "--dsn", src, "export", file); code != 1 || !strings.Contains(errOut, "exists") {
		t.Errorf("export onto an existing file: exit %d, stderr %q; want 1, 'exists'", code, errOut)
	}
	// To standard output, quiet.
	stdout, errOut, code := cli(t, "--dsn", src, "export", "-q", "--type", "bank/Account")
	data, _ := os.ReadFile(file)
	if code != 0 || errOut != "" || !strings.HasPrefix(stdout, `{"format":"evento-export","version":1,"backend":"pebble"`) ||
		len(strings.Split(strings.TrimSpace(stdout), "\n")) != 5 {
		t.Errorf("export -q to stdout: exit %d, stderr %q, stdout %q", code, errOut, stdout)
	}
	// --after resumes after a cursor.
	rest, _, code := cli(t, "--dsn", src, "export", "-q", "--after", want[0].Cursor())
	if code != 0 || strings.Count(rest, `"id":`) != 2 {
		t.Errorf("export --after the first cursor: exit %d, %d event lines, want 2:\n%s", code, strings.Count(rest, `"id":`), rest)
	}

	// Into a new SQLite store, from a file.
	dst := "sqlite:" + filepath.Join(dir, "new.db")
	_, errOut, code = cli(t, "--dsn", dst, "import", file)
	if code != 0 || !strings.Contains(errOut, "imported 3 events") {
		t.Fatalf("import: exit %d, stderr %q", code, errOut)
	}
	sameLog(t, "imported store", storeEvents(t, dst), want)
	// A non-empty store is refused without --append, and with it the
	// versions still conflict.
	if _, errOut, code := cli(t, "--dsn", dst, "import", file); code != 1 || !strings.Contains(errOut, "not empty") || !strings.Contains(errOut, "--append") {
		t.Errorf("import into a non-empty store: exit %d, stderr %q; want 1 naming --append", code, errOut)
	}
	if _, errOut, code := cli(t, "--dsn", dst, "import", "--append", file); code != 1 || !strings.Contains(errOut, "version conflict") {
		t.Errorf("import --append of the same events: exit %d, stderr %q; want 1, a version conflict", code, errOut)
	}
	// --resume of a finished import imports nothing.
	if _, errOut, code := cli(t, "--dsn", dst, "import", "--resume", file); code != 0 || !strings.Contains(errOut, "imported 0 events") || !strings.Contains(errOut, "skipped 3") {
		t.Errorf("import --resume: exit %d, stderr %q", code, errOut)
	}
	sameLog(t, "store after the refusals", storeEvents(t, dst), want)

	// From standard input, into Pebble.
	dst2 := "pebble:" + filepath.Join(dir, "p")
	var sout, serr strings.Builder
	if code := run(context.Background(), []string{"--dsn", dst2, "import", "-q"}, strings.NewReader(string(data)), &sout, &serr); code != 0 || serr.String() != "" {
		t.Fatalf("import from stdin: exit %d, stderr %q", code, serr.String())
	}
	sameLog(t, "store imported from stdin", storeEvents(t, dst2), want)

	// Damaged input: exit 1 with the line.
	bad := filepath.Join(dir, "bad.jsonl")
	os.WriteFile(bad, []byte(strings.Replace(string(data), `"version":1,"name"`, `"version":"x","name"`, 1)), 0o644)
	if _, errOut, code := cli(t, "--dsn", "sqlite:"+filepath.Join(dir, "b.db"), "import", bad); code != 1 || !strings.Contains(errOut, "line 2") {
		t.Errorf("import of a damaged file: exit %d, stderr %q; want 1 naming line 2", code, errOut)
	}
	// Usage and missing inputs.
	if _, _, code := cli(t, "--dsn", dst, "import", "--batch", "-1", file); code != 2 {
		t.Errorf("import --batch -1: exit %d, want 2", code)
	}
	if _, _, code := cli(t, "--dsn", dst, "import", "a", "b"); code != 2 {
		t.Errorf("import with two files: exit %d, want 2", code)
	}
	if _, _, code := cli(t, "--dsn", dst, "import", filepath.Join(dir, "missing.jsonl")); code != 1 {
		t.Errorf("import of a missing file: exit %d, want 1", code)
	}
	if _, _, code := cli(t, "--dsn", "pebble:"+filepath.Join(dir, "none"), "export"); code != 1 {
		t.Errorf("export of a missing store: exit %d, want 1", code)
	}
	if _, _, code := cli(t, "--dsn", src, "export", "--page-size", "-3"); code != 2 {
		t.Errorf("export --page-size -3: exit %d, want 2", code)
	}
}

func TestCLIBackupVerifyRestore(t *testing.T) {
	dir := t.TempDir()
	// A SQLite store (seed makes Pebble; export/import it).
	src := "sqlite:" + filepath.Join(dir, "src.db")
	stdout, _, code := cli(t, "--dsn", seed(t), "export", "-q")
	if code != 0 {
		t.Fatal("export failed")
	}
	var sout, serr strings.Builder
	if code := run(context.Background(), []string{"--dsn", src, "import", "-q"}, strings.NewReader(stdout), &sout, &serr); code != 0 {
		t.Fatalf("import: %s", serr.String())
	}
	want := storeEvents(t, src)

	arch := filepath.Join(dir, "a.evbak")
	_, errOut, code := cli(t, "--dsn", src, "backup", arch)
	if code != 0 || !strings.Contains(errOut, "backed up 3 events to "+arch) {
		t.Fatalf("backup: exit %d, stderr %q", code, errOut)
	}
	if _, errOut, code := cli(t, "--dsn", src, "backup", arch); code != 1 || !strings.Contains(errOut, "exists") {
		t.Errorf("backup onto an existing file: exit %d, stderr %q", code, errOut)
	}
	out, errOut, code := cli(t, "verify", arch)
	if code != 0 || !strings.HasPrefix(out, "ok: "+arch+": sqlite store, 3 events") {
		t.Errorf("verify: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	out, _, code = cli(t, "verify", "--json", arch)
	var m backup.Manifest
	if code != 0 || json.Unmarshal([]byte(out), &m) != nil || m.Events != 3 || m.Head != want[2].Cursor() || len(m.Files) == 0 {
		t.Errorf("verify --json: exit %d, %q", code, out)
	}

	dst := "sqlite:" + filepath.Join(dir, "restored.db")
	if _, errOut, code := cli(t, "--dsn", dst, "restore", arch); code != 0 || !strings.Contains(errOut, "restored 3 events from") {
		t.Fatalf("restore: exit %d, stderr %q", code, errOut)
	}
	sameLog(t, "restored store", storeEvents(t, dst), want)
	if _, errOut, code := cli(t, "--dsn", dst, "restore", arch); code != 1 || !strings.Contains(errOut, "not empty") {
		t.Errorf("restore onto an existing store: exit %d, stderr %q", code, errOut)
	}
	if _, errOut, code := cli(t, "--dsn", "pebble:"+filepath.Join(dir, "p"), "restore", arch); code != 1 || !strings.Contains(errOut, "another backend") {
		t.Errorf("restore as another backend: exit %d, stderr %q", code, errOut)
	}

	// A damaged archive fails verify and restore.
	b, _ := os.ReadFile(arch)
	b[len(b)/2] ^= 0xff
	damaged := filepath.Join(dir, "damaged.evbak")
	os.WriteFile(damaged, b, 0o644)
	if _, _, code := cli(t, "verify", damaged); code != 1 {
		t.Errorf("verify of a damaged archive: exit %d, want 1", code)
	}
	if _, _, code := cli(t, "--dsn", "sqlite:"+filepath.Join(dir, "d.db"), "restore", damaged); code != 1 {
		t.Errorf("restore of a damaged archive: exit %d, want 1", code)
	}
	if _, err := os.Stat(filepath.Join(dir, "d.db")); !os.IsNotExist(err) {
		t.Errorf("a refused restore left d.db behind (%v)", err)
	}
	// Usage and refusals.
	for _, args := range [][]string{{"backup"}, {"verify"}, {"restore"}, {"verify", "a", "b"}} {
		if _, _, code := cli(t, args...); code != 2 {
			t.Errorf("evento %s: exit %d, want 2", strings.Join(args, " "), code)
		}
	}
	if _, errOut, code := cli(t, "verify", filepath.Join(dir, "missing")); code != 1 || errOut == "" {
		t.Errorf("verify of a missing file: exit %d", code)
	}
	if _, _, code := cli(t, "--dsn", "sqlite:"+filepath.Join(dir, "none.db"), "backup", filepath.Join(dir, "n.evbak")); code != 1 {
		t.Errorf("backup of a missing store: exit %d, want 1", code)
	}
	pg := postgrestest.DSN(t)
	x, err := executor.Open(context.Background(), pg)
	if err != nil {
		t.Fatal(err)
	}
	x.Close()
	if _, errOut, code := cli(t, "--dsn", pg, "backup", filepath.Join(dir, "pg.evbak")); code != 1 || !strings.Contains(errOut, "pg_dump") {
		t.Errorf("backup of a PostgreSQL store: exit %d, stderr %q; want 1 naming pg_dump", code, errOut)
	}
}
