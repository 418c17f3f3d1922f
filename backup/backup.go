// Package backup takes consistent online backups of an embedded evento
// store (Pebble or SQLite) while the application goes on writing, checks
// them, and restores them into an empty location.
//
// A backup is one archive: a tar stream compressed with zstd, holding
// manifest.json first and then the store's files under store/. The
// manifest names the format version, the backend, when the backup was
// taken, the head (the last event's cursor and position), the number of
// events, and each file's size and SHA-256.
//
//	f, _ := os.Create("evento-2025-01-02.evbak")
//	m, err := backup.Backup(ctx, store, f, backup.Options{})
//	…
//	m, err = backup.Verify(ctx, archive)              // checksums, and the copy opens as a store
//	m, err = backup.Restore(ctx, archive, "pebble:/var/lib/app/restored")
//
// Backup works on the executor the application has open: it asks the
// store for a checkpoint (Checkpointer: a Pebble checkpoint, SQLite's
// VACUUM INTO), which holds every event whose Write returned before Backup
// was called, packs it and returns. An application backs its own store up
// on a schedule with BackupFile.
//
// PostgreSQL has no checkpoint here: back a PostgreSQL store up with the
// database's own tools (pg_dump -n <schema> for the schema evento uses,
// or physical backups), or export it with package transfer, the portable
// path between backends. Backup of a store that does not implement
// Checkpointer gives ErrNotSupported.
//
// The backend packages must be linked in (imported) for Backup, Verify
// and Restore to open stores of their scheme, as for executor.Open.
package backup

import (
	"archive/tar"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/evento-go/evento"
	"github.com/evento-go/evento/executor"
	"github.com/klauspost/compress/zstd"
)

// Format is the manifest's format name; FormatVersion the archive format
// version this package writes and the newest it reads.
const (
	Format        = "evento-backup"
	FormatVersion = 1
)

// manifestName is the archive's first entry; storeDir the directory of the
// store's files in it.
const (
	manifestName = "manifest.json"
	storeDir     = "store/"
)

// Errors. Every error this package returns for one of these causes wraps
// it.
var (
	// ErrNotSupported means the executor cannot take a consistent online
	// copy of itself (it does not implement Checkpointer): PostgreSQL, or
	// a wrapper. Use pg_dump or package transfer instead.
	ErrNotSupported = errors.New("backup: the store cannot be backed up online (no Checkpointer); use package transfer, or pg_dump for PostgreSQL")
	// ErrFormat means the archive is not an evento backup: not zstd, not
	// tar, no manifest first, an unknown format or newer version, an entry
	// outside the manifest.
	ErrFormat = errors.New("backup: invalid archive")
	// ErrChecksum means a file's size or SHA-256 differs from the
	// manifest's, or a file the manifest lists is missing.
	ErrChecksum = errors.New("backup: checksum mismatch")
	// ErrNotEmpty means Restore's target exists and is not an empty
	// directory.
	ErrNotEmpty = errors.New("backup: restore target is not empty")
	// ErrBackend means Restore's DSN names another backend than the
	// archive's.
	ErrBackend = errors.New("backup: restore DSN is for another backend")
	// ErrMismatch means the restored copy opened but does not hold what the
	// manifest says (head or event count).
	ErrMismatch = errors.New("backup: store content differs from the manifest")
)

// Checkpointer is implemented by executors that can write a consistent
// copy of themselves while open and written to: the Pebble and SQLite
// executors.
type Checkpointer interface {
	// Checkpoint writes a copy of the store into the directory dir, which
	// must not exist. The copy holds every event whose Write returned
	// before Checkpoint was called, and is a store the backend opens.
	Checkpoint(ctx context.Context, dir string) error
}

