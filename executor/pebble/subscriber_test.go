package pebble

import (
	"testing"

	"github.com/evento-go/evento"
)

// TestSubRecordOldLayout decodes a subscriber record written before
// AckedAt and Selection were appended: the old fields are kept and the new
// ones are zero.
func TestSubRecordOldLayout(t *testing.T) {
	old := struct {
		_msgpack  struct{} `msgpack:",as_array"`
		Cursor    string
		Holder    string
		Token     uint64
		ExpiresAt int64
		LagEvents uint64
		LagTime   int64
		LastError string
		Parked    int
		UpdatedAt int64
	}{Cursor: "c", Holder: "w", Token: 7, ExpiresAt: 11, LagEvents: 3, LagTime: 5, LastError: "e", Parked: 2, UpdatedAt: 13}
	b, err := evento.Marshal(&old)
	if err != nil {
		t.Fatal(err)
	}
	var rec subRecord
	if err := evento.Unmarshal(b, &rec); err != nil {
		t.Fatalf("decode a 9-field record: %v", err)
	}
	want := subRecord{Cursor: "c", Holder: "w", Token: 7, ExpiresAt: 11, LagEvents: 3, LagTime: 5, LastError: "e", Parked: 2, UpdatedAt: 13}
	if rec.Cursor != want.Cursor || rec.Holder != want.Holder || rec.Token != want.Token || rec.ExpiresAt != want.ExpiresAt ||
		rec.LagEvents != want.LagEvents || rec.LagTime != want.LagTime || rec.LastError != want.LastError || rec.Parked != want.Parked ||
		rec.UpdatedAt != want.UpdatedAt || rec.AckedAt != 0 || rec.Selection != nil {
		t.Fatalf("decoded %+v, want %+v", rec, want)
	}
	// And the current layout round-trips.
	cur := subRecord{Cursor: "c", Token: 1, AckedAt: 9, Selection: []byte{1, 2}}
	b, err = evento.Marshal(&cur)
	if err != nil {
		t.Fatal(err)
	}
	var back subRecord
	if err := evento.Unmarshal(b, &back); err != nil || back.AckedAt != 9 || string(back.Selection) != "\x01\x02" || back.Token != 1 {
		t.Fatalf("round trip = %+v, %v", back, err)
	}
}
