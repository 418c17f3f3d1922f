package snapshot_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/evento-go/evento"
	"github.com/evento-go/evento/executor/pebble"
	"github.com/evento-go/evento/snapshot"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestPolicy(t *testing.T) {
	for _, tc := range []struct {
		p        snapshot.Policy
		replayed int
		due      bool
	}{
		{snapshot.OnDemand(), 1_000_000, false},
		{snapshot.EveryN(-3), 10, false},
		{snapshot.EveryN(10), 9, false},
		{snapshot.EveryN(10), 10, true},
		{snapshot.DefaultPolicy, snapshot.DefaultEvery, true},
		{snapshot.DefaultPolicy, snapshot.DefaultEvery - 1, false},
	} {
		if got := tc.p.Due(tc.replayed); got != tc.due {
			t.Errorf("%+v.Due(%d) = %v, want %v", tc.p, tc.replayed, got, tc.due)
		}
	}
	// Keep: 0 is the bounded default, negative keeps all.
	for _, tc := range []struct {
		p     snapshot.Policy
		limit int
	}{
		{snapshot.DefaultPolicy, snapshot.DefaultKeep},
		{snapshot.OnDemand(), snapshot.DefaultKeep},
		{snapshot.EveryN(10), snapshot.DefaultKeep},
		{snapshot.Policy{Every: 1, Keep: 5}, 5},
		{snapshot.Policy{Keep: snapshot.KeepAll}, 0},
		{snapshot.Policy{Keep: -7}, 0},
	} {
		if got := tc.p.Limit(); got != tc.limit {
			t.Errorf("%+v.Limit() = %d, want %d", tc.p, got, tc.limit)
		}
	}
	ps := snapshot.Policies{"a": snapshot.EveryN(5)}
	if p, ok := ps.For("a"); !ok || p.Every != 5 {
		t.Errorf("For(a) = %+v, %v", p, ok)
	}
	if _, ok := ps.For("b"); ok {
		t.Error("For(b) found a policy")
	}
}

type revd struct{}

func (revd) SnapshotRevision() string { return "7" }

func TestRevision(t *testing.T) {
	if snapshot.Revision("ab", "c") == snapshot.Revision("a", "bc") {
		t.Error("Revision does not separate parts")
	}
	if r := snapshot.Revision("x"); r != snapshot.Revision("x") || len(r) != 16 {
		t.Errorf("Revision(x) = %q: not stable or not 16 hex digits", r)
	}
	if snapshot.Revision("x") == snapshot.Revision("y") {
		t.Error("different sources give one revision")
	}
	if got := snapshot.RevisionOf(revd{}); got != "7" {
		t.Errorf("RevisionOf = %q", got)
	}
	if got := snapshot.RevisionOf(42); got != "" {
		t.Errorf("RevisionOf(42) = %q, want none", got)
	}
}

type state struct {
	Name  string
	Items map[string]int
	List  []int
}

func TestCodec(t *testing.T) {
	in := &state{Name: "a", Items: map[string]int{"x": 1}, List: []int{1, 2}}
	b, err := snapshot.Encode(in)
	if err != nil {
		t.Fatal(err)
	}
	// Decoding replaces the whole value: nothing of the old one survives.
	out := &state{Name: "old", Items: map[string]int{"stale": 9}}
	if err := snapshot.Decode(b, out); err != nil {
		t.Fatal(err)
	}
	if out.Name != "a" || len(out.Items) != 1 || out.Items["x"] != 1 || !slices.Equal(out.List, []int{1, 2}) {
		t.Fatalf("round trip = %+v", out)
	}
	// A bad snapshot leaves the target untouched.
	keep := &state{Name: "keep", Items: map[string]int{"k": 1}}
	for _, bad := range [][]byte{{0xc1}, []byte("\xa3abc"), {0x81, 0xa4, 'N', 'a', 'm', 'e', 0x05}, nil} {
		err := snapshot.Decode(bad, keep)
		if !errors.Is(err, evento.ErrDecode) {
			t.Errorf("Decode(%x) = %v; want ErrDecode", bad, err)
		}
		if keep.Name != "keep" || len(keep.Items) != 1 {
			t.Fatalf("Decode(%x) changed the target: %+v", bad, keep)
		}
	}
	// A time keeps its instant, not its location (see the package doc):
	// UTC comes back as Local, the zero time as UTC.
	type timed struct{ At, Zero time.Time }
	utc := time.Date(2024, 6, 11, 10, 0, 0, 123, time.UTC)
	b, err = snapshot.Encode(&timed{At: utc})
	if err != nil {
		t.Fatal(err)
	}
	var tm timed
	if err := snapshot.Decode(b, &tm); err != nil {
		t.Fatal(err)
	}
	if !tm.At.Equal(utc) || tm.At.Location() != time.Local || tm.Zero != (time.Time{}) {
		t.Errorf("time round trip = %v (%v), zero %v; want %v in Local and the zero time", tm.At, tm.At.Location(), tm.Zero, utc)
	}
	var nilPtr *state
	if err := snapshot.Decode(b, nilPtr); !errors.Is(err, evento.ErrDecode) || snapshot.Decodable(nilPtr) || snapshot.Decodable(state{}) {
		t.Errorf("Decode into a nil pointer = %v", err)
	}
}

