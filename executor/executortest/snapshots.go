package executortest

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/evento-go/evento"
	"github.com/evento-go/evento/executor/storekit"
)

// RunSnapshots runs the snapshot store part of the suite: save and load,
// the maxVersion bound, revisions, replacement, pruning and round trips of
// every field.
func RunSnapshots(t *testing.T, h Harness) {
	parallel(t, h, "SaveLoad", testSnapshotSaveLoad)
	parallel(t, h, "MaxVersion", testSnapshotMaxVersion)
	parallel(t, h, "OtherRevision", testSnapshotOtherRevision)
	parallel(t, h, "Replace", testSnapshotReplace)
	parallel(t, h, "Prune", testSnapshotPrune)
	parallel(t, h, "Missing", testSnapshotMissing)
	parallel(t, h, "RoundTrip", testSnapshotRoundTrip)
}

// snapshotDiff returns "" if the snapshots match, else the fields that
// differ. CreatedAt is compared only if withCreated.
func snapshotDiff(want, got evento.Snapshot, withCreated bool) string {
	var d []string
	add := func(field string, w, g any) { d = append(d, fmt.Sprintf("%s: got %v, want %v", field, g, w)) }
	if want.AggregateType != got.AggregateType {
		add("AggregateType", clip(want.AggregateType), clip(got.AggregateType))
	}
	if want.AggregateID != got.AggregateID {
		add("AggregateID", clip(want.AggregateID), clip(got.AggregateID))
	}
	if want.Revision != got.Revision {
		add("Revision", clip(want.Revision), clip(got.Revision))
	}
	if want.Version != got.Version {
		add("Version", want.Version, got.Version)
	}
	if want.Cursor != got.Cursor {
		add("Cursor", describeCursor(want.Cursor), describeCursor(got.Cursor))
	}
	if !want.EventTime.Equal(got.EventTime) {
		add("EventTime", want.EventTime.Format(time.RFC3339Nano), got.EventTime.Format(time.RFC3339Nano))
	}
	if !bytes.Equal(want.Data, got.Data) {
		add("Data", bytesSummary(want.Data), bytesSummary(got.Data))
	}
	if withCreated && !want.CreatedAt.Equal(got.CreatedAt) {
		add("CreatedAt", want.CreatedAt.Format(time.RFC3339Nano), got.CreatedAt.Format(time.RFC3339Nano))
	}
	return strings.Join(d, "; ")
}

func snap(typ, rev, id string, version uint64, data string) evento.Snapshot {
	return evento.Snapshot{AggregateType: typ, AggregateID: id, Revision: rev, Version: version,
		Cursor: storekit.EncodeCursor([16]byte{byte(version), 1}, evento.Position{Seq: version}), EventTime: now().Add(-time.Duration(version%1000) * time.Second), Data: []byte(data)}
}

func save(t *testing.T, x evento.Executor, s evento.Snapshot) {
	t.Helper()
	noErr(t, x.SaveSnapshot(t.Context(), s), fmt.Sprintf("SaveSnapshot(%s, %s, %s, v%d)", clip(s.AggregateType), clip(s.Revision), clip(s.AggregateID), s.Version))
}

// wantSnapshot loads a snapshot and compares it with want (CreatedAt
// aside).
func wantSnapshot(t *testing.T, x evento.Executor, typ, rev, id string, maxVersion uint64, want evento.Snapshot) {
	t.Helper()
	call := fmt.Sprintf("LoadSnapshot(%s, %s, %s, maxVersion=%d)", clip(typ), clip(rev), clip(id), maxVersion)
	got, err := x.LoadSnapshot(t.Context(), typ, rev, id, maxVersion)
	if err != nil {
		t.Errorf("%s = %v, want the snapshot at version %d", call, err, want.Version)
		return
	}
	if d := snapshotDiff(want, got, false); d != "" {
		t.Errorf("%s: %s", call, d)
	}
}

// wantNoSnapshot checks that a load gives ErrNotFound.
func wantNoSnapshot(t *testing.T, x evento.Executor, typ, rev, id string, maxVersion uint64, why string) {
	t.Helper()
	got, err := x.LoadSnapshot(t.Context(), typ, rev, id, maxVersion)
	if !wantErr(t, err, evento.ErrNotFound, fmt.Sprintf("LoadSnapshot(%s, %s, %s, maxVersion=%d) (%s)", clip(typ), clip(rev), clip(id), maxVersion, why)) && err == nil {
		t.Errorf("  … and it returned the snapshot at version %d of revision %s", got.Version, clip(got.Revision))
	}
}

