package backup_test

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/evento-go/evento"
	"github.com/evento-go/evento/backup"
	"github.com/evento-go/evento/executor"
	_ "github.com/evento-go/evento/executor/pebble"
	_ "github.com/evento-go/evento/executor/postgres"
	"github.com/evento-go/evento/executor/postgres/postgrestest"
	_ "github.com/evento-go/evento/executor/sqlite"
	"github.com/klauspost/compress/zstd"
)

// backends are the backends that back up online.
var backends = []string{"pebble", "sqlite"}

// dsnFor returns a DSN for a new store of the backend under dir.
func dsnFor(backend, dir string) string {
	if backend == "sqlite" {
		return "sqlite:" + filepath.Join(dir, "evento.db")
	}
	return "pebble:" + filepath.Join(dir, "db")
}

func open(t testing.TB, dsn string) evento.Executor {
	t.Helper()
	x, err := executor.Open(context.Background(), dsn)
	if err != nil {
		t.Fatalf("open %s: %v", dsn, err)
	}
	t.Cleanup(func() { x.Close() })
	return x
}

// fill writes n events over 50 aggregates, in batches of 10, with payloads
// and metadata.
func fill(t testing.TB, x evento.Executor, n int) {
	t.Helper()
	for i := 0; i < n; i += 10 {
		var batch []evento.Event
		for j := i; j < i+10 && j < n; j++ {
			batch = append(batch, evento.Event{AggregateType: "b/A", AggregateID: strconv.Itoa(j % 50), Version: uint64(j/50 + 1), Name: "Did",
				Data: []byte(fmt.Sprintf("payload %d", j)), Metadata: evento.Metadata{Actor: "a" + strconv.Itoa(j%3)}})
		}
		if err := x.Write(context.Background(), batch); err != nil {
			t.Fatal(err)
		}
	}
}

func readAll(t testing.TB, x evento.Executor) []evento.Event {
	t.Helper()
	var out []evento.Event
	after := ""
	for {
		p, err := x.Read(context.Background(), evento.All().First(1000, after))
		if err != nil {
			t.Fatalf("Read: %v", err)
		}
		out = append(out, p.Events...)
		if !p.PageInfo.HasNextPage {
			return out
		}
		after = p.PageInfo.EndCursor
	}
}

func TestBackupVerifyRestore(t *testing.T) {
	for _, b := range backends {
		t.Run(b, func(t *testing.T) {
			x := open(t, dsnFor(b, t.TempDir()))
			fill(t, x, 730)
			want := readAll(t, x)
			var buf bytes.Buffer
			m, err := backup.Backup(t.Context(), x, &buf, backup.Options{})
			if err != nil {
				t.Fatalf("Backup: %v", err)
			}
			if m.Backend != b || m.Events != 730 || m.Head != want[len(want)-1].Cursor() || m.HeadPosition != want[len(want)-1].Position.String() || len(m.Files) == 0 || m.Version != backup.FormatVersion {
				t.Fatalf("manifest = %+v, want backend %s, 730 events, head %s", m, b, want[len(want)-1].Position)
			}
			vm, err := backup.Verify(t.Context(), bytes.NewReader(buf.Bytes()), t.TempDir())
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if vm.Events != m.Events || vm.Head != m.Head {
				t.Errorf("Verify manifest = %+v, want %+v", vm, m)
			}
			dst := dsnFor(b, t.TempDir())
			if _, err := backup.Restore(t.Context(), bytes.NewReader(buf.Bytes()), dst); err != nil {
				t.Fatalf("Restore: %v", err)
			}
			r := open(t, dst)
			got := readAll(t, r)
			if len(got) != len(want) {
				t.Fatalf("restored store holds %d events, want %d", len(got), len(want))
			}
			for i := range want {
				if !got[i].Equal(&want[i]) {
					t.Fatalf("restored event %d = %+v, want %+v", i, got[i], want[i])
				}
			}
			// A second restore into the same place is refused.
			if _, err := backup.Restore(t.Context(), bytes.NewReader(buf.Bytes()), dst); !errors.Is(err, backup.ErrNotEmpty) {
				t.Errorf("Restore onto a restored store = %v, want ErrNotEmpty", err)
			}
			// So is a restore as the other backend.
			other := "sqlite"
			if b == "sqlite" {
				other = "pebble"
			}
			if _, err := backup.Restore(t.Context(), bytes.NewReader(buf.Bytes()), dsnFor(other, t.TempDir())); !errors.Is(err, backup.ErrBackend) {
				t.Errorf("Restore of a %s archive as %s = %v, want ErrBackend", b, other, err)
			}
		})
	}
}

