package sqlite

import (
	"testing"
	"time"

	"github.com/evento-go/evento"
)

// undo0003 takes migrations 0004 (worker presence) and 0003 (subscriber
// selection and acked_at) back.
var undo0003 = []string{"DROP TABLE subscriber_workers", "ALTER TABLE subscribers DROP COLUMN selection", "ALTER TABLE subscribers DROP COLUMN acked_at"}

// TestUpgradeFromVersion1 opens a file at schema version 1 (migration 0002
// undone by hand) and checks that opening it applies only what is missing
// and keeps the data.
func TestUpgradeFromVersion1(t *testing.T) {
	s, path := setup(t)
	mustWrite(t, s, evento.Event{AggregateType: "A", AggregateID: "x", Version: 1, Name: "E", RoutingKey: "eu"})
	for _, q := range append(undo0003, "DROP INDEX events_rk_name_pos", "DELETE FROM schema_migrations WHERE version > 1") {
		if _, err := s.db.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s2, err := Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	var version, indexes int
	if err := s2.db.QueryRow("SELECT max(version) FROM schema_migrations").Scan(&version); err != nil || version != SchemaVersion() {
		t.Fatalf("schema version after upgrade = %d (%v), want %d", version, err, SchemaVersion())
	}
	if err := s2.db.QueryRow("SELECT count(*) FROM sqlite_master WHERE type = 'index' AND name = 'events_rk_name_pos'").Scan(&indexes); err != nil || indexes != 1 {
		t.Fatalf("events_rk_name_pos after upgrade: %d (%v), want 1", indexes, err)
	}
	page, err := s2.Read(t.Context(), evento.ByName("A", "E").WithRouting(evento.RoutingKey("eu")))
	if err != nil || len(page.Events) != 1 {
		t.Fatalf("read through the new index after upgrade: %d events, %v", len(page.Events), err)
	}
}

// TestUpgradeSubscriberSelection opens a file at schema version 2 holding a
// subscriber with a cursor: after the upgrade the subscriber keeps its
// cursor and lease, has no recorded selection and no acknowledgement time,
// and the first RecordSelection records one.
func TestUpgradeSubscriberSelection(t *testing.T) {
	s, path := setup(t)
	evs := mustWrite(t, s, evento.Event{AggregateType: "A", AggregateID: "x", Version: 1, Name: "E"})
	l, err := s.ClaimLease(t.Context(), "k", 0, "w1", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Acknowledge(t.Context(), l, evento.Ack{Cursor: evs[0].Cursor()}); err != nil {
		t.Fatal(err)
	}
	for _, q := range append(undo0003, "DELETE FROM schema_migrations WHERE version > 2") {
		if _, err := s.db.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s2, err := Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	st, err := s2.Subscriber(t.Context(), "k", 0)
	if err != nil {
		t.Fatal(err)
	}
	if st.Cursor != evs[0].Cursor() || st.Holder != "w1" || st.Token != l.Token || st.Selection != nil || !st.AckedAt.IsZero() {
		t.Fatalf("subscriber after upgrade = %+v, want cursor, holder and token kept, no selection, no AckedAt", st)
	}
	got, err := s2.RecordSelection(t.Context(), "k", 0, []byte("sel"))
	if err != nil || string(got) != "sel" {
		t.Fatalf("RecordSelection after upgrade = %q, %v, want it recorded", got, err)
	}
	if err := s2.Acknowledge(t.Context(), l, evento.Ack{LastError: "x"}); err != nil {
		t.Fatalf("Acknowledge with the pre-upgrade lease: %v", err)
	}
	if live, err := s2.AnnounceWorker(t.Context(), "k", "w1", time.Hour); err != nil || len(live) != 1 {
		t.Fatalf("AnnounceWorker after upgrade = %q, %v", live, err)
	}
}
