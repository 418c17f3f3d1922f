package aggregator_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/evento-go/evento"
	"github.com/evento-go/evento/aggregator"
	"github.com/evento-go/evento/snapshot"
)

// commitOneByOne commits data to a new counter, one event per commit, and
// returns its id and the stored events.
func commitOneByOne(t *testing.T, s aggregator.Store, data []aggregator.EventData) (string, []evento.Event) {
	t.Helper()
	ctx := context.Background()
	b := aggregator.Create(counterType)
	var all []evento.Event
	for _, d := range data {
		if _, err := b.Event(d).Commit(ctx, s); err != nil {
			t.Fatalf("commit: %v", err)
		}
		all = append(all, b.Committed()...)
	}
	return b.ID(), all
}

func adds(n int) []aggregator.EventData {
	out := make([]aggregator.EventData, n)
	for i := range out {
		out[i] = Added{N: int64(i%7 + 1)}
	}
	return out
}

// logBuffer is a concurrency-safe slog destination.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

func newLog() (*logBuffer, *slog.Logger) {
	b := &logBuffer{}
	return b, slog.New(slog.NewTextHandler(b, nil))
}

func TestLoadNotFound(t *testing.T) {
	eachBackend(t, func(t *testing.T, s aggregator.Store) {
		v, err := aggregator.Load(context.Background(), s, "nope", newCounter())
		if !errors.Is(err, evento.ErrNotFound) || v != 0 {
			t.Fatalf("Load of a missing aggregate = %d, %v; want 0, ErrNotFound", v, err)
		}
	})
}

func TestLoadSnapshotPolicy(t *testing.T) {
	eachBackend(t, func(t *testing.T, s aggregator.Store) {
		ctx := context.Background()
		data := adds(25)
		id, _ := commitOneByOne(t, s, data)
		every := aggregator.WithPolicy(snapshot.EveryN(10))

		// A plain load only reads, even when a snapshot is due.
		c := newCounter()
		if info, err := aggregator.LoadWithInfo(ctx, s, id, c, every); err != nil ||
			info != (aggregator.LoadInfo{Version: 25, Replayed: 25}) || c.applied != 25 {
			t.Fatalf("plain LoadWithInfo = %+v, %v, applied %d", info, err, c.applied)
		}
		if _, err := s.LoadSnapshot(ctx, counterType, "r1", id, 0); !errors.Is(err, evento.ErrNotFound) {
			t.Fatalf("a plain load saved a snapshot: %v", err)
		}
		onLoad := aggregator.WithSnapshotOnLoad()

		c = newCounter()
		if info, err := aggregator.LoadWithInfo(ctx, s, id, c, every, onLoad); err != nil ||
			info != (aggregator.LoadInfo{Version: 25, Replayed: 25, SnapshotSaved: true}) {
			t.Fatalf("LoadWithInfo(WithSnapshotOnLoad) = %+v, %v", info, err)
		}
		if c.applied != 25 || c.state() != model(id, data) {
			t.Fatalf("first load applied %d, state %+v", c.applied, c.state())
		}
		snap, err := s.LoadSnapshot(ctx, counterType, "r1", id, 0)
		if err != nil || snap.Version != 25 {
			t.Fatalf("snapshot after load: v%d, %v; want v25", snap.Version, err)
		}
		// The next load starts from the snapshot.
		c = newCounter()
		if info, err := aggregator.LoadWithInfo(ctx, s, id, c, every, onLoad); err != nil || c.applied != 0 || c.state() != model(id, data) ||
			info != (aggregator.LoadInfo{Version: 25, FromSnapshot: true, SnapshotVersion: 25}) {
			t.Fatalf("load from snapshot: %+v applied %d err %v", info, c.applied, err)
		}
		// A short tail is replayed and does not trigger a new snapshot.
		more := adds(5)
		b := aggregator.Append(counterType, id, 25).Events(more...)
		if _, err := b.Commit(ctx, s); err != nil {
			t.Fatal(err)
		}
		c = newCounter()
		if info, err := aggregator.LoadWithInfo(ctx, s, id, c, every, onLoad); err != nil || c.applied != 5 || c.state() != model(id, append(data, more...)) ||
			info != (aggregator.LoadInfo{Version: 30, FromSnapshot: true, SnapshotVersion: 25, Replayed: 5}) {
			t.Fatalf("load with tail: %+v applied %d err %v", info, c.applied, err)
		}
		if snap, _ := s.LoadSnapshot(ctx, counterType, "r1", id, 0); snap.Version != 25 {
			t.Fatalf("a 5-event tail saved a snapshot at v%d under EveryN(10)", snap.Version)
		}
		// Without snapshots, everything is replayed.
		c = newCounter()
		if _, err := aggregator.Load(ctx, s, id, c, aggregator.WithoutSnapshots()); err != nil || c.applied != 30 {
			t.Fatalf("WithoutSnapshots: applied %d, %v", c.applied, err)
		}
		// On demand: SaveSnapshot at a chosen version.
		c = newCounter()
		if _, err := aggregator.Load(ctx, s, id, c, aggregator.WithoutSnapshots()); err != nil {
			t.Fatal(err)
		}
		if err := aggregator.SaveSnapshot(ctx, s, id, c, 30); err != nil {
			t.Fatal(err)
		}
		c = newCounter()
		if _, err := aggregator.Load(ctx, s, id, c, aggregator.WithPolicy(snapshot.OnDemand())); err != nil || c.applied != 0 {
			t.Fatalf("load after SaveSnapshot: applied %d, %v", c.applied, err)
		}
	})
}

