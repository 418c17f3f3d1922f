package pebble

import (
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	pdb "github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/cockroachdb/pebble/v2/vfs/errorfs"
	"github.com/evento-go/evento"
)

// walFaults fails writes and syncs of Pebble's WAL files once switched on.
type walFaults struct {
	on  atomic.Bool
	hit atomic.Int64
}

func (w *walFaults) String() string { return "wal faults" }

func (w *walFaults) MaybeError(op errorfs.Op) error {
	if !w.on.Load() || !strings.HasSuffix(op.Path, ".log") {
		return nil
	}
	switch op.Kind {
	case errorfs.OpFileWrite, errorfs.OpFileWriteAt, errorfs.OpFileSync, errorfs.OpFileSyncData, errorfs.OpFileSyncTo, errorfs.OpFileFlush:
		w.hit.Add(1)
		return errorfs.ErrInjected
	}
	return nil
}

// wantFailed checks that err is the Store's failure.
func wantFailed(t *testing.T, what string, err error) {
	t.Helper()
	if !errors.Is(err, ErrFailed) || !errors.Is(err, evento.ErrClosed) || !errors.Is(err, errorfs.ErrInjected) {
		t.Errorf("%s after a failed commit = %v, want ErrFailed, ErrClosed and the injected cause", what, err)
	}
}

// TestCommitFailureStopsStore injects WAL write and sync failures under
// concurrent writers: the writes of the failed commit fail, every later
// call (writes, reads, snapshots, subscribers) returns the failure, Close
// returns, and the reopened database holds every acknowledged write and no
// refused one.
func TestCommitFailureStopsStore(t *testing.T) {
	t.Run("DefaultLogger", func(t *testing.T) { testCommitFailure(t, nil) })
	// A logger whose Fatalf returns: Pebble's Apply would then report
	// success; the Store's wrapper makes it fail.
	t.Run("ReturningLogger", func(t *testing.T) { testCommitFailure(t, &returningLogger{}) })
}

// returningLogger is a Pebble logger whose Fatalf returns.
type returningLogger struct{ fatals atomic.Int64 }

func (*returningLogger) Infof(string, ...any)    {}
func (*returningLogger) Errorf(string, ...any)   {}
func (l *returningLogger) Fatalf(string, ...any) { l.fatals.Add(1) }

func testCommitFailure(t *testing.T, logger *returningLogger) {
	mem := vfs.NewMem()
	faults := &walFaults{}
	ctx := t.Context()
	po := &pdb.Options{FS: errorfs.Wrap(mem, faults)}
	if logger != nil {
		po.Logger = logger
	}
	s, err := Open(ctx, "db", WithPebbleOptions(po))
	if err != nil {
		t.Fatal(err)
	}
	before := mustWrite(t, s, ev("F", "a", 1, "Created", "rk"))

	faults.on.Store(true)
	const writers = 8
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		acked []evento.Event
	)
	for w := range writers {
		wg.Go(func() {
			id := string(rune('b' + w))
			for v := uint64(1); ; v++ {
				e := []evento.Event{ev("F", id, v, "Tick", "")}
				err := s.Write(ctx, e)
				if err != nil {
					wantFailed(t, "Write", err)
					return
				}
				mu.Lock()
				acked = append(acked, e...)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if faults.hit.Load() == 0 {
		t.Fatal("no fault injected")
	}
	if len(acked) > 0 {
		t.Errorf("%d writes acknowledged after the WAL failed", len(acked))
	}
	if logger != nil && logger.fatals.Load() == 0 {
		t.Error("the caller's logger did not see Pebble's Fatalf")
	}

	_, err = s.Head(ctx)
	wantFailed(t, "Head", err)
	_, err = s.Read(ctx, evento.All())
	wantFailed(t, "Read", err)
	_, err = s.ReadAggregate(ctx, "F", "a", 0, 0)
	wantFailed(t, "ReadAggregate", err)
	_, err = s.AggregateVersion(ctx, "F", "a")
	wantFailed(t, "AggregateVersion", err)
	_, err = s.AggregateIDs(ctx, "F", "", 0)
	wantFailed(t, "AggregateIDs", err)
	wantFailed(t, "Write", s.Write(ctx, []evento.Event{ev("F", "a", 2, "Renamed", "")}))
	wantFailed(t, "SaveSnapshot", s.SaveSnapshot(ctx, evento.Snapshot{AggregateType: "F", AggregateID: "a", Revision: "r", Version: 1}))
	_, err = s.LoadSnapshot(ctx, "F", "r", "a", 0)
	wantFailed(t, "LoadSnapshot", err)
	_, err = s.ClaimLease(ctx, "sub", 0, "w1", 1e9)
	wantFailed(t, "ClaimLease", err)

	// Close returns (Pebble may report the WAL error again).
	if err := s.Close(); err != nil {
		t.Logf("Close after failure: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}

	// What was acknowledged is there; nothing refused is.
	faults.on.Store(false)
	s2, err := Open(ctx, "db", WithPebbleOptions(&pdb.Options{FS: mem}))
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	p, err := s2.Read(ctx, evento.All())
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Events) != 1 || p.Events[0].ID != before[0].ID {
		t.Fatalf("reopened store holds %d events, want only the acknowledged one", len(p.Events))
	}
	// The store works again.
	mustWrite(t, s2, ev("F", "a", 2, "Renamed", ""))
}

// TestCommitFailureDatabaseClosedUnderStore closes the caller's database
// under a Store made with New: the committer's commit panics inside Pebble,
// and the Store fails instead of crashing the process or reusing the batch.
func TestCommitFailureDatabaseClosedUnderStore(t *testing.T) {
	db, err := pdb.Open("", &pdb.Options{FS: vfs.NewMem(), Logger: quietLogger{newConfig(nil).logger}})
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(db)
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	mustWrite(t, s, ev("F", "a", 1, "Created", ""))
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	err = s.Write(ctx, []evento.Event{ev("F", "a", 2, "Renamed", "")})
	if !errors.Is(err, ErrFailed) || !errors.Is(err, evento.ErrClosed) || !errors.Is(err, pdb.ErrClosed) {
		t.Fatalf("Write on a closed database = %v, want ErrFailed wrapping pebble.ErrClosed", err)
	}
	for i := range 3 {
		if err := s.Write(ctx, []evento.Event{ev("F", "b", uint64(i+1), "Created", "")}); !errors.Is(err, ErrFailed) {
			t.Fatalf("later Write = %v, want ErrFailed", err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
}