// TestBackupUnderLoad backs up while writers write, and checks that the
// restored store holds every event acknowledged before Backup was called,
// with contiguous versions, increasing positions, and accepts new writes.
func TestBackupUnderLoad(t *testing.T) {
	for _, b := range backends {
		t.Run(b, func(t *testing.T) {
			x := open(t, dsnFor(b, t.TempDir()))
			fill(t, x, 2000)
			ctx, cancel := context.WithCancel(t.Context())
			var (
				mu    sync.Mutex
				acked = map[string]evento.Event{} // by ID
				wg    sync.WaitGroup
				round atomic.Int64
			)
			for w := range 4 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for v := uint64(1); ctx.Err() == nil; v++ {
						batch := []evento.Event{{AggregateType: "load/W", AggregateID: strconv.Itoa(w), Version: v, Name: "Tick", Data: []byte(strconv.FormatUint(v, 10))}}
						if err := x.Write(ctx, batch); err != nil {
							if ctx.Err() == nil {
								t.Errorf("writer %d: %v", w, err)
							}
							return
						}
						mu.Lock()
						acked[batch[0].ID.String()] = batch[0]
						mu.Unlock()
						round.Add(1)
					}
				}()
			}
			// Let the writers get going, then record what was acknowledged
			// before the backup began.
			for round.Load() < 50 {
				if err := ctx.Err(); err != nil {
					t.Fatal(err)
				}
				runtime.Gosched()
			}
			mu.Lock()
			before := make(map[string]evento.Event, len(acked))
			for k, v := range acked {
				before[k] = v
			}
			mu.Unlock()
			base := readAll(t, x)[:2000]
			var buf bytes.Buffer
			m, err := backup.Backup(t.Context(), x, &buf, backup.Options{TempDir: t.TempDir()})
			after := round.Load()
			cancel()
			wg.Wait()
			if err != nil {
				t.Fatalf("Backup under load: %v", err)
			}
			t.Logf("%s: %d events acknowledged before the backup, %d by its end, %d in the backup", b, len(before), after, m.Events)
			dst := dsnFor(b, t.TempDir())
			if _, err := backup.Restore(t.Context(), bytes.NewReader(buf.Bytes()), dst); err != nil {
				t.Fatalf("Restore: %v", err)
			}
			r := open(t, dst)
			got := readAll(t, r)
			if int64(len(got)) != m.Events {
				t.Errorf("restored store holds %d events, the manifest says %d", len(got), m.Events)
			}
			byID := make(map[string]evento.Event, len(got))
			for i := range got {
				byID[got[i].ID.String()] = got[i]
				if i > 0 && !got[i-1].Position.Less(got[i].Position) {
					t.Fatalf("restored positions %s then %s do not increase", got[i-1].Position, got[i].Position)
				}
			}
			for i := range base {
				if !got[i].Equal(&base[i]) {
					t.Fatalf("restored event %d = %+v, want %+v", i, got[i], base[i])
				}
			}
			for id, e := range before {
				g, ok := byID[id]
				if !ok {
					t.Fatalf("event %s (%s v%d), acknowledged before the backup began, is not in the restored store", id, e.AggregateID, e.Version)
				}
				if !g.Equal(&e) {
					t.Fatalf("restored event %+v, want %+v", g, e)
				}
			}
			if head, err := r.Head(t.Context()); err != nil || head.String() != m.HeadPosition || head != got[len(got)-1].Position {
				t.Errorf("restored Head = %s, %v; want the manifest's %s, the last event's position", head, err, m.HeadPosition)
			}
			// Conformance reads: each writer's aggregate has contiguous
			// versions that agree with AggregateVersion, and the store
			// takes the next version.
			for w := range 4 {
				id := strconv.Itoa(w)
				evs, err := r.ReadAggregate(t.Context(), "load/W", id, 0, 0)
				if err != nil {
					t.Fatal(err)
				}
				for i := range evs {
					if evs[i].Version != uint64(i+1) {
						t.Fatalf("restored load/W/%s: event %d has version %d", id, i, evs[i].Version)
					}
				}
				v, err := r.AggregateVersion(t.Context(), "load/W", id)
				if err != nil || v != uint64(len(evs)) {
					t.Fatalf("restored AggregateVersion(load/W, %s) = %d, %v; want %d", id, v, err, len(evs))
				}
				if err := r.Write(t.Context(), []evento.Event{{AggregateType: "load/W", AggregateID: id, Version: v + 1, Name: "After"}}); err != nil {
					t.Fatalf("Write onto the restored store: %v", err)
				}
			}
		})
	}
}

