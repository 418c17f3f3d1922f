package sqlite

import (
	"testing"

	"github.com/evento-go/evento"
)

// TestUpgradeFromVersion1 opens a file at schema version 1 (migration 0002
// undone by hand) and checks that opening it applies only what is missing
// and keeps the data.
func TestUpgradeFromVersion1(t *testing.T) {
	s, path := setup(t)
	mustWrite(t, s, evento.Event{AggregateType: "A", AggregateID: "x", Version: 1, Name: "E", RoutingKey: "eu"})
	for _, q := range []string{"DROP INDEX events_rk_name_pos", "DELETE FROM schema_migrations WHERE version > 1"} {
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
