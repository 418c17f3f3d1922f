package executortest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/evento-go/evento"
	"github.com/evento-go/evento/cursor"
	"github.com/evento-go/evento/executor/storekit"
	"github.com/oklog/ulid/v2"
)

// waitTimeout bounds every wait for asynchronous effects (signals, lease
// expiry). Tests poll or select against it; they never sleep to
// synchronise.
const waitTimeout = 10 * time.Second

// clockSkew is the tolerance for times judged by a store's clock
// (Capabilities.StoreClock) against this process's clock.
const clockSkew = 2 * time.Second

// ev builds an event the caller fills in: the store assigns ID, Timestamp
// and Position.
func ev(typ, id string, version uint64, name string) evento.Event {
	return evento.Event{AggregateType: typ, AggregateID: id, Version: version, Name: name}
}

// withRK returns e with a routing key.
func withRK(e evento.Event, rk string) evento.Event { e.RoutingKey = rk; return e }

// withData returns e with a payload.
func withData(e evento.Event, data []byte) evento.Event { e.Data = data; return e }

// write writes a copy of events and fails the test if Write fails. It
// checks what Write assigned (IDs, positions increasing in batch order, UTC
// microsecond timestamps within the write's wall time) and returns the
// committed events.
func write(t *testing.T, x evento.Executor, events ...evento.Event) []evento.Event {
	t.Helper()
	batch := slices.Clone(events)
	before := time.Now()
	if err := x.Write(t.Context(), batch); err != nil {
		t.Fatalf("Write(%s) = %v, want success", describeBatch(batch), err)
	}
	after := time.Now()
	checkAssigned(t, x, batch, before, after)
	return batch
}

// checkAssigned checks the fields Write assigns on a successful batch.
func checkAssigned(t *testing.T, x evento.Executor, batch []evento.Event, before, after time.Time) {
	t.Helper()
	skew := time.Duration(0)
	if x.Capabilities().StoreClock {
		skew = clockSkew
	}
	lo := before.Add(-skew).Truncate(time.Microsecond)
	hi := after.Add(skew)
	for i := range batch {
		e := &batch[i]
		if e.ID == (ulid.ULID{}) {
			t.Errorf("Write did not set ID on batch element %d (%s)", i, describe(e))
		}
		if e.Position.IsZero() {
			t.Errorf("Write did not set Position on batch element %d (%s)", i, describe(e))
		}
		if e.Timestamp.IsZero() {
			t.Errorf("Write did not set Timestamp on batch element %d (%s)", i, describe(e))
			continue
		}
		if e.Timestamp.Location() != time.UTC {
			t.Errorf("Write set Timestamp %v on batch element %d with location %q, want UTC", e.Timestamp, i, e.Timestamp.Location())
		}
		if !e.Timestamp.Equal(e.Timestamp.Truncate(time.Microsecond)) {
			t.Errorf("Write set Timestamp %v on batch element %d, want it truncated to microseconds", e.Timestamp.Format(time.RFC3339Nano), i)
		}
		if e.Timestamp.Before(lo) || e.Timestamp.After(hi) {
			t.Errorf("Write set Timestamp %s on batch element %d, want a commit time within [%s, %s] (the call's wall time, tolerance %v)",
				e.Timestamp.Format(time.RFC3339Nano), i, lo.Format(time.RFC3339Nano), hi.Format(time.RFC3339Nano), skew)
		}
		if i > 0 {
			p := &batch[i-1]
			if !p.Position.Less(e.Position) {
				t.Errorf("Write set Position %s on batch element %d and %s on element %d: positions must increase in batch order", p.Position, i-1, e.Position, i)
			}
			if p.ID.Compare(e.ID) >= 0 {
				t.Errorf("Write set ID %s on batch element %d and %s on element %d: IDs must increase in batch order", p.ID, i-1, e.ID, i)
			}
		}
	}
}

// describe is a one-line description of an event for failure messages.
func describe(e *evento.Event) string {
	return fmt.Sprintf("%s/%s v%d %s rk=%s pos=%s id=%s", clip(e.AggregateType), clip(e.AggregateID), e.Version, clip(e.Name), clip(e.RoutingKey), e.Position, e.ID)
}

// clip quotes s, shortening long strings.
func clip(s string) string {
	if len(s) > 40 {
		return fmt.Sprintf("%q…(%d bytes)", s[:32], len(s))
	}
	return fmt.Sprintf("%q", s)
}

func describeBatch(b []evento.Event) string {
	parts := make([]string, 0, len(b))
	for i := range b {
		if i == 8 {
			parts = append(parts, fmt.Sprintf("… %d more", len(b)-i))
			break
		}
		e := &b[i]
		parts = append(parts, fmt.Sprintf("%s/%s v%d", clip(e.AggregateType), clip(e.AggregateID), e.Version))
	}
	return "[" + strings.Join(parts, ", ") + "]"
}

func describeEvents(es []evento.Event) string {
	if len(es) == 0 {
		return "(none)"
	}
	var b strings.Builder
	for i := range es {
		fmt.Fprintf(&b, "\n\t%d: %s", i, describe(&es[i]))
	}
	return b.String()
}

// positions lists the events' positions, compactly.
func positions(es []evento.Event) string {
	ps := make([]string, len(es))
	for i := range es {
		ps[i] = es[i].Position.String()
	}
	return "[" + strings.Join(ps, " ") + "]"
}