func TestBackupNotSupported(t *testing.T) {
	x := open(t, "pebble::memory:")
	if _, err := backup.Backup(t.Context(), x, io.Discard, backup.Options{}); err == nil {
		t.Error("Backup of an in-memory Pebble store succeeded, want an error")
	}
	pg := open(t, postgrestest.DSN(t))
	if _, err := backup.Backup(t.Context(), pg, io.Discard, backup.Options{}); !errors.Is(err, backup.ErrNotSupported) {
		t.Errorf("Backup of a PostgreSQL store = %v, want ErrNotSupported", err)
	}
	if _, err := backup.Restore(t.Context(), bytes.NewReader(nil), postgrestest.BaseDSN()); !errors.Is(err, backup.ErrNotSupported) {
		t.Errorf("Restore into PostgreSQL = %v, want ErrNotSupported", err)
	}
}

// archive is a decoded backup, for tampering.
type archive struct {
	manifest backup.Manifest
	names    []string
	files    map[string][]byte
}

func decode(t *testing.T, b []byte) *archive {
	t.Helper()
	zr, err := zstd.NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	defer zr.Close()
	tr := tar.NewReader(zr)
	a := &archive{files: map[string][]byte{}}
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return a
		}
		if err != nil {
			t.Fatal(err)
		}
		data, _ := io.ReadAll(tr)
		if h.Name == "manifest.json" {
			if err := json.Unmarshal(data, &a.manifest); err != nil {
				t.Fatal(err)
			}
			continue
		}
		a.names = append(a.names, h.Name)
		a.files[h.Name] = data
	}
}

func (a *archive) encode(t *testing.T) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw, _ := zstd.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	mb, _ := json.Marshal(a.manifest)
	tw.WriteHeader(&tar.Header{Name: "manifest.json", Mode: 0o644, Size: int64(len(mb))})
	tw.Write(mb)
	for _, n := range a.names {
		tw.WriteHeader(&tar.Header{Name: n, Mode: 0o644, Size: int64(len(a.files[n]))})
		tw.Write(a.files[n])
	}
	tw.Close()
	zw.Close()
	return buf.Bytes()
}