// storeWithIDs opens a Pebble store holding n aggregates of type "t/A" and
// one of type "t/B".
func storeWithIDs(t *testing.T, n int) (*pebble.Store, []string) {
	ctx := context.Background()
	s, err := pebble.OpenMemory(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	var ids []string
	var evs []evento.Event
	for i := range n {
		id := fmt.Sprintf("id-%03d", i)
		ids = append(ids, id)
		evs = append(evs, evento.Event{AggregateType: "t/A", AggregateID: id, Version: 1, Name: "E"})
	}
	evs = append(evs, evento.Event{AggregateType: "t/B", AggregateID: "zz", Version: 1, Name: "E"})
	if err := s.Write(ctx, evs); err != nil {
		t.Fatal(err)
	}
	return s, ids
}

func TestRebuild(t *testing.T) {
	s, ids := storeWithIDs(t, 23)
	ctx := context.Background()
	var seen []string
	var progress []snapshot.Progress
	boom := errors.New("boom")
	p, err := snapshot.Rebuild(ctx, s, "t/A", func(ctx context.Context, id string) error {
		seen = append(seen, id)
		if id == "id-005" || id == "id-017" {
			return boom
		}
		return nil
	}, snapshot.RebuildOptions{PageSize: 4, OnProgress: func(p snapshot.Progress) { progress = append(progress, p) }})
	if !errors.Is(err, boom) || p != (snapshot.Progress{Total: 23, Done: 23, Failed: 2}) {
		t.Fatalf("Rebuild = %+v, %v; want 23 done, 2 failed, wrapping boom", p, err)
	}
	if !slices.Equal(seen, ids) {
		t.Fatalf("visited %v, want %v", seen, ids)
	}
	if len(progress) != 23 || progress[0].Done != 1 || progress[0].Total != 23 || progress[22] != p {
		t.Fatalf("progress reports %v", progress)
	}
	// No aggregates: nothing to do.
	if p, err := snapshot.Rebuild(ctx, s, "t/None", func(context.Context, string) error { return boom }, snapshot.RebuildOptions{}); err != nil || p != (snapshot.Progress{}) {
		t.Fatalf("empty Rebuild = %+v, %v", p, err)
	}
}

func TestStartCancel(t *testing.T) {
	s, _ := storeWithIDs(t, 30)
	ctx := context.Background()
	release := make(chan struct{})
	reached := make(chan struct{})
	job := snapshot.Start(ctx, s, "t/A", func(ctx context.Context, id string) error {
		if id == "id-010" {
			close(reached)
			<-release
		}
		return nil
	}, snapshot.RebuildOptions{PageSize: 7})
	<-reached
	if p := job.Progress(); p.Done != 10 || p.Total != 30 {
		t.Fatalf("progress while blocked = %+v; want 10 of 30", p)
	}
	job.Cancel()
	close(release)
	p, err := job.Wait()
	if !errors.Is(err, context.Canceled) || p.Done != 11 {
		t.Fatalf("cancelled job = %+v, %v; want 11 done and context.Canceled", p, err)
	}
	select {
	case <-job.Done():
	default:
		t.Fatal("Done not closed after Wait")
	}
}