// Manifest describes a backup archive.
type Manifest struct {
	Format  string `json:"format"`
	Version int    `json:"version"`
	// Backend is the store's backend ("pebble", "sqlite"), the DSN scheme
	// it restores with.
	Backend   string    `json:"backend"`
	CreatedAt time.Time `json:"createdAt"`
	// Head is the cursor of the last event in the backup ("" when empty),
	// HeadPosition its position; Events the number of events.
	Head         string `json:"head,omitempty"`
	HeadPosition string `json:"headPosition"`
	Events       int64  `json:"events"`
	// Files are the store's files, in the archive's order.
	Files []File `json:"files"`
}

// File is one file of a backup.
type File struct {
	// Name is the path under the store's location, with forward slashes.
	Name   string `json:"name"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
}

// Bytes is the total size of the manifest's files.
func (m *Manifest) Bytes() int64 {
	var n int64
	for _, f := range m.Files {
		n += f.Size
	}
	return n
}

// Options configures Backup.
type Options struct {
	// TempDir is where the checkpoint is written before it is packed
	// (default os.TempDir()). On the store's own file system a Pebble
	// checkpoint hard-links its tables instead of copying them.
	TempDir string
	// Level is the zstd compression level (default zstd.SpeedDefault).
	Level zstd.EncoderLevel
	// Now gives the manifest's CreatedAt (default time.Now).
	Now func() time.Time
}

// Backup writes a consistent backup of x, which the application may be
// writing to, to w, and returns its manifest. x must implement
// Checkpointer (else ErrNotSupported). The backup holds every event whose
// Write returned before Backup was called. It checkpoints the store into a
// temporary directory, opens the copy (as Verify would) to read its head
// and count its events, then packs it; the temporary directory is removed.
func Backup(ctx context.Context, x evento.Executor, w io.Writer, opts Options) (Manifest, error) {
	cp, ok := x.(Checkpointer)
	if !ok {
		return Manifest{}, fmt.Errorf("%w: %T", ErrNotSupported, x)
	}
	now := time.Now
	if opts.Now != nil {
		now = opts.Now
	}
	m := Manifest{Format: Format, Version: FormatVersion, Backend: x.Capabilities().Name, CreatedAt: now().UTC().Truncate(time.Microsecond)}
	tmp, err := os.MkdirTemp(opts.TempDir, "evento-backup-*")
	if err != nil {
		return Manifest{}, fmt.Errorf("backup: %w", err)
	}
	defer os.RemoveAll(tmp)
	dir := filepath.Join(tmp, "store")
	if err := cp.Checkpoint(ctx, dir); err != nil {
		return Manifest{}, fmt.Errorf("backup: checkpoint: %w", err)
	}
	if err := readContent(ctx, m.Backend, dir, &m); err != nil {
		return Manifest{}, err
	}
	if m.Files, err = hashFiles(dir); err != nil {
		return Manifest{}, err
	}
	if err := pack(ctx, w, dir, &m, opts.Level); err != nil {
		return Manifest{}, err
	}
	return m, nil
}

// BackupFile writes a backup of x to the file path: into path+".tmp",
// synced, then renamed over path, so path only ever holds a complete
// backup. It is the call for an application's scheduled backups.
func BackupFile(ctx context.Context, x evento.Executor, path string, opts Options) (Manifest, error) {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return Manifest{}, fmt.Errorf("backup: %w", err)
	}
	m, err := Backup(ctx, x, f, opts)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return Manifest{}, fmt.Errorf("backup: %s: %w", path, err)
	}
	return m, nil
}

// sqliteFile is the file name the SQLite executor's Checkpoint writes
// (sqlite.CheckpointFile; not imported, so that this package links no
// backend the application does not).
const sqliteFile = "evento.db"

// location returns the DSN that opens the store whose files are in dir.
func location(backend, dir string) (string, error) {
	switch backend {
	case "pebble":
		return "pebble:" + dir, nil
	case "sqlite":
		return "sqlite:" + filepath.Join(dir, sqliteFile), nil
	}
	return "", fmt.Errorf("%w: backend %q", ErrNotSupported, backend)
}

// readContent opens the store in dir and records its head and event count
// in m.
func readContent(ctx context.Context, backend, dir string, m *Manifest) error {
	dsn, err := location(backend, dir)
	if err != nil {
		return err
	}
	x, err := executor.Open(ctx, dsn)
	if err != nil {
		return fmt.Errorf("backup: open the copy: %w", err)
	}
	defer x.Close()
	head, err := x.Head(ctx)
	if err != nil {
		return fmt.Errorf("backup: read the copy's head: %w", err)
	}
	m.HeadPosition = head.String()
	after := ""
	for {
		p, err := x.Read(ctx, evento.All().First(1000, after))
		if err != nil {
			return fmt.Errorf("backup: count the copy's events: %w", err)
		}
		m.Events += int64(len(p.Events))
		if len(p.Events) > 0 {
			m.Head = p.PageInfo.EndCursor
		}
		if !p.PageInfo.HasNextPage {
			break
		}
		after = p.PageInfo.EndCursor
	}
	if err := x.Close(); err != nil {
		return fmt.Errorf("backup: close the copy: %w", err)
	}
	return nil
}

// hashFiles lists the regular files under dir, sorted, with sizes and
// SHA-256 sums.
func hashFiles(dir string) ([]File, error) {
	var files []File
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		if !d.Type().IsRegular() {
			return fmt.Errorf("%s is not a regular file", p)
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		defer f.Close()
		h := sha256.New()
		n, err := io.Copy(h, f)
		if err != nil {
			return err
		}
		files = append(files, File{Name: filepath.ToSlash(rel), Size: n, SHA256: hex.EncodeToString(h.Sum(nil))})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("backup: hash the copy: %w", err)
	}
	sort.Slice(files, func(i, j int) bool { return files[i].Name < files[j].Name })
	return files, nil
}

// pack writes the archive: manifest.json, then each file under store/.
func pack(ctx context.Context, w io.Writer, dir string, m *Manifest, level zstd.EncoderLevel) error {
	if level == 0 {
		level = zstd.SpeedDefault
	}
	zw, err := zstd.NewWriter(w, zstd.WithEncoderLevel(level))
	if err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	defer zw.Close()
	tw := tar.NewWriter(zw)
	mb, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return fmt.Errorf("backup: manifest: %w", err)
	}
	hdr := &tar.Header{Name: manifestName, Mode: 0o644, Size: int64(len(mb)), ModTime: m.CreatedAt, Format: tar.FormatPAX}
	if err := tw.WriteHeader(hdr); err != nil {
		return fmt.Errorf("backup: write: %w", err)
	}
	if _, err := tw.Write(mb); err != nil {
		return fmt.Errorf("backup: write: %w", err)
	}
	for _, f := range m.Files {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("backup: %w", err)
		}
		if err := packFile(tw, dir, f, m.CreatedAt); err != nil {
			return err
		}
	}
	if err := tw.Close(); err != nil {
		return fmt.Errorf("backup: write: %w", err)
	}
	if err := zw.Close(); err != nil {
		return fmt.Errorf("backup: write: %w", err)
	}
	return nil
}

func packFile(tw *tar.Writer, dir string, f File, mod time.Time) error {
	src, err := os.Open(filepath.Join(dir, filepath.FromSlash(f.Name)))
	if err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	defer src.Close()
	hdr := &tar.Header{Name: storeDir + f.Name, Mode: 0o644, Size: f.Size, ModTime: mod, Format: tar.FormatPAX}
	if err := tw.WriteHeader(hdr); err != nil {
		return fmt.Errorf("backup: write %s: %w", f.Name, err)
	}
	if _, err := io.CopyN(tw, src, f.Size); err != nil {
		return fmt.Errorf("backup: write %s: %w", f.Name, err)
	}
	return nil
}

// unpack reads an archive from r into the directory dir (which exists and
// is empty), checking every file against the manifest, and returns the
// manifest.
func unpack(ctx context.Context, r io.Reader, dir string) (Manifest, error) {
	var m Manifest
	zr, err := zstd.NewReader(r)
	if err != nil {
		return m, fmt.Errorf("%w: %v", ErrFormat, err)
	}
	defer zr.Close()
	tr := tar.NewReader(zr)
	hdr, err := tr.Next()
	if err != nil {
		return m, fmt.Errorf("%w: no manifest: %v", ErrFormat, err)
	}
	if hdr.Name != manifestName || hdr.Size > 64<<20 {
		return m, fmt.Errorf("%w: first entry is %q, want %s", ErrFormat, hdr.Name, manifestName)
	}
	if err := json.NewDecoder(tr).Decode(&m); err != nil {
		return m, fmt.Errorf("%w: manifest: %v", ErrFormat, err)
	}
	if m.Format != Format {
		return m, fmt.Errorf("%w: format %q, want %q", ErrFormat, m.Format, Format)
	}
	if m.Version < 1 || m.Version > FormatVersion {
		return m, fmt.Errorf("%w: format version %d; this code reads 1 to %d", ErrFormat, m.Version, FormatVersion)
	}
	want := make(map[string]File, len(m.Files))
	for _, f := range m.Files {
		if !fs.ValidPath(f.Name) || f.Name == "." || f.Size < 0 {
			return m, fmt.Errorf("%w: manifest lists file %q", ErrFormat, f.Name)
		}
		want[f.Name] = f
	}
	for {
		if err := ctx.Err(); err != nil {
			return m, fmt.Errorf("backup: %w", err)
		}
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return m, fmt.Errorf("%w: %v", ErrFormat, err)
		}
		name, ok := strings.CutPrefix(hdr.Name, storeDir)
		f, listed := want[name]
		if !ok || !listed || hdr.Typeflag != tar.TypeReg {
			return m, fmt.Errorf("%w: entry %q is not a file the manifest lists", ErrFormat, hdr.Name)
		}
		delete(want, name)
		if err := unpackFile(tr, dir, f); err != nil {
			return m, err
		}
	}
	if len(want) > 0 {
		var missing []string
		for n := range want {
			missing = append(missing, n)
		}
		sort.Strings(missing)
		return m, fmt.Errorf("%w: missing files %s", ErrChecksum, strings.Join(missing, ", "))
	}
	return m, nil
}

func unpackFile(r io.Reader, dir string, f File) error {
	p := filepath.Join(dir, filepath.FromSlash(f.Name))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	dst, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(dst, h), r)
	if err == nil {
		err = dst.Sync()
	}
	if cerr := dst.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("backup: restore %s: %w", f.Name, err)
	}
	if sum := hex.EncodeToString(h.Sum(nil)); n != f.Size || sum != f.SHA256 {
		return fmt.Errorf("%w: %s is %d bytes with SHA-256 %s, the manifest says %d bytes, %s", ErrChecksum, f.Name, n, sum, f.Size, f.SHA256)
	}
	return nil
}

// check opens the store unpacked in dir and compares its head and count
// with the manifest's.
func check(ctx context.Context, dir string, m *Manifest) error {
	got := Manifest{}
	if err := readContent(ctx, m.Backend, dir, &got); err != nil {
		return err
	}
	if got.Events != m.Events || got.Head != m.Head || got.HeadPosition != m.HeadPosition {
		return fmt.Errorf("%w: the copy holds %d events up to %s, the manifest says %d up to %s", ErrMismatch, got.Events, got.HeadPosition, m.Events, m.HeadPosition)
	}
	return nil
}

// Verify reads an archive, checks every file's size and SHA-256 against
// the manifest, and opens the copy as a store (in a temporary directory
// under tempDir, "" for os.TempDir(), removed afterwards) to check that
// its head and event count are the manifest's. It returns the manifest.
func Verify(ctx context.Context, r io.Reader, tempDir string) (Manifest, error) {
	tmp, err := os.MkdirTemp(tempDir, "evento-verify-*")
	if err != nil {
		return Manifest{}, fmt.Errorf("backup: %w", err)
	}
	defer os.RemoveAll(tmp)
	m, err := unpack(ctx, r, tmp)
	if err != nil {
		return m, err
	}
	if err := check(ctx, tmp, &m); err != nil {
		return m, err
	}
	return m, nil
}

// Restore reads an archive and restores it as the store dsn names
// ("pebble:<dir>" or "sqlite:<file>"; options after "?" are ignored),
// which must not exist yet (an empty directory is accepted for Pebble).
// The files are checked against the manifest and the copy is opened as a
// store before it is moved into place, so a failed Restore leaves the
// target as it was. It returns the manifest.
func Restore(ctx context.Context, r io.Reader, dsn string) (Manifest, error) {
	scheme, err := executor.Scheme(dsn)
	if err != nil {
		return Manifest{}, fmt.Errorf("backup: restore: %w", err)
	}
	target := strings.TrimPrefix(dsn[len(scheme)+1:], "//")
	target, _, _ = strings.Cut(target, "?")
	if target == "" || target == ":memory:" {
		return Manifest{}, fmt.Errorf("backup: restore: DSN %q names no path", executor.Redact(dsn))
	}
	if scheme != "pebble" && scheme != "sqlite" {
		return Manifest{}, fmt.Errorf("%w: %q: only pebble and sqlite stores are restored from archives", ErrNotSupported, scheme)
	}
	final := target // what is moved into place: the directory, or the file
	if err := empty(target, scheme == "pebble"); err != nil {
		return Manifest{}, err
	}
	parent := filepath.Dir(target)
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return Manifest{}, fmt.Errorf("backup: restore: %w", err)
	}
	tmp, err := os.MkdirTemp(parent, ".evento-restore-*")
	if err != nil {
		return Manifest{}, fmt.Errorf("backup: restore: %w", err)
	}
	defer os.RemoveAll(tmp)
	m, err := unpack(ctx, r, tmp)
	if err != nil {
		return m, err
	}
	if m.Backend != scheme {
		return m, fmt.Errorf("%w: the archive is a %s store, the DSN names %s", ErrBackend, m.Backend, scheme)
	}
	if err := check(ctx, tmp, &m); err != nil {
		return m, err
	}
	if err := empty(target, scheme == "pebble"); err != nil { // again: it may have appeared meanwhile
		return m, err
	}
	switch scheme {
	case "pebble":
		os.Remove(final) // an empty directory
		err = os.Rename(tmp, final)
	case "sqlite":
		err = os.Rename(filepath.Join(tmp, sqliteFile), final)
		// Opening the copy may have left a WAL beside it: keep it with the file.
		for _, suffix := range []string{"-wal", "-shm"} {
			if err == nil {
				if _, serr := os.Stat(filepath.Join(tmp, sqliteFile+suffix)); serr == nil {
					err = os.Rename(filepath.Join(tmp, sqliteFile+suffix), final+suffix)
				}
			}
		}
	}
	if err != nil {
		return m, fmt.Errorf("backup: restore: move into place: %w", err)
	}
	return m, nil
}

// empty checks that a restore target does not exist (or, if dirOK, is an
// empty directory).
func empty(target string, dirOK bool) error {
	fi, err := os.Stat(target)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("backup: restore: %w", err)
	}
	if dirOK && fi.IsDir() {
		ents, err := os.ReadDir(target)
		if err != nil {
			return fmt.Errorf("backup: restore: %w", err)
		}
		if len(ents) == 0 {
			return nil
		}
	}
	return fmt.Errorf("%w: %s exists", ErrNotEmpty, target)
}