// eventDiff returns "" if got equals want (evento.Event.Equal) and got's
// Timestamp is in UTC, else the fields that differ.
func eventDiff(want, got *evento.Event) string {
	utc := got.Timestamp.IsZero() || got.Timestamp.Location() == time.UTC
	if want.Equal(got) && utc {
		return ""
	}
	var d []string
	add := func(field string, w, g any) { d = append(d, fmt.Sprintf("%s: got %v, want %v", field, g, w)) }
	if !utc {
		add("Timestamp location", "UTC", fmt.Sprintf("%q", got.Timestamp.Location()))
	}
	if want.ID != got.ID {
		add("ID", want.ID, got.ID)
	}
	if want.AggregateType != got.AggregateType {
		add("AggregateType", clip(want.AggregateType), clip(got.AggregateType))
	}
	if want.AggregateID != got.AggregateID {
		add("AggregateID", clip(want.AggregateID), clip(got.AggregateID))
	}
	if want.Version != got.Version {
		add("Version", want.Version, got.Version)
	}
	if want.Name != got.Name {
		add("Name", clip(want.Name), clip(got.Name))
	}
	if want.RoutingKey != got.RoutingKey {
		add("RoutingKey", clip(want.RoutingKey), clip(got.RoutingKey))
	}
	if !bytes.Equal(want.Data, got.Data) {
		add("Data", bytesSummary(want.Data), bytesSummary(got.Data))
	}
	if !want.Metadata.Equal(got.Metadata) {
		add("Metadata", fmt.Sprintf("%+v", want.Metadata), fmt.Sprintf("%+v", got.Metadata))
	}
	if !want.Timestamp.Equal(got.Timestamp) {
		add("Timestamp", want.Timestamp.Format(time.RFC3339Nano), got.Timestamp.Format(time.RFC3339Nano))
	}
	if want.Position != got.Position {
		add("Position", want.Position, got.Position)
	}
	return strings.Join(d, "; ")
}

func bytesSummary(b []byte) string {
	if len(b) <= 32 {
		return fmt.Sprintf("%q (%d bytes)", b, len(b))
	}
	return fmt.Sprintf("%q… (%d bytes)", b[:24], len(b))
}

// checkEvents compares a read result with the expected events, in order,
// field by field.
func checkEvents(t *testing.T, what string, got, want []evento.Event) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%s: got %d events, want %d\ngot:%s\nwant:%s", what, len(got), len(want), describeEvents(got), describeEvents(want))
		return
	}
	for i := range want {
		if d := eventDiff(&want[i], &got[i]); d != "" {
			t.Errorf("%s: event %d (%s) differs: %s", what, i, describe(&want[i]), d)
		}
	}
}

// readAll reads every event matching q (Args ignored) with forward pages of
// the maximum size.
func readAll(t *testing.T, x evento.Executor, q evento.Query) []evento.Event {
	t.Helper()
	var out []evento.Event
	after := ""
	for range 100000 {
		p, err := x.Read(t.Context(), q.First(cursor.MaxPageSize, after))
		if err != nil {
			t.Fatalf("Read(after=%s) = %v, want success", describeCursor(after), err)
		}
		out = append(out, p.Events...)
		if !p.PageInfo.HasNextPage {
			return out
		}
		if len(p.Events) == 0 {
			t.Fatalf("Read(after=%s): empty page with HasNextPage=true", describeCursor(after))
		}
		after = p.PageInfo.EndCursor
	}
	t.Fatal("readAll: too many pages")
	return nil
}

// describeCursor decodes an evento cursor for failure messages.
func describeCursor(c string) string {
	if c == "" {
		return `""`
	}
	id, pos, err := storekit.DecodeCursor(c)
	if err != nil {
		return clip(c)
	}
	return fmt.Sprintf("cursor(pos=%s id=%s)", pos, id)
}

// wantErr fails the test unless err wraps target.
func wantErr(t *testing.T, err, target error, call string) bool {
	t.Helper()
	if !errors.Is(err, target) {
		if err == nil {
			t.Errorf("%s = nil error, want an error wrapping %q", call, target)
		} else {
			t.Errorf("%s = %v, want an error wrapping %q (errors.Is)", call, err, target)
		}
		return false
	}
	return true
}

// noErr fails the test now if err is not nil.
func noErr(t *testing.T, err error, call string) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s = %v, want success", call, err)
	}
}

// wantVersion checks an aggregate's current version.
func wantVersion(t *testing.T, x evento.Executor, typ, id string, want uint64) {
	t.Helper()
	v, err := x.AggregateVersion(t.Context(), typ, id)
	if err != nil {
		t.Errorf("AggregateVersion(%s, %s) = %v, want success", clip(typ), clip(id), err)
		return
	}
	if v != want {
		t.Errorf("AggregateVersion(%s, %s) = %d, want %d", clip(typ), clip(id), v, want)
	}
}

// wantHead checks Head.
func wantHead(t *testing.T, x evento.Executor, want evento.Position) {
	t.Helper()
	h, err := x.Head(t.Context())
	if err != nil {
		t.Errorf("Head() = %v, want success", err)
		return
	}
	if h != want {
		t.Errorf("Head() = %s, want %s", h, want)
	}
}

// bigPayload returns n deterministic, non-repeating-looking bytes.
func bigPayload(n int) []byte {
	b := make([]byte, n)
	var s uint32 = 2463534242
	for i := range b {
		s ^= s << 13
		s ^= s >> 17
		s ^= s << 5
		b[i] = byte(s)
	}
	return b
}

// waitFor polls cond until it returns "" or waitTimeout passes, then fails
// with cond's last message. poll is the interval between attempts.
func waitFor(t *testing.T, poll time.Duration, cond func() string) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	tick := time.NewTicker(poll)
	defer tick.Stop()
	for {
		msg := cond()
		if msg == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after waiting %v: %s", waitTimeout, msg)
		}
		select {
		case <-tick.C:
		case <-t.Context().Done():
			t.Fatalf("test ended while waiting: %s", msg)
		}
	}
}

// cancelled returns a context that is already cancelled.
func cancelled() context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	return ctx
}