func testSnapshotSaveLoad(t *testing.T, h Harness) {
	x, _ := openStore(t, h)
	evs := write(t, x, ev("sn/A", "a", 1, "N"), ev("sn/A", "a", 2, "N"), ev("sn/A", "a", 3, "N"))
	state := mustMarshal(t, map[string]any{"balance": 120, "owner": "ünï"})
	s := evento.Snapshot{AggregateType: "sn/A", AggregateID: "a", Revision: "r1", Version: 3, Cursor: evs[2].Cursor(), EventTime: evs[2].Timestamp, Data: state}
	before := time.Now()
	save(t, x, s)
	after := time.Now()
	got, err := x.LoadSnapshot(t.Context(), "sn/A", "r1", "a", 0)
	noErr(t, err, `LoadSnapshot("sn/A", "r1", "a", 0)`)
	if d := snapshotDiff(s, got, false); d != "" {
		t.Errorf(`LoadSnapshot("sn/A", "r1", "a", 0): %s`, d)
	}
	skew := time.Millisecond
	if x.Capabilities().StoreClock {
		skew += clockSkew
	}
	if got.CreatedAt.Before(before.Add(-skew)) || got.CreatedAt.After(after.Add(skew)) {
		t.Errorf("snapshot CreatedAt = %s, want the save time within [%s, %s]", got.CreatedAt.Format(time.RFC3339Nano), before.Format(time.RFC3339Nano), after.Format(time.RFC3339Nano))
	}
	var decoded map[string]any
	if err := evento.Unmarshal(got.Data, &decoded); err != nil || fmt.Sprint(decoded["owner"]) != "ünï" {
		t.Errorf("snapshot Data does not decode back: %v, %v", decoded, err)
	}
	wantSnapshot(t, x, "sn/A", "r1", "a", 3, s)
	wantSnapshot(t, x, "sn/A", "r1", "a", 100, s)
}

func testSnapshotMaxVersion(t *testing.T, h Harness) {
	x, _ := openStore(t, h)
	s3, s7, s10 := snap("sn/A", "r1", "a", 3, "at 3"), snap("sn/A", "r1", "a", 7, "at 7"), snap("sn/A", "r1", "a", 10, "at 10")
	// Saved out of order.
	save(t, x, s7)
	save(t, x, s10)
	save(t, x, s3)
	save(t, x, snap("sn/A", "r1", "b", 20, "other id"))
	save(t, x, snap("sn/A", "r0", "a", 9, "other revision"))
	cases := []struct {
		max  uint64
		want *evento.Snapshot
	}{
		{0, &s10}, {100, &s10}, {11, &s10}, {10, &s10}, {9, &s7}, {8, &s7}, {7, &s7}, {6, &s3}, {3, &s3}, {2, nil}, {1, nil},
	}
	for _, c := range cases {
		if c.want == nil {
			wantNoSnapshot(t, x, "sn/A", "r1", "a", c.max, "every snapshot is newer than maxVersion")
		} else {
			wantSnapshot(t, x, "sn/A", "r1", "a", c.max, *c.want)
		}
	}
}

func testSnapshotOtherRevision(t *testing.T, h Harness) {
	x, _ := openStore(t, h)
	r1 := snap("sn/A", "r1", "a", 10, "r1 state")
	save(t, x, r1)
	wantNoSnapshot(t, x, "sn/A", "r2", "a", 0, "only revision r1 was saved")
	wantNoSnapshot(t, x, "sn/A", "r", "a", 0, "only revision r1 was saved")
	wantNoSnapshot(t, x, "sn/A", "r1\x00", "a", 0, "only revision r1 was saved")
	r2 := snap("sn/A", "r2", "a", 4, "r2 state")
	save(t, x, r2)
	wantSnapshot(t, x, "sn/A", "r1", "a", 0, r1)
	wantSnapshot(t, x, "sn/A", "r2", "a", 0, r2)
	wantNoSnapshot(t, x, "sn/A", "r2", "a", 3, "r2's only snapshot is at version 4")
}

func testSnapshotReplace(t *testing.T, h Harness) {
	x, _ := openStore(t, h)
	first := snap("sn/A", "r1", "a", 5, "first")
	save(t, x, first)
	second := first
	second.Data = []byte("second, longer than the first")
	second.EventTime = first.EventTime.Add(time.Second)
	second.Cursor = storekit.EncodeCursor([16]byte{9}, evento.Position{Seq: 99})
	save(t, x, second)
	wantSnapshot(t, x, "sn/A", "r1", "a", 0, second)
	wantSnapshot(t, x, "sn/A", "r1", "a", 5, second)
}