func TestLoadAtAndTime(t *testing.T) {
	eachBackend(t, func(t *testing.T, s aggregator.Store) {
		ctx := context.Background()
		data := []aggregator.EventData{Added{N: 3}, Renamed{Name: "a"}, Multiplied{By: 4}, Added{N: -2}, Renamed{Name: "bc"}, Multiplied{By: 3}}
		id, events := commitOneByOne(t, s, data)
		for v := 1; v <= len(data); v++ {
			c := newCounter()
			got, err := aggregator.LoadAt(ctx, s, id, c, uint64(v))
			if err != nil || got != uint64(v) || c.state() != model(id, data[:v]) {
				t.Fatalf("LoadAt(%d) = %d, %v, state %+v; want %+v", v, got, err, c.state(), model(id, data[:v]))
			}
			// At the event's own timestamp: the last version stamped at or
			// before it (commits may share a microsecond).
			want := 0
			for i, e := range events {
				if !e.Timestamp.After(events[v-1].Timestamp) {
					want = i + 1
				}
			}
			c = newCounter()
			got, err = aggregator.LoadAtTime(ctx, s, id, c, events[v-1].Timestamp)
			if err != nil || got != uint64(want) || c.state() != model(id, data[:want]) {
				t.Fatalf("LoadAtTime(ts of v%d) = %d, %v; want %d", v, got, err, want)
			}
		}
		for _, v := range []uint64{0, uint64(len(data) + 1)} {
			if _, err := aggregator.LoadAt(ctx, s, id, newCounter(), v); !errors.Is(err, evento.ErrNotFound) {
				t.Errorf("LoadAt(%d) = %v; want ErrNotFound", v, err)
			}
		}
		if _, err := aggregator.LoadAtTime(ctx, s, id, newCounter(), events[0].Timestamp.Add(-time.Microsecond)); !errors.Is(err, evento.ErrNotFound) {
			t.Errorf("LoadAtTime before the first event = %v; want ErrNotFound", err)
		}
		if v, err := aggregator.LoadAtTime(ctx, s, id, newCounter(), time.Now().Add(time.Hour)); err != nil || v != uint64(len(data)) {
			t.Errorf("LoadAtTime in the future = %d, %v; want the head", v, err)
		}
		if _, err := aggregator.LoadAtTime(ctx, s, "missing", newCounter(), time.Now()); !errors.Is(err, evento.ErrNotFound) {
			t.Errorf("LoadAtTime of a missing aggregate = %v; want ErrNotFound", err)
		}
	})
}

func TestLoadIgnoresBadSnapshots(t *testing.T) {
	eachBackend(t, func(t *testing.T, s aggregator.Store) {
		ctx := context.Background()
		data := adds(12)
		id, events := commitOneByOne(t, s, data)
		good, err := snapshot.Encode(&counter{Sum: 999})
		if err != nil {
			t.Fatal(err)
		}
		cases := []struct {
			name, reason string
			snap         evento.Snapshot
		}{
			{"garbage", "does not decode", evento.Snapshot{Version: 12, Cursor: events[11].Cursor(), Data: []byte{0xc1, 0xff, 0x00}}},
			{"wrong shape", "does not decode", evento.Snapshot{Version: 12, Cursor: events[11].Cursor(), Data: []byte("\xa5hello")}},
			{"past the events", "past the stored events", evento.Snapshot{Version: 40, Data: good}},
			{"foreign cursor", "another event", evento.Snapshot{Version: 12, Cursor: events[3].Cursor(), Data: good}},
			{"bad cursor", "cursor does not decode", evento.Snapshot{Version: 12, Cursor: "!!", Data: good}},
		}
		for i, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				rev := "bad" + string(rune('a'+i))
				tc.snap.AggregateType, tc.snap.AggregateID, tc.snap.Revision = counterType, id, rev
				if err := s.SaveSnapshot(ctx, tc.snap); err != nil {
					t.Fatal(err)
				}
				logs, logger := newLog()
				c := newCounter()
				v, err := aggregator.Load(ctx, s, id, c, aggregator.WithRevision(rev), aggregator.WithLogger(logger), aggregator.WithPolicy(snapshot.OnDemand()))
				if err != nil || v != 12 || c.state() != model(id, data) || c.applied != 12 {
					t.Fatalf("Load = v%d, %v, applied %d; want a full replay to v12", v, err, c.applied)
				}
				if out := logs.String(); !strings.Contains(out, "level=WARN") || !strings.Contains(out, tc.reason) {
					t.Fatalf("log %q; want a warning mentioning %q", out, tc.reason)
				}
			})
		}
	})
}