func TestVerifyRefusals(t *testing.T) {
	x := open(t, dsnFor("sqlite", t.TempDir()))
	fill(t, x, 100)
	var buf bytes.Buffer
	if _, err := backup.Backup(t.Context(), x, &buf, backup.Options{}); err != nil {
		t.Fatal(err)
	}
	good := buf.Bytes()
	if a := decode(t, good); len(a.encode(t)) == 0 {
		t.Fatal("re-encode failed")
	}
	db := "store/evento.db"
	cases := []struct {
		name   string
		tamper func(a *archive)
		raw    []byte
		want   error
	}{
		{"not zstd", nil, []byte("not an archive at all"), backup.ErrFormat},
		{"truncated", nil, good[:len(good)/2], backup.ErrFormat},
		{"other format", func(a *archive) { a.manifest.Format = "x" }, nil, backup.ErrFormat},
		{"newer version", func(a *archive) { a.manifest.Version = backup.FormatVersion + 1 }, nil, backup.ErrFormat},
		{"flipped byte", func(a *archive) { a.files[db][len(a.files[db])/2] ^= 1 }, nil, backup.ErrChecksum},
		{"missing file", func(a *archive) { a.names = nil }, nil, backup.ErrChecksum},
		{"unlisted file", func(a *archive) { a.names = append(a.names, "store/extra"); a.files["store/extra"] = []byte("x") }, nil, backup.ErrFormat},
		{"path escape", func(a *archive) { a.manifest.Files[0].Name = "../evil" }, nil, backup.ErrFormat},
		{"wrong event count", func(a *archive) { a.manifest.Events++ }, nil, backup.ErrMismatch},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			in := c.raw
			if c.tamper != nil {
				a := decode(t, good)
				c.tamper(a)
				in = a.encode(t)
			}
			if _, err := backup.Verify(t.Context(), bytes.NewReader(in), t.TempDir()); !errors.Is(err, c.want) {
				t.Errorf("Verify = %v, want %v", err, c.want)
			}
			dst := filepath.Join(t.TempDir(), "r.db")
			if _, err := backup.Restore(t.Context(), bytes.NewReader(in), "sqlite:"+dst); !errors.Is(err, c.want) {
				t.Errorf("Restore = %v, want %v", err, c.want)
			}
			if _, err := os.Stat(dst); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("a refused Restore left %s behind (%v)", dst, err)
			}
		})
	}
}

func TestRestoreTargets(t *testing.T) {
	x := open(t, dsnFor("pebble", t.TempDir()))
	fill(t, x, 20)
	var buf bytes.Buffer
	if _, err := backup.Backup(t.Context(), x, &buf, backup.Options{}); err != nil {
		t.Fatal(err)
	}
	// An empty directory is accepted for Pebble.
	emptyDir := t.TempDir()
	if _, err := backup.Restore(t.Context(), bytes.NewReader(buf.Bytes()), "pebble:"+emptyDir); err != nil {
		t.Fatalf("Restore into an empty directory: %v", err)
	}
	if got := readAll(t, open(t, "pebble:"+emptyDir)); len(got) != 20 {
		t.Errorf("restored %d events, want 20", len(got))
	}
	// A directory with a file in it is not.
	full := t.TempDir()
	os.WriteFile(filepath.Join(full, "keep"), []byte("x"), 0o644)
	if _, err := backup.Restore(t.Context(), bytes.NewReader(buf.Bytes()), "pebble:"+full); !errors.Is(err, backup.ErrNotEmpty) {
		t.Errorf("Restore into a non-empty directory = %v, want ErrNotEmpty", err)
	}
	if b, err := os.ReadFile(filepath.Join(full, "keep")); err != nil || string(b) != "x" {
		t.Errorf("refused Restore touched the target: %q, %v", b, err)
	}
	if _, err := backup.Restore(t.Context(), bytes.NewReader(buf.Bytes()), "pebble::memory:"); err == nil {
		t.Error("Restore into pebble::memory: succeeded, want an error")
	}
}

func TestBackupFile(t *testing.T) {
	x := open(t, dsnFor("sqlite", t.TempDir()))
	fill(t, x, 30)
	p := filepath.Join(t.TempDir(), "b.evbak")
	os.WriteFile(p, []byte("old"), 0o600)
	m, err := backup.BackupFile(t.Context(), x, p, backup.Options{})
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	vm, err := backup.Verify(t.Context(), f, "")
	if err != nil || vm.Events != 30 || vm.Head != m.Head {
		t.Fatalf("Verify(BackupFile's file) = %+v, %v; want 30 events", vm, err)
	}
	if _, err := os.Stat(p + ".tmp"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("BackupFile left %s.tmp (%v)", p, err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := backup.BackupFile(ctx, x, p, backup.Options{}); !errors.Is(err, context.Canceled) {
		t.Errorf("BackupFile with a cancelled context = %v, want context.Canceled", err)
	}
	if _, err := backup.Verify(t.Context(), mustOpen(t, p), ""); err != nil {
		t.Errorf("the earlier backup no longer verifies after a failed BackupFile: %v", err)
	}
}

func mustOpen(t *testing.T, p string) io.Reader {
	t.Helper()
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}