func testSnapshotPrune(t *testing.T, h Harness) {
	x, _ := openStore(t, h)
	var r1 []evento.Snapshot
	for v := uint64(1); v <= 6; v++ {
		s := snap("sn/A", "r1", "a", v*2, fmt.Sprintf("r1 v%d", v*2))
		r1 = append(r1, s)
		save(t, x, s)
	}
	save(t, x, snap("sn/A", "r0", "a", 3, "old revision"))
	save(t, x, snap("sn/A", "r2", "a", 30, "newer revision"))
	otherID := []evento.Snapshot{snap("sn/A", "r1", "b", 1, "b1"), snap("sn/A", "r1", "b", 2, "b2")}
	otherType := snap("sn/B", "r1", "a", 1, "other type")
	prefixID := snap("sn/A", "r1", "a\x00", 1, "prefix id")
	for _, s := range append(otherID, otherType, prefixID) {
		save(t, x, s)
	}
	noErr(t, x.PruneSnapshots(t.Context(), "sn/A", "r1", "a", 2), `PruneSnapshots("sn/A", "r1", "a", keep=2)`)
	wantSnapshot(t, x, "sn/A", "r1", "a", 0, r1[5])
	wantSnapshot(t, x, "sn/A", "r1", "a", 11, r1[4])
	wantNoSnapshot(t, x, "sn/A", "r1", "a", 9, "pruned: only versions 10 and 12 are kept")
	wantNoSnapshot(t, x, "sn/A", "r0", "a", 0, "pruned: another revision of the pruned aggregate")
	wantNoSnapshot(t, x, "sn/A", "r2", "a", 0, "pruned: another revision of the pruned aggregate")
	wantSnapshot(t, x, "sn/A", "r1", "b", 0, otherID[1])
	wantSnapshot(t, x, "sn/A", "r1", "b", 1, otherID[0])
	wantSnapshot(t, x, "sn/B", "r1", "a", 0, otherType)
	wantSnapshot(t, x, "sn/A", "r1", "a\x00", 0, prefixID)
	// Keeping more than there are deletes nothing.
	noErr(t, x.PruneSnapshots(t.Context(), "sn/A", "r1", "a", 10), `PruneSnapshots("sn/A", "r1", "a", keep=10)`)
	wantSnapshot(t, x, "sn/A", "r1", "a", 11, r1[4])
	wantSnapshot(t, x, "sn/A", "r1", "a", 0, r1[5])
	noErr(t, x.PruneSnapshots(t.Context(), "sn/A", "r1", "a", 1), `PruneSnapshots("sn/A", "r1", "a", keep=1)`)
	wantSnapshot(t, x, "sn/A", "r1", "a", 0, r1[5])
	wantNoSnapshot(t, x, "sn/A", "r1", "a", 11, "pruned to the newest one")
}

func testSnapshotMissing(t *testing.T, h Harness) {
	x, _ := openStore(t, h)
	wantNoSnapshot(t, x, "sn/A", "r1", "a", 0, "empty store")
	save(t, x, snap("sn/A", "r1", "a", 2, "x"))
	wantNoSnapshot(t, x, "sn/A", "r1", "b", 0, "another id")
	wantNoSnapshot(t, x, "sn/B", "r1", "a", 0, "another type")
	wantNoSnapshot(t, x, "sn/A", "r1", "a\x00", 0, "an id extending the saved one")
}

func testSnapshotRoundTrip(t *testing.T, h Harness) {
	x, _ := openStore(t, h)
	zone := time.FixedZone("UTC+5:30", 5*3600+1800)
	cases := []evento.Snapshot{
		snap("sn/A", "r1", "nil-data", 1, ""),
		snap("sn/A", "r1", "mib", 1, ""),
		snap("sn/A", "r1", "unicode", 1, "状態 — ✓ \x00 end"),
		snap("sn/A", "r1", "zoned", 1, "zoned"),
		snap("sn/A", "r1", "big-version", 1<<40, "big"),
		// (type, revision, id) triples that collide if joined naively.
		snap("a", "b\x00c", "d", 1, "1"),
		snap("a\x00b", "c", "d", 1, "2"),
		snap("a", "b", "c\x00d", 1, "3"),
		snap("a", "b\x00c\x00d", "e", 1, "4"),
		snap("'; DROP TABLE snapshots; --", `"rev"`, "日本/😀", 1, "5"),
		snap(strings.Repeat("t", evento.MaxIdentLen), strings.Repeat("r", 64), strings.Repeat("é", evento.MaxIdentLen/2), 1, "6"),
	}
	cases[0].Data = nil
	cases[1].Data = bigPayload(1 << 20)
	cases[3].EventTime = time.Date(2024, 2, 29, 23, 59, 59, 123456000, zone)
	for _, s := range cases {
		save(t, x, s)
	}
	for _, s := range cases {
		wantSnapshot(t, x, s.AggregateType, s.Revision, s.AggregateID, 0, s)
	}
}