func TestRevisionChangeIgnoresOldSnapshots(t *testing.T) {
	eachBackend(t, func(t *testing.T, s aggregator.Store) {
		ctx := context.Background()
		data := adds(8)
		id, _ := commitOneByOne(t, s, data)
		// A snapshot under r1 with a state the events never produce.
		if err := aggregator.SaveSnapshot(ctx, s, id, &counter{Sum: -1}, 8); err != nil {
			t.Fatal(err)
		}
		c := newCounter()
		if _, err := aggregator.Load(ctx, s, id, c); err != nil || c.Sum != -1 {
			t.Fatalf("under r1 the snapshot is used: sum %d, %v", c.Sum, err)
		}
		c = newCounter()
		if _, err := aggregator.Load(ctx, s, id, c, aggregator.WithRevision("r2")); err != nil || c.state() != model(id, data) || c.applied != 8 {
			t.Fatalf("under r2: state %+v applied %d, %v; want a full replay", c.state(), c.applied, err)
		}
	})
}

func TestRebuildSnapshots(t *testing.T) {
	eachBackend(t, testRebuildSnapshots)
}

func testRebuildSnapshots(t *testing.T, s aggregator.Store) {
	ctx := context.Background()
	const n = 12
	ids := map[string][]aggregator.EventData{}
	for i := range n {
		data := adds(i%4 + 1)
		id, _ := commitOneByOne(t, s, data)
		ids[id] = data
	}
	// Another type is not touched.
	if _, err := aggregator.Append("test/Other", "o1", 0).Event(foreign{}).Commit(ctx, s); err != nil {
		t.Fatal(err)
	}
	r2 := aggregator.WithRevision("r2")

	// Cancelled part way.
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	p, err := aggregator.RebuildSnapshots(cctx, s, newCounter, r2, aggregator.WithRebuildOptions(snapshot.RebuildOptions{
		PageSize: 5,
		OnProgress: func(p snapshot.Progress) {
			if p.Done == 4 {
				cancel()
			}
		},
	}))
	if !errors.Is(err, context.Canceled) || p.Done != 4 || p.Total != n {
		t.Fatalf("cancelled rebuild = %+v, %v; want 4 of %d done and context.Canceled", p, err, n)
	}

	// In the background, to the end.
	var seen []snapshot.Progress
	job, err := aggregator.StartRebuild(ctx, s, newCounter, r2, aggregator.WithRebuildOptions(snapshot.RebuildOptions{
		PageSize:   5,
		OnProgress: func(p snapshot.Progress) { seen = append(seen, p) },
	}))
	if err != nil {
		t.Fatal(err)
	}
	p, err = job.Wait()
	if err != nil || p.Done != n || p.Total != n || p.Failed != 0 {
		t.Fatalf("rebuild = %+v, %v; want %d done", p, err, n)
	}
	if len(seen) != n || seen[n-1] != p || job.Progress() != p {
		t.Fatalf("progress reports %v, job %+v; want %d ending at %+v", seen, job.Progress(), n, p)
	}
	for id, data := range ids {
		snap, err := s.LoadSnapshot(ctx, counterType, "r2", id, 0)
		if err != nil || snap.Version != uint64(len(data)) {
			t.Fatalf("%s: r2 snapshot v%d, %v; want v%d", id, snap.Version, err, len(data))
		}
		c := newCounter()
		if _, err := aggregator.Load(ctx, s, id, c, r2); err != nil || c.applied != 0 || c.state() != model(id, data) {
			t.Fatalf("%s: load after rebuild applied %d, %v", id, c.applied, err)
		}
	}
	// Without a revision there is nothing to rebuild.
	if _, err := aggregator.RebuildSnapshots(ctx, s, newCounter, aggregator.WithRevision("")); err == nil {
		t.Fatal("RebuildSnapshots without a revision succeeded")
	}
}

func TestPolicyKeepPrunes(t *testing.T) {
	eachBackend(t, func(t *testing.T, s aggregator.Store) {
		ctx := context.Background()
		id, _ := commitOneByOne(t, s, adds(3))
		if err := aggregator.SaveSnapshot(ctx, s, id, &counter{}, 1, aggregator.WithRevision("old")); err != nil {
			t.Fatal(err)
		}
		keep := aggregator.WithPolicy(snapshot.Policy{Every: 1, Keep: 1})
		onLoad := aggregator.WithSnapshotOnLoad()
		for v := uint64(3); v <= 5; v++ {
			if v > 3 {
				if _, err := aggregator.Append(counterType, id, v-1).Event(Added{N: 1}).Commit(ctx, s); err != nil {
					t.Fatal(err)
				}
			}
			if got, err := aggregator.Load(ctx, s, id, newCounter(), keep, onLoad); err != nil || got != v {
				t.Fatalf("Load = v%d, %v", got, err)
			}
		}
		if snap, err := s.LoadSnapshot(ctx, counterType, "r1", id, 0); err != nil || snap.Version != 5 {
			t.Fatalf("newest snapshot v%d, %v; want v5", snap.Version, err)
		}
		if _, err := s.LoadSnapshot(ctx, counterType, "r1", id, 4); !errors.Is(err, evento.ErrNotFound) {
			t.Fatalf("older snapshot kept past Keep=1: %v", err)
		}
		if _, err := s.LoadSnapshot(ctx, counterType, "old", id, 0); !errors.Is(err, evento.ErrNotFound) {
			t.Fatalf("snapshot of another revision kept: %v", err)
		}
	})
}

// TestDefaultPolicyCommandPath pins the defaults: with no options, loads
// save nothing, Handle saves after the commit that reaches
// snapshot.DefaultEvery events past the newest snapshot, and every save
// prunes to snapshot.DefaultKeep (older revisions included).
func TestDefaultPolicyCommandPath(t *testing.T) {
	eachBackend(t, func(t *testing.T, s aggregator.Store) {
		ctx := context.Background()
		id := "default-policy"
		// A stale snapshot under another revision, pruned by the first save.
		if _, err := aggregator.Append(counterType, id, 0).Event(Added{N: 1}).Commit(ctx, s); err != nil {
			t.Fatal(err)
		}
		if err := aggregator.SaveSnapshot(ctx, s, id, newCounter(), 1, aggregator.WithRevision("r0")); err != nil {
			t.Fatal(err)
		}
		const batch = 30 // events per command
		var saved []uint64
		var data []aggregator.EventData
		data = append(data, Added{N: 1})
		for range 12 {
			evs := adds(batch)
			res, err := aggregator.Handle(ctx, s, id, newCounter, func(*counter) ([]aggregator.EventData, error) { return evs, nil })
			if err != nil {
				t.Fatal(err)
			}
			data = append(data, evs...)
			if res.SnapshotSaved {
				saved = append(saved, res.Version)
			}
			// Every load of a command starts from the newest snapshot.
			base := uint64(0)
			for _, v := range saved {
				if v <= res.Load.Version {
					base = v
				}
			}
			if res.Load.SnapshotVersion != base || res.Load.Replayed != int(res.Load.Version-base) {
				t.Fatalf("v%d: Handle's load %+v; want from snapshot v%d", res.Version, res.Load, base)
			}
			// Plain loads never write.
			c := newCounter()
			info, err := aggregator.LoadWithInfo(ctx, s, id, c)
			if err != nil || info.SnapshotSaved || info.Version != res.Version || c.state() != model(id, data) {
				t.Fatalf("v%d: load %+v, %v", res.Version, info, err)
			}
		}
		// 1 + 12*30 = 361 events; a save whenever >= 100 were applied
		// since the last: at 121, 241, 361.
		if want := []uint64{121, 241, 361}; !slices.Equal(saved, want) {
			t.Fatalf("Handle saved snapshots at %v; want %v", saved, want)
		}
		if got := storedVersions(t, s, counterType, "r1", id); !slices.Equal(got, []uint64{361, 241}) {
			t.Fatalf("stored snapshots %v; want the newest %d: [361 241]", got, snapshot.DefaultKeep)
		}
		if got := storedVersions(t, s, counterType, "r0", id); len(got) != 0 {
			t.Fatalf("snapshots of another revision kept: %v", got)
		}
	})
}
