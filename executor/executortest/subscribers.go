package executortest

import (
	"errors"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/evento-go/evento"
)

// shortTTL is the lease TTL of the expiry tests.
const shortTTL = 200 * time.Millisecond

// RunSubscribers runs the subscriber store part of the suite: lease claims,
// fencing tokens, renewal, release and expiry, acknowledgements with their
// cursor, lag, error and parked events, resets, partitions and racing
// claims.
func RunSubscribers(t *testing.T, h Harness) {
	parallel(t, h, "ClaimCreates", testClaimCreates)
	parallel(t, h, "LeaseHeld", testLeaseHeld)
	parallel(t, h, "ReclaimSameHolder", testReclaimSameHolder)
	parallel(t, h, "Renew", testRenew)
	parallel(t, h, "Release", testRelease)
	parallel(t, h, "Expiry", testExpiry)
	parallel(t, h, "AcknowledgeAfterExpiry", testAckAfterExpiry)
	parallel(t, h, "AcknowledgeRecords", testAckRecords)
	parallel(t, h, "ParkedAcrossPartitions", testParkedAcrossPartitions)
	parallel(t, h, "DeleteParked", testDeleteParked)
	parallel(t, h, "ResetSubscriber", testResetSubscriber)
	parallel(t, h, "DeleteSubscriber", testDeleteSubscriber)
	parallel(t, h, "ReadOnly", testReadOnly)
	parallel(t, h, "SubscribersOrdered", testSubscribersOrdered)
	parallel(t, h, "PartitionsIndependent", testPartitionsIndependent)
	parallel(t, h, "Unknown", testSubscriberUnknown)
	parallel(t, h, "RacingClaims", testRacingClaims)
	parallel(t, h, "RecordSelection", testRecordSelection)
	parallel(t, h, "RacingRecordSelection", testRacingRecordSelection)
	parallel(t, h, "AckedAt", testAckedAt)
	parallel(t, h, "WorkerPresence", testWorkerPresence)
	parallel(t, h, "InvalidLeaseArgs", testInvalidLeaseArgs)
	parallel(t, h, "ReleaseAfterExpiry", testReleaseAfterExpiry)
	parallel(t, h, "AcknowledgeTx", testAcknowledgeTx)
}

// subscriberDiff returns "" if the states match, else the fields that
// differ. UpdatedAt is compared only if withUpdated.
func subscriberDiff(want, got evento.SubscriberState, withUpdated bool) string {
	var d []string
	add := func(field string, w, g any) { d = append(d, fmt.Sprintf("%s: got %v, want %v", field, g, w)) }
	if want.Key != got.Key {
		add("Key", clip(want.Key), clip(got.Key))
	}
	if want.Partition != got.Partition {
		add("Partition", want.Partition, got.Partition)
	}
	if want.Cursor != got.Cursor {
		add("Cursor", describeCursor(want.Cursor), describeCursor(got.Cursor))
	}
	if want.Holder != got.Holder {
		add("Holder", clip(want.Holder), clip(got.Holder))
	}
	if want.Token != got.Token {
		add("Token", want.Token, got.Token)
	}
	if !want.LeaseExpiresAt.Equal(got.LeaseExpiresAt) {
		add("LeaseExpiresAt", want.LeaseExpiresAt.Format(time.RFC3339Nano), got.LeaseExpiresAt.Format(time.RFC3339Nano))
	}
	if want.Lag != got.Lag {
		add("Lag", fmt.Sprintf("%+v", want.Lag), fmt.Sprintf("%+v", got.Lag))
	}
	if want.LastError != got.LastError {
		add("LastError", clip(want.LastError), clip(got.LastError))
	}
	if want.Parked != got.Parked {
		add("Parked", want.Parked, got.Parked)
	}
	if string(want.Selection) != string(got.Selection) {
		add("Selection", fmt.Sprintf("%x", want.Selection), fmt.Sprintf("%x", got.Selection))
	}
	if withUpdated && !want.UpdatedAt.Equal(got.UpdatedAt) {
		add("UpdatedAt", want.UpdatedAt.Format(time.RFC3339Nano), got.UpdatedAt.Format(time.RFC3339Nano))
	}
	return strings.Join(d, "; ")
}

// checkParked compares parked events field by field, in order.
func checkParked(t *testing.T, what string, got, want []evento.ParkedEvent) {
	t.Helper()
	if len(got) != len(want) {
		var g, w []string
		for i := range got {
			g = append(g, fmt.Sprintf("%s/%d %s", clip(got[i].Key), got[i].Partition, describe(&got[i].Event)))
		}
		for i := range want {
			w = append(w, fmt.Sprintf("%s/%d %s", clip(want[i].Key), want[i].Partition, describe(&want[i].Event)))
		}
		t.Errorf("%s: got %d parked events %q, want %d %q", what, len(got), g, len(want), w)
		return
	}
	for i := range want {
		g, w := &got[i], &want[i]
		var d []string
		if g.Key != w.Key {
			d = append(d, fmt.Sprintf("Key: got %s, want %s", clip(g.Key), clip(w.Key)))
		}
		if g.Partition != w.Partition {
			d = append(d, fmt.Sprintf("Partition: got %d, want %d", g.Partition, w.Partition))
		}
		if ed := eventDiff(&w.Event, &g.Event); ed != "" {
			d = append(d, "Event: "+ed)
		}
		if g.Error != w.Error {
			d = append(d, fmt.Sprintf("Error: got %s, want %s", clip(g.Error), clip(w.Error)))
		}
		if g.Attempts != w.Attempts {
			d = append(d, fmt.Sprintf("Attempts: got %d, want %d", g.Attempts, w.Attempts))
		}
		if !g.ParkedAt.Equal(w.ParkedAt) {
			d = append(d, fmt.Sprintf("ParkedAt: got %s, want %s", g.ParkedAt.Format(time.RFC3339Nano), w.ParkedAt.Format(time.RFC3339Nano)))
		}
		if len(d) > 0 {
			t.Errorf("%s: parked event %d (%s) differs: %s", what, i, describe(&w.Event), strings.Join(d, "; "))
		}
	}
}

// subscriber reads one subscriber's state or fails the test.
func subscriber(t *testing.T, x evento.Executor, key string, partition uint32) evento.SubscriberState {
	t.Helper()
	s, err := x.Subscriber(t.Context(), key, partition)
	noErr(t, err, fmt.Sprintf("Subscriber(%s, %d)", clip(key), partition))
	return s
}

// claim claims a lease or fails the test.
func claim(t *testing.T, x evento.Executor, key string, partition uint32, holder string, ttl time.Duration) evento.Lease {
	t.Helper()
	l, err := x.ClaimLease(t.Context(), key, partition, holder, ttl)
	noErr(t, err, fmt.Sprintf("ClaimLease(%s, %d, %s, %v)", clip(key), partition, clip(holder), ttl))
	if l.Key != key || l.Partition != partition || l.Holder != holder {
		t.Errorf("ClaimLease(%s, %d, %s) = Lease{Key: %s, Partition: %d, Holder: %s}, want the key, partition and holder claimed",
			clip(key), partition, clip(holder), clip(l.Key), l.Partition, clip(l.Holder))
	}
	return l
}

// wantCursor checks a subscriber's cursor.
func wantCursor(t *testing.T, x evento.Executor, key string, partition uint32, want, when string) {
	t.Helper()
	s := subscriber(t, x, key, partition)
	if s.Cursor != want {
		t.Errorf("subscriber %s/%d cursor %s = %s, want %s", clip(key), partition, when, describeCursor(s.Cursor), describeCursor(want))
	}
}

// leaseWindow checks that an expiry set by a call made between before and
// after with ttl lies where it should.
func leaseWindow(t *testing.T, x evento.Executor, call string, expires, before, after time.Time, ttl time.Duration) {
	t.Helper()
	skew := time.Millisecond
	if x.Capabilities().StoreClock {
		skew += clockSkew
	}
	lo, hi := before.Add(ttl-skew), after.Add(ttl+skew)
	if expires.Before(lo) || expires.After(hi) {
		t.Errorf("%s: ExpiresAt = %s, want within [%s, %s] (now + ttl %v, tolerance %v)", call, expires.Format(time.RFC3339Nano), lo.Format(time.RFC3339Nano), hi.Format(time.RFC3339Nano), ttl, skew)
	}
}

// sameInstant reports whether two stored times agree to the microsecond.
func sameInstant(a, b time.Time) bool {
	d := a.Sub(b)
	return d > -time.Microsecond && d < time.Microsecond
}

func testClaimCreates(t *testing.T, h Harness) {
	x, _ := openStore(t, h)
	_, err := x.Subscriber(t.Context(), "s/k", 0)
	wantErr(t, err, evento.ErrNotFound, `Subscriber("s/k", 0) before any claim`)
	before := time.Now()
	l := claim(t, x, "s/k", 0, "w1", time.Hour)
	after := time.Now()
	if l.Token != 1 {
		t.Errorf("first ClaimLease of a new subscriber gave token %d, want 1", l.Token)
	}
	leaseWindow(t, x, "ClaimLease(\"s/k\", 0, \"w1\", 1h)", l.ExpiresAt, before, after, time.Hour)
	s := subscriber(t, x, "s/k", 0)
	want := evento.SubscriberState{Key: "s/k", Partition: 0, Holder: "w1", Token: 1, LeaseExpiresAt: s.LeaseExpiresAt}
	if d := subscriberDiff(want, s, false); d != "" {
		t.Errorf("Subscriber(\"s/k\", 0) after the first claim: %s", d)
	}
	if !sameInstant(s.LeaseExpiresAt, l.ExpiresAt) {
		t.Errorf("Subscriber(\"s/k\", 0).LeaseExpiresAt = %s, want the claimed lease's ExpiresAt %s", s.LeaseExpiresAt.Format(time.RFC3339Nano), l.ExpiresAt.Format(time.RFC3339Nano))
	}
	if s.UpdatedAt.IsZero() {
		t.Errorf("Subscriber(\"s/k\", 0).UpdatedAt is zero after a claim")
	}
	// Another partition of the same key is another subscriber.
	l7 := claim(t, x, "s/k", 7, "w2", time.Hour)
	if l7.Token != 1 {
		t.Errorf("first ClaimLease of partition 7 gave token %d, want 1 (partitions have their own tokens)", l7.Token)
	}
	subs, err := x.Subscribers(t.Context())
	noErr(t, err, "Subscribers")
	if len(subs) != 2 {
		t.Fatalf("Subscribers() = %d subscribers, want 2", len(subs))
	}
	if d := subscriberDiff(s, subs[0], true); d != "" {
		t.Errorf("Subscribers()[0] differs from Subscriber(\"s/k\", 0): %s", d)
	}
	if subs[1].Key != "s/k" || subs[1].Partition != 7 || subs[1].Holder != "w2" || subs[1].Token != 1 {
		t.Errorf("Subscribers()[1] = %+v, want s/k partition 7 held by w2 with token 1", subs[1])
	}
}

func testLeaseHeld(t *testing.T, h Harness) {
	x, _ := openStore(t, h)
	l := claim(t, x, "s/k", 0, "w1", time.Hour)
	before := subscriber(t, x, "s/k", 0)
	for _, ttl := range []time.Duration{time.Hour, shortTTL} {
		got, err := x.ClaimLease(t.Context(), "s/k", 0, "w2", ttl)
		if wantErr(t, err, evento.ErrLeaseHeld, fmt.Sprintf("ClaimLease(\"s/k\", 0, \"w2\", %v) while w1 holds a live lease", ttl)) {
			continue
		}
		if err == nil {
			t.Errorf("  … and it returned %+v", got)
		}
	}
	if d := subscriberDiff(before, subscriber(t, x, "s/k", 0), false); d != "" {
		t.Errorf("subscriber changed by refused claims: %s", d)
	}
	noErr(t, x.Acknowledge(t.Context(), l, evento.Ack{LastError: "still mine"}), "Acknowledge by the holder after refused claims")
}

func testReclaimSameHolder(t *testing.T, h Harness) {
	x, _ := openStore(t, h)
	evs := write(t, x, ev("s/A", "a", 1, "N"), ev("s/A", "a", 2, "N"))
	l1 := claim(t, x, "s/k", 0, "w1", time.Hour)
	l2 := claim(t, x, "s/k", 0, "w1", time.Hour)
	if l2.Token <= l1.Token {
		t.Errorf("re-claim by the same holder gave token %d, want more than %d", l2.Token, l1.Token)
	}
	l3 := claim(t, x, "s/k", 0, "w1", time.Hour)
	if l3.Token <= l2.Token {
		t.Errorf("second re-claim by the same holder gave token %d, want more than %d", l3.Token, l2.Token)
	}
	if s := subscriber(t, x, "s/k", 0); s.Token != l3.Token || s.Holder != "w1" {
		t.Errorf("Subscriber after re-claims: Holder %s Token %d, want \"w1\" %d", clip(s.Holder), s.Token, l3.Token)
	}
	err := x.Acknowledge(t.Context(), l1, evento.Ack{Cursor: evs[1].Cursor()})
	wantErr(t, err, evento.ErrLeaseLost, fmt.Sprintf("Acknowledge with token %d after a re-claim gave token %d", l1.Token, l3.Token))
	wantCursor(t, x, "s/k", 0, "", "after a stale Acknowledge")
	_, err = x.RenewLease(t.Context(), l2, time.Hour)
	wantErr(t, err, evento.ErrLeaseLost, fmt.Sprintf("RenewLease with token %d after a re-claim gave token %d", l2.Token, l3.Token))
	err = x.ReleaseLease(t.Context(), l1)
	wantErr(t, err, evento.ErrLeaseLost, fmt.Sprintf("ReleaseLease with token %d after a re-claim gave token %d", l1.Token, l3.Token))
	_, err = x.ClaimLease(t.Context(), "s/k", 0, "w2", time.Hour)
	wantErr(t, err, evento.ErrLeaseHeld, "ClaimLease by w2 after a stale ReleaseLease (the lease must still be held)")
	noErr(t, x.Acknowledge(t.Context(), l3, evento.Ack{Cursor: evs[0].Cursor()}), "Acknowledge with the current token")
	wantCursor(t, x, "s/k", 0, evs[0].Cursor(), "after Acknowledge with the current token")
}

func testRenew(t *testing.T, h Harness) {
	x, _ := openStore(t, h)
	evs := write(t, x, ev("s/A", "a", 1, "N"))
	l := claim(t, x, "s/k", 0, "w1", time.Minute)
	before := time.Now()
	r, err := x.RenewLease(t.Context(), l, 2*time.Hour)
	after := time.Now()
	noErr(t, err, "RenewLease(lease, 2h)")
	if r.Key != l.Key || r.Partition != l.Partition || r.Holder != l.Holder || r.Token != l.Token {
		t.Errorf("RenewLease = {%s %d %s token %d}, want the same key, partition, holder and token as the lease {%s %d %s token %d}",
			clip(r.Key), r.Partition, clip(r.Holder), r.Token, clip(l.Key), l.Partition, clip(l.Holder), l.Token)
	}
	leaseWindow(t, x, "RenewLease(lease, 2h)", r.ExpiresAt, before, after, 2*time.Hour)
	if s := subscriber(t, x, "s/k", 0); !sameInstant(s.LeaseExpiresAt, r.ExpiresAt) || s.Token != l.Token {
		t.Errorf("Subscriber after RenewLease: LeaseExpiresAt %s Token %d, want %s %d", s.LeaseExpiresAt.Format(time.RFC3339Nano), s.Token, r.ExpiresAt.Format(time.RFC3339Nano), l.Token)
	}
	noErr(t, x.Acknowledge(t.Context(), r, evento.Ack{Cursor: evs[0].Cursor()}), "Acknowledge with the renewed lease")
	wantCursor(t, x, "s/k", 0, evs[0].Cursor(), "after Acknowledge with the renewed lease")
	forged := r
	forged.Holder = "w2"
	_, err = x.RenewLease(t.Context(), forged, time.Hour)
	wantErr(t, err, evento.ErrLeaseLost, "RenewLease with the right token and another holder")
	forged = r
	forged.Token++
	_, err = x.RenewLease(t.Context(), forged, time.Hour)
	wantErr(t, err, evento.ErrLeaseLost, "RenewLease with a token from the future")
}

func testRelease(t *testing.T, h Harness) {
	x, _ := openStore(t, h)
	evs := write(t, x, ev("s/A", "a", 1, "N"))
	l1 := claim(t, x, "s/k", 0, "w1", time.Hour)
	noErr(t, x.Acknowledge(t.Context(), l1, evento.Ack{Cursor: evs[0].Cursor()}), "Acknowledge")
	noErr(t, x.ReleaseLease(t.Context(), l1), "ReleaseLease")
	l2 := claim(t, x, "s/k", 0, "w2", time.Hour)
	if l2.Token <= l1.Token {
		t.Errorf("claim after ReleaseLease gave token %d, want more than the released token %d", l2.Token, l1.Token)
	}
	wantCursor(t, x, "s/k", 0, evs[0].Cursor(), "after ReleaseLease and a new claim (the cursor is kept)")
	err := x.Acknowledge(t.Context(), l1, evento.Ack{Cursor: ""})
	wantErr(t, err, evento.ErrLeaseLost, "Acknowledge with a released lease")
	err = x.ReleaseLease(t.Context(), l1)
	wantErr(t, err, evento.ErrLeaseLost, "ReleaseLease of a lease already released and claimed by another")
	_, err = x.RenewLease(t.Context(), l1, time.Hour)
	wantErr(t, err, evento.ErrLeaseLost, "RenewLease of a released lease")
	if s := subscriber(t, x, "s/k", 0); s.Holder != "w2" || s.Token != l2.Token {
		t.Errorf("Subscriber after stale calls: Holder %s Token %d, want \"w2\" %d", clip(s.Holder), s.Token, l2.Token)
	}
	// Released and not re-claimed: the old lease still cannot ack.
	noErr(t, x.ReleaseLease(t.Context(), l2), "ReleaseLease")
	err = x.Acknowledge(t.Context(), l2, evento.Ack{LastError: "late"})
	wantErr(t, err, evento.ErrLeaseLost, "Acknowledge with a released lease nobody re-claimed")
	l3 := claim(t, x, "s/k", 0, "w1", time.Hour)
	if l3.Token <= l2.Token {
		t.Errorf("claim after the second ReleaseLease gave token %d, want more than %d", l3.Token, l2.Token)
	}
}

func testExpiry(t *testing.T, h Harness) {
	x, _ := openStore(t, h)
	evs := write(t, x, ev("s/A", "a", 1, "N"), ev("s/A", "a", 2, "N"))
	l1 := claim(t, x, "s/k", 0, "w1", time.Hour)
	noErr(t, x.Acknowledge(t.Context(), l1, evento.Ack{Cursor: evs[0].Cursor()}), "Acknowledge")
	l1 = claim(t, x, "s/k", 0, "w1", shortTTL)
	skew := time.Millisecond
	if x.Capabilities().StoreClock {
		skew += clockSkew
	}
	var l2 evento.Lease
	waitFor(t, 20*time.Millisecond, func() string {
		l, err := x.ClaimLease(t.Context(), "s/k", 0, "w2", time.Hour)
		switch {
		case err == nil:
			l2 = l
			return ""
		case errors.Is(err, evento.ErrLeaseHeld):
			return fmt.Sprintf("ClaimLease by w2 still gives ErrLeaseHeld; w1's lease (ttl %v) expired at %s", shortTTL, l1.ExpiresAt.Format(time.RFC3339Nano))
		default:
			t.Fatalf("ClaimLease by w2 while waiting for w1's lease to expire = %v, want success or ErrLeaseHeld", err)
			return ""
		}
	})
	if now := time.Now(); now.Before(l1.ExpiresAt.Add(-skew)) {
		t.Errorf("w2 claimed at %s, before w1's lease expired at %s", now.Format(time.RFC3339Nano), l1.ExpiresAt.Format(time.RFC3339Nano))
	}
	if l2.Token <= l1.Token {
		t.Errorf("claim after expiry gave token %d, want more than the expired lease's token %d", l2.Token, l1.Token)
	}
	err := x.Acknowledge(t.Context(), l1, evento.Ack{Cursor: evs[1].Cursor(), LastError: "stale"})
	wantErr(t, err, evento.ErrLeaseLost, "Acknowledge with an expired lease taken over by another holder")
	_, err = x.RenewLease(t.Context(), l1, time.Hour)
	wantErr(t, err, evento.ErrLeaseLost, "RenewLease of an expired lease taken over by another holder")
	s := subscriber(t, x, "s/k", 0)
	want := evento.SubscriberState{Key: "s/k", Holder: "w2", Token: l2.Token, Cursor: evs[0].Cursor(), LeaseExpiresAt: s.LeaseExpiresAt}
	if d := subscriberDiff(want, s, false); d != "" {
		t.Errorf("Subscriber after stale Acknowledge and RenewLease (nothing may move): %s", d)
	}
	noErr(t, x.Acknowledge(t.Context(), l2, evento.Ack{Cursor: evs[1].Cursor()}), "Acknowledge by the new holder")
	wantCursor(t, x, "s/k", 0, evs[1].Cursor(), "after Acknowledge by the new holder")
}

func testAckAfterExpiry(t *testing.T, h Harness) {
	x, _ := openStore(t, h)
	evs := write(t, x, ev("s/A", "a", 1, "N"))
	l := claim(t, x, "s/k", 0, "w1", shortTTL)
	skew := time.Millisecond
	if x.Capabilities().StoreClock {
		skew += clockSkew
	}
	waitFor(t, 20*time.Millisecond, func() string {
		err := x.Acknowledge(t.Context(), l, evento.Ack{LastError: "tick"})
		switch {
		case err == nil:
			return fmt.Sprintf("Acknowledge with a lease that expired at %s still succeeds (nobody claimed it, but Acknowledge must check expiry)", l.ExpiresAt.Format(time.RFC3339Nano))
		case errors.Is(err, evento.ErrLeaseLost):
			return ""
		default:
			t.Fatalf("Acknowledge while waiting for the lease to expire = %v, want success or ErrLeaseLost", err)
			return ""
		}
	})
	if now := time.Now(); now.Before(l.ExpiresAt.Add(-skew)) {
		t.Errorf("Acknowledge failed with ErrLeaseLost at %s, before the lease expired at %s", now.Format(time.RFC3339Nano), l.ExpiresAt.Format(time.RFC3339Nano))
	}
	err := x.Acknowledge(t.Context(), l, evento.Ack{Cursor: evs[0].Cursor()})
	wantErr(t, err, evento.ErrLeaseLost, "Acknowledge with an expired lease")
	wantCursor(t, x, "s/k", 0, "", "after Acknowledge with an expired lease")
	l2 := claim(t, x, "s/k", 0, "w2", time.Hour)
	if l2.Token <= l.Token {
		t.Errorf("claim after expiry gave token %d, want more than %d", l2.Token, l.Token)
	}
}

// richEvent is a committed event with every field set, for parked-event
// round trips.
func richEvents(t *testing.T, x evento.Executor, n int) []evento.Event {
	t.Helper()
	var batch []evento.Event
	for v := uint64(1); v <= uint64(n); v++ {
		e := withRK(withData(ev("s/Rich\x00✓", "id \"q\" ü", v, fmt.Sprintf("Happened%d", v)), bigPayload(100+int(v))), "tenant/ключ")
		e.Metadata = fullMetadata()
		batch = append(batch, e)
	}
	return write(t, x, batch...)
}

func testAckRecords(t *testing.T, h Harness) {
	x, _ := openStore(t, h)
	evs := richEvents(t, x, 4)
	l := claim(t, x, "s/k", 0, "w1", time.Hour)
	p1 := evento.ParkedEvent{Key: "s/k", Partition: 0, Event: evs[0], Error: "handler failed: ✗ \x00", Attempts: 3, ParkedAt: now()}
	noErr(t, x.Acknowledge(t.Context(), l, evento.Ack{
		Cursor:    evs[1].Cursor(),
		Lag:       evento.Lag{Events: 2, Time: 1500 * time.Millisecond},
		LastError: "boom",
		Park:      []evento.ParkedEvent{p1},
	}), "Acknowledge(cursor, lag, error, park)")
	s := subscriber(t, x, "s/k", 0)
	want := evento.SubscriberState{Key: "s/k", Holder: "w1", Token: l.Token, Cursor: evs[1].Cursor(), Lag: evento.Lag{Events: 2, Time: 1500 * time.Millisecond}, LastError: "boom", Parked: 1, LeaseExpiresAt: s.LeaseExpiresAt}
	if d := subscriberDiff(want, s, false); d != "" {
		t.Errorf("Subscriber after Acknowledge(cursor, lag, error, park): %s", d)
	}
	if s.UpdatedAt.IsZero() {
		t.Errorf("Subscriber.UpdatedAt is zero after Acknowledge")
	}
	subs, err := x.Subscribers(t.Context())
	noErr(t, err, "Subscribers")
	if len(subs) != 1 {
		t.Errorf("Subscribers() = %d subscribers, want 1", len(subs))
	} else if d := subscriberDiff(s, subs[0], true); d != "" {
		t.Errorf("Subscribers()[0] differs from Subscriber(): %s", d)
	}
	parked, err := x.ParkedEvents(t.Context(), "s/k")
	noErr(t, err, "ParkedEvents")
	checkParked(t, `ParkedEvents("s/k") after one park`, parked, []evento.ParkedEvent{p1})

	// An empty cursor keeps the cursor; an empty error clears it.
	noErr(t, x.Acknowledge(t.Context(), l, evento.Ack{Lag: evento.Lag{Events: 1}}), "Acknowledge(empty cursor)")
	s = subscriber(t, x, "s/k", 0)
	want.Lag, want.LastError, want.LeaseExpiresAt = evento.Lag{Events: 1}, "", s.LeaseExpiresAt
	if d := subscriberDiff(want, s, false); d != "" {
		t.Errorf("Subscriber after Acknowledge with an empty Cursor (cursor kept, error cleared, lag recorded): %s", d)
	}

	// Parking again replaces; parked events come in global order.
	p3 := evento.ParkedEvent{Key: "s/k", Event: evs[2], Error: "third", Attempts: 1, ParkedAt: now()}
	p1b := evento.ParkedEvent{Key: "s/k", Event: evs[0], Error: "first, again", Attempts: 5, ParkedAt: now()}
	noErr(t, x.Acknowledge(t.Context(), l, evento.Ack{Cursor: evs[3].Cursor(), Park: []evento.ParkedEvent{p3, p1b}}), "Acknowledge(park two, one again)")
	parked, err = x.ParkedEvents(t.Context(), "s/k")
	noErr(t, err, "ParkedEvents")
	checkParked(t, `ParkedEvents("s/k") after re-parking an event (replaced, global order)`, parked, []evento.ParkedEvent{p1b, p3})
	s = subscriber(t, x, "s/k", 0)
	if s.Parked != 2 || s.Cursor != evs[3].Cursor() {
		t.Errorf("Subscriber after the second park: Parked %d Cursor %s, want 2 %s", s.Parked, describeCursor(s.Cursor), describeCursor(evs[3].Cursor()))
	}

	// A rejected acknowledgement records nothing of it.
	stale := l
	stale.Token--
	err = x.Acknowledge(t.Context(), stale, evento.Ack{Cursor: evs[0].Cursor(), LastError: "stale", Lag: evento.Lag{Events: 99}, Park: []evento.ParkedEvent{{Key: "s/k", Event: evs[1], Error: "stale", Attempts: 1, ParkedAt: now()}}})
	wantErr(t, err, evento.ErrLeaseLost, "Acknowledge with a stale token")
	after := subscriber(t, x, "s/k", 0)
	if d := subscriberDiff(s, after, false); d != "" {
		t.Errorf("Subscriber after a rejected Acknowledge (nothing may change): %s", d)
	}
	parked, err = x.ParkedEvents(t.Context(), "s/k")
	noErr(t, err, "ParkedEvents")
	checkParked(t, `ParkedEvents("s/k") after a rejected Acknowledge`, parked, []evento.ParkedEvent{p1b, p3})
}

func testParkedAcrossPartitions(t *testing.T, h Harness) {
	x, _ := openStore(t, h)
	evs := richEvents(t, x, 4)
	l0 := claim(t, x, "s/k", 0, "w1", time.Hour)
	l1 := claim(t, x, "s/k", 1, "w2", time.Hour)
	lo := claim(t, x, "s/k2", 0, "w3", time.Hour)
	pe := func(p uint32, e evento.Event, msg string) evento.ParkedEvent {
		return evento.ParkedEvent{Key: "s/k", Partition: p, Event: e, Error: msg, Attempts: 2, ParkedAt: now()}
	}
	a := pe(1, evs[2], "p1 e3")
	b := pe(0, evs[0], "p0 e1")
	c := pe(1, evs[1], "p1 e2")
	noErr(t, x.Acknowledge(t.Context(), l1, evento.Ack{Park: []evento.ParkedEvent{a}}), "Acknowledge partition 1")
	noErr(t, x.Acknowledge(t.Context(), l0, evento.Ack{Park: []evento.ParkedEvent{b}}), "Acknowledge partition 0")
	noErr(t, x.Acknowledge(t.Context(), l1, evento.Ack{Park: []evento.ParkedEvent{c}}), "Acknowledge partition 1")
	other := evento.ParkedEvent{Key: "s/k2", Event: evs[3], Error: "other key", Attempts: 1, ParkedAt: now()}
	noErr(t, x.Acknowledge(t.Context(), lo, evento.Ack{Park: []evento.ParkedEvent{other}}), "Acknowledge other key")
	parked, err := x.ParkedEvents(t.Context(), "s/k")
	noErr(t, err, "ParkedEvents")
	checkParked(t, `ParkedEvents("s/k") over partitions 0 and 1 (global order)`, parked, []evento.ParkedEvent{b, c, a})
	parked, err = x.ParkedEvents(t.Context(), "s/k2")
	noErr(t, err, "ParkedEvents")
	checkParked(t, `ParkedEvents("s/k2")`, parked, []evento.ParkedEvent{other})
	if s := subscriber(t, x, "s/k", 1); s.Parked != 2 {
		t.Errorf("Subscriber(\"s/k\", 1).Parked = %d, want 2", s.Parked)
	}
	if s := subscriber(t, x, "s/k", 0); s.Parked != 1 {
		t.Errorf("Subscriber(\"s/k\", 0).Parked = %d, want 1", s.Parked)
	}
}

func testDeleteParked(t *testing.T, h Harness) {
	x, _ := openStore(t, h)
	evs := richEvents(t, x, 2)
	l := claim(t, x, "s/k", 0, "w1", time.Hour)
	p1 := evento.ParkedEvent{Key: "s/k", Event: evs[0], Error: "e1", Attempts: 1, ParkedAt: now()}
	p2 := evento.ParkedEvent{Key: "s/k", Event: evs[1], Error: "e2", Attempts: 1, ParkedAt: now()}
	noErr(t, x.Acknowledge(t.Context(), l, evento.Ack{Park: []evento.ParkedEvent{p1, p2}}), "Acknowledge(park two)")
	noErr(t, x.DeleteParked(t.Context(), "s/k", 0, evs[0].ID), "DeleteParked(first)")
	parked, err := x.ParkedEvents(t.Context(), "s/k")
	noErr(t, err, "ParkedEvents")
	checkParked(t, "ParkedEvents after DeleteParked(first)", parked, []evento.ParkedEvent{p2})
	if s := subscriber(t, x, "s/k", 0); s.Parked != 1 {
		t.Errorf("Subscriber.Parked after DeleteParked = %d, want 1", s.Parked)
	}
	wantErr(t, x.DeleteParked(t.Context(), "s/k", 0, evs[0].ID), evento.ErrNotFound, "DeleteParked of an event already deleted")
	wantErr(t, x.DeleteParked(t.Context(), "s/k", 1, evs[1].ID), evento.ErrNotFound, "DeleteParked in the wrong partition")
	wantErr(t, x.DeleteParked(t.Context(), "s/nope", 0, evs[1].ID), evento.ErrNotFound, "DeleteParked of an unknown key")
	noErr(t, x.DeleteParked(t.Context(), "s/k", 0, evs[1].ID), "DeleteParked(second)")
	parked, err = x.ParkedEvents(t.Context(), "s/k")
	noErr(t, err, "ParkedEvents")
	checkParked(t, "ParkedEvents after deleting both", parked, nil)
	if s := subscriber(t, x, "s/k", 0); s.Parked != 0 {
		t.Errorf("Subscriber.Parked after deleting both = %d, want 0", s.Parked)
	}
}

func testResetSubscriber(t *testing.T, h Harness) {
	x, _ := openStore(t, h)
	evs := write(t, x, ev("s/A", "a", 1, "N"), ev("s/A", "a", 2, "N"), ev("s/A", "a", 3, "N"), ev("s/A", "a", 4, "N"))
	l := claim(t, x, "s/k", 0, "w1", time.Hour)
	noErr(t, x.Acknowledge(t.Context(), l, evento.Ack{Cursor: evs[2].Cursor()}), "Acknowledge")
	noErr(t, x.ResetSubscriber(t.Context(), "s/k", 0, evs[0].Cursor()), "ResetSubscriber(first event)")
	s := subscriber(t, x, "s/k", 0)
	if s.Cursor != evs[0].Cursor() {
		t.Errorf("cursor after ResetSubscriber = %s, want %s", describeCursor(s.Cursor), describeCursor(evs[0].Cursor()))
	}
	if s.Token <= l.Token {
		t.Errorf("token after ResetSubscriber = %d, want more than the holder's %d", s.Token, l.Token)
	}
	err := x.Acknowledge(t.Context(), l, evento.Ack{Cursor: evs[3].Cursor()})
	wantErr(t, err, evento.ErrLeaseLost, "Acknowledge by the holder after ResetSubscriber")
	wantCursor(t, x, "s/k", 0, evs[0].Cursor(), "after the holder's Acknowledge following a reset")
	_, err = x.RenewLease(t.Context(), l, time.Hour)
	wantErr(t, err, evento.ErrLeaseLost, "RenewLease by the holder after ResetSubscriber")
	noErr(t, x.ResetSubscriber(t.Context(), "s/k", 0, ""), "ResetSubscriber(start)")
	wantCursor(t, x, "s/k", 0, "", "after ResetSubscriber to the start")
	s2 := subscriber(t, x, "s/k", 0)
	if s2.Token <= s.Token {
		t.Errorf("token after the second ResetSubscriber = %d, want more than %d", s2.Token, s.Token)
	}
	if s2.Holder != "" || !s2.LeaseExpiresAt.IsZero() {
		t.Errorf("ResetSubscriber left the lease with holder %q until %v, want it released", s2.Holder, s2.LeaseExpiresAt)
	}
	// The lease is free at once: another worker claims without waiting.
	l2 := claim(t, x, "s/k", 0, "w2", time.Hour)
	if l2.Token <= s2.Token {
		t.Errorf("claim after ResetSubscriber gave token %d, want more than %d", l2.Token, s2.Token)
	}
	noErr(t, x.Acknowledge(t.Context(), l2, evento.Ack{Cursor: evs[1].Cursor()}), "Acknowledge after re-claiming a reset subscriber")
	wantCursor(t, x, "s/k", 0, evs[1].Cursor(), "after Acknowledge following a re-claim")

	// Resetting a subscriber that does not exist creates it at the cursor.
	noErr(t, x.ResetSubscriber(t.Context(), "s/new", 2, evs[2].Cursor()), "ResetSubscriber(unknown subscriber)")
	wantCursor(t, x, "s/new", 2, evs[2].Cursor(), "after ResetSubscriber of an unknown subscriber")
	// A malformed cursor is refused and changes nothing.
	err = x.ResetSubscriber(t.Context(), "s/k", 0, "not-a-cursor")
	wantErr(t, err, evento.ErrInvalidCursor, "ResetSubscriber with a malformed cursor")
	wantCursor(t, x, "s/k", 0, evs[1].Cursor(), "after a refused ResetSubscriber")
}

func testSubscribersOrdered(t *testing.T, h Harness) {
	x, _ := openStore(t, h)
	type kp struct {
		key string
		p   uint32
	}
	claims := []kp{{"b", 0}, {"a", 2}, {"a", 10}, {"a", 1}, {"c", 0}, {"B", 0}, {"a\x00", 0}, {"ab", 0}, {"a", 0}, {"é", 3}, {"a", 256}, {"_", 1}}
	for i, c := range claims {
		claim(t, x, c.key, c.p, fmt.Sprintf("w%d", i), time.Hour)
	}
	want := slices.Clone(claims)
	slices.SortFunc(want, func(a, b kp) int {
		if c := strings.Compare(a.key, b.key); c != 0 {
			return c
		}
		return int(a.p) - int(b.p)
	})
	subs, err := x.Subscribers(t.Context())
	noErr(t, err, "Subscribers")
	got := make([]kp, len(subs))
	for i, s := range subs {
		got[i] = kp{s.Key, s.Partition}
	}
	if !slices.Equal(got, want) {
		show := func(l []kp) string {
			var b strings.Builder
			for _, k := range l {
				fmt.Fprintf(&b, " %q/%d", k.key, k.p)
			}
			return b.String()
		}
		t.Errorf("Subscribers() order =\n\t%s\nwant (key in byte order, then partition numerically)\n\t%s", show(got), show(want))
	}
}

func testPartitionsIndependent(t *testing.T, h Harness) {
	x, _ := openStore(t, h)
	evs := write(t, x, ev("s/A", "a", 1, "N"), ev("s/A", "a", 2, "N"))
	l0 := claim(t, x, "s/k", 0, "w1", time.Hour)
	l1 := claim(t, x, "s/k", 1, "w2", time.Hour)
	if l0.Token != 1 || l1.Token != 1 {
		t.Errorf("first claims of partitions 0 and 1 gave tokens %d and %d, want 1 and 1", l0.Token, l1.Token)
	}
	noErr(t, x.Acknowledge(t.Context(), l0, evento.Ack{Cursor: evs[1].Cursor(), LastError: "p0"}), "Acknowledge partition 0")
	wantCursor(t, x, "s/k", 0, evs[1].Cursor(), "after its Acknowledge")
	wantCursor(t, x, "s/k", 1, "", "after partition 0's Acknowledge")
	if s := subscriber(t, x, "s/k", 1); s.LastError != "" {
		t.Errorf("partition 1 LastError = %q after partition 0's Acknowledge, want \"\"", s.LastError)
	}
	forged := l0
	forged.Partition = 1
	err := x.Acknowledge(t.Context(), forged, evento.Ack{Cursor: evs[0].Cursor()})
	wantErr(t, err, evento.ErrLeaseLost, "Acknowledge on partition 1 with partition 0's lease (same token, another holder)")
	wantCursor(t, x, "s/k", 1, "", "after a forged Acknowledge")
	noErr(t, x.ReleaseLease(t.Context(), l0), "ReleaseLease partition 0")
	_, err = x.ClaimLease(t.Context(), "s/k", 1, "w3", time.Hour)
	wantErr(t, err, evento.ErrLeaseHeld, "ClaimLease of partition 1 after partition 0 was released")
	l0b := claim(t, x, "s/k", 0, "w3", time.Hour)
	if l0b.Token <= l0.Token {
		t.Errorf("claim of partition 0 after release gave token %d, want more than %d", l0b.Token, l0.Token)
	}
	if s := subscriber(t, x, "s/k", 1); s.Token != 1 || s.Holder != "w2" {
		t.Errorf("partition 1 after partition 0 changed hands: Holder %s Token %d, want \"w2\" 1", clip(s.Holder), s.Token)
	}
	noErr(t, x.ResetSubscriber(t.Context(), "s/k", 0, ""), "ResetSubscriber partition 0")
	noErr(t, x.Acknowledge(t.Context(), l1, evento.Ack{Cursor: evs[0].Cursor()}), "Acknowledge partition 1 after partition 0 was reset")
}

func testSubscriberUnknown(t *testing.T, h Harness) {
	x, _ := openStore(t, h)
	subs, err := x.Subscribers(t.Context())
	noErr(t, err, "Subscribers() on an empty store")
	if len(subs) != 0 {
		t.Errorf("Subscribers() on an empty store = %d subscribers, want none", len(subs))
	}
	_, err = x.Subscriber(t.Context(), "s/nope", 0)
	wantErr(t, err, evento.ErrNotFound, `Subscriber("s/nope", 0)`)
	parked, err := x.ParkedEvents(t.Context(), "s/nope")
	noErr(t, err, `ParkedEvents("s/nope")`)
	if len(parked) != 0 {
		t.Errorf(`ParkedEvents("s/nope") = %d events, want none`, len(parked))
	}
	claim(t, x, "s/k", 0, "w1", time.Hour)
	_, err = x.Subscriber(t.Context(), "s/k", 1)
	wantErr(t, err, evento.ErrNotFound, `Subscriber("s/k", 1) when only partition 0 exists`)
	_, err = x.Subscriber(t.Context(), "s/k\x00", 0)
	wantErr(t, err, evento.ErrNotFound, `Subscriber("s/k\x00", 0) when only "s/k" exists`)
	_, err = x.Subscriber(t.Context(), "s/", 0)
	wantErr(t, err, evento.ErrNotFound, `Subscriber("s/", 0) when only "s/k" exists`)
	ghost := evento.Lease{Key: "s/ghost", Partition: 0, Holder: "w1", Token: 1, ExpiresAt: time.Now().Add(time.Hour)}
	_, err = x.RenewLease(t.Context(), ghost, time.Hour)
	wantErr(t, err, evento.ErrLeaseLost, "RenewLease of a subscriber that does not exist")
	wantErr(t, x.Acknowledge(t.Context(), ghost, evento.Ack{LastError: "x"}), evento.ErrLeaseLost, "Acknowledge on a subscriber that does not exist")
	wantErr(t, x.ReleaseLease(t.Context(), ghost), evento.ErrLeaseLost, "ReleaseLease of a subscriber that does not exist")
	_, err = x.Subscriber(t.Context(), "s/ghost", 0)
	wantErr(t, err, evento.ErrNotFound, `Subscriber("s/ghost", 0) after stale calls on it (they must not create it)`)
}

// testRacingClaims has K goroutines claim one key concurrently: exactly one
// holds it at any time, and tokens never repeat.
func testRacingClaims(t *testing.T, h Harness) {
	const workers = 8
	x, _ := openStore(t, h)
	evs := write(t, x, ev("s/A", "a", 1, "N"))

	// One shot: all claim at once, exactly one wins.
	start := make(chan struct{})
	errs := make([]error, workers)
	leases := make([]evento.Lease, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			<-start
			leases[w], errs[w] = x.ClaimLease(t.Context(), "s/race", 0, fmt.Sprintf("w%d", w), time.Hour)
		})
	}
	close(start)
	wg.Wait()
	winner := -1
	for w, err := range errs {
		switch {
		case err == nil:
			if winner >= 0 {
				t.Errorf("concurrent ClaimLease: w%d and w%d both got the lease (tokens %d and %d)", winner, w, leases[winner].Token, leases[w].Token)
			}
			winner = w
		case !errors.Is(err, evento.ErrLeaseHeld):
			t.Errorf("concurrent ClaimLease by w%d = %v, want success or ErrLeaseHeld", w, err)
		}
	}
	if winner < 0 {
		t.Fatalf("concurrent ClaimLease: nobody of %d got the lease: %v", workers, errs)
	}
	if leases[winner].Token != 1 {
		t.Errorf("concurrent first ClaimLease gave token %d, want 1", leases[winner].Token)
	}
	noErr(t, x.ReleaseLease(t.Context(), leases[winner]), "ReleaseLease by the winner")

	// Many rounds: claim, check nobody else holds, ack, release.
	const wantClaims = 40
	var (
		holding atomic.Int32
		claims  atomic.Int32
		mu      sync.Mutex
		tokens  = map[uint64]string{}
	)
	deadline := time.Now().Add(3 * waitTimeout)
	for w := range workers {
		wg.Go(func() {
			holder := fmt.Sprintf("w%d", w)
			for claims.Load() < wantClaims && time.Now().Before(deadline) {
				l, err := x.ClaimLease(t.Context(), "s/race", 0, holder, time.Hour)
				if errors.Is(err, evento.ErrLeaseHeld) {
					runtime.Gosched()
					continue
				}
				if err != nil {
					t.Errorf("%s: ClaimLease = %v, want success or ErrLeaseHeld", holder, err)
					return
				}
				if !holding.CompareAndSwap(0, 1) {
					t.Errorf("%s got the lease (token %d) while another worker held it", holder, l.Token)
					return
				}
				claims.Add(1)
				mu.Lock()
				if prev, dup := tokens[l.Token]; dup {
					t.Errorf("token %d given to %s and to %s", l.Token, prev, holder)
				}
				tokens[l.Token] = holder
				mu.Unlock()
				if err := x.Acknowledge(t.Context(), l, evento.Ack{Cursor: evs[0].Cursor(), LastError: holder}); err != nil {
					t.Errorf("%s: Acknowledge while holding token %d = %v, want success", holder, l.Token, err)
				}
				holding.Store(0)
				if err := x.ReleaseLease(t.Context(), l); err != nil {
					t.Errorf("%s: ReleaseLease of token %d = %v, want success", holder, l.Token, err)
					return
				}
			}
		})
	}
	wg.Wait()
	if n := claims.Load(); n < wantClaims {
		t.Errorf("racing workers made %d successful claims within %v, want %d", n, 3*waitTimeout, wantClaims)
	}
	s := subscriber(t, x, "s/race", 0)
	var maxToken uint64
	for tok := range tokens {
		maxToken = max(maxToken, tok)
	}
	if s.Token < maxToken {
		t.Errorf("subscriber token %d is below the largest token handed out %d", s.Token, maxToken)
	}
}

// recordSel records a selection or fails the test.
func recordSel(t *testing.T, x evento.Executor, key string, partition uint32, sel string) string {
	t.Helper()
	got, err := x.RecordSelection(t.Context(), key, partition, []byte(sel))
	noErr(t, err, fmt.Sprintf("RecordSelection(%s, %d, %q)", clip(key), partition, sel))
	return string(got)
}

// testRecordSelection pins RecordSelection: record if absent, return the
// stored one, never touch the lease, cleared by ResetSubscriber only.
func testRecordSelection(t *testing.T, h Harness) {
	x, _ := openStore(t, h)
	evs := write(t, x, ev("s/A", "a", 1, "N"), ev("s/A", "a", 2, "N"))
	// A new subscriber is created with the selection and nothing else.
	if got := recordSel(t, x, "s/k", 0, "sel-1\x00\xff"); got != "sel-1\x00\xff" {
		t.Errorf("RecordSelection on a new subscriber returned %q, want the selection given", got)
	}
	s := subscriber(t, x, "s/k", 0)
	want := evento.SubscriberState{Key: "s/k", Selection: []byte("sel-1\x00\xff")}
	if d := subscriberDiff(want, s, false); d != "" {
		t.Errorf("Subscriber after RecordSelection on a new subscriber (no lease, token 0, empty cursor): %s", d)
	}
	if !s.AckedAt.IsZero() {
		t.Errorf("Subscriber.AckedAt = %s before any acknowledgement, want zero", s.AckedAt.Format(time.RFC3339Nano))
	}
	// A recorded selection is kept and returned, whatever is offered.
	if got := recordSel(t, x, "s/k", 0, "sel-2"); got != "sel-1\x00\xff" {
		t.Errorf("RecordSelection with another selection returned %q, want the recorded %q", got, "sel-1\x00\xff")
	}
	if got := recordSel(t, x, "s/k", 0, "sel-1\x00\xff"); got != "sel-1\x00\xff" {
		t.Errorf("RecordSelection with the same selection returned %q, want it", got)
	}
	// Leases are untouched: the first claim gets token 1, and recording
	// while it is held neither revokes it nor changes its token.
	l := claim(t, x, "s/k", 0, "w1", time.Hour)
	if l.Token != 1 {
		t.Errorf("first ClaimLease after RecordSelection gave token %d, want 1", l.Token)
	}
	if got := recordSel(t, x, "s/k", 0, "sel-3"); got != "sel-1\x00\xff" {
		t.Errorf("RecordSelection while leased returned %q, want the recorded selection", got)
	}
	noErr(t, x.Acknowledge(t.Context(), l, evento.Ack{Cursor: evs[0].Cursor()}), "Acknowledge after RecordSelection")
	s = subscriber(t, x, "s/k", 0)
	want = evento.SubscriberState{Key: "s/k", Holder: "w1", Token: l.Token, Cursor: evs[0].Cursor(), LeaseExpiresAt: s.LeaseExpiresAt, Selection: []byte("sel-1\x00\xff")}
	if d := subscriberDiff(want, s, false); d != "" {
		t.Errorf("Subscriber after claim, RecordSelection and Acknowledge: %s", d)
	}
	// Subscribers lists the selection too.
	subs, err := x.Subscribers(t.Context())
	noErr(t, err, "Subscribers")
	if len(subs) != 1 || string(subs[0].Selection) != "sel-1\x00\xff" {
		t.Errorf("Subscribers() = %+v, want one subscriber with the recorded selection", subs)
	}
	// Partitions record their own selection.
	if got := recordSel(t, x, "s/k", 1, "sel-p1"); got != "sel-p1" {
		t.Errorf("RecordSelection on partition 1 returned %q, want its own %q", got, "sel-p1")
	}
	// An empty selection is refused and records nothing.
	_, err = x.RecordSelection(t.Context(), "s/empty", 0, nil)
	wantErr(t, err, evento.ErrInvalidSubscriberArgs, "RecordSelection(nil)")
	_, err = x.Subscriber(t.Context(), "s/empty", 0)
	wantErr(t, err, evento.ErrNotFound, "Subscriber after a refused RecordSelection")
	// ResetSubscriber clears it (and revokes the lease); the next record wins.
	noErr(t, x.ResetSubscriber(t.Context(), "s/k", 0, evs[1].Cursor()), "ResetSubscriber")
	if s := subscriber(t, x, "s/k", 0); s.Selection != nil {
		t.Errorf("Subscriber.Selection after ResetSubscriber = %q, want nil", s.Selection)
	}
	if s := subscriber(t, x, "s/k", 1); string(s.Selection) != "sel-p1" {
		t.Errorf("partition 1 Selection after resetting partition 0 = %q, want %q", s.Selection, "sel-p1")
	}
	if got := recordSel(t, x, "s/k", 0, "sel-2"); got != "sel-2" {
		t.Errorf("RecordSelection after ResetSubscriber returned %q, want the new %q", got, "sel-2")
	}
	wantCursor(t, x, "s/k", 0, evs[1].Cursor(), "after ResetSubscriber and RecordSelection (the reset cursor is kept)")
	_, err = x.RenewLease(t.Context(), l, time.Hour)
	wantErr(t, err, evento.ErrLeaseLost, "RenewLease after ResetSubscriber and RecordSelection")
}

// testRacingRecordSelection has workers record different selections on
// one new subscriber at once: exactly one is recorded and every call
// returns it.
func testRacingRecordSelection(t *testing.T, h Harness) {
	const workers = 8
	x, _ := openStore(t, h)
	got := make([]string, workers)
	errs := make([]error, workers)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			<-start
			b, err := x.RecordSelection(t.Context(), "s/race", 0, []byte(fmt.Sprintf("sel-%d", w)))
			got[w], errs[w] = string(b), err
		})
	}
	close(start)
	wg.Wait()
	for w := range workers {
		noErr(t, errs[w], fmt.Sprintf("concurrent RecordSelection by w%d", w))
		if got[w] != got[0] {
			t.Errorf("concurrent RecordSelection returned %q to w%d and %q to w0, want one recorded selection for all", got[w], w, got[0])
		}
	}
	if s := subscriber(t, x, "s/race", 0); string(s.Selection) != got[0] {
		t.Errorf("stored selection %q, want the one every caller was told, %q", s.Selection, got[0])
	}
}

// testAckedAt pins AckedAt: set by every Acknowledge (store clock), not by
// claims or renewals.
func testAckedAt(t *testing.T, h Harness) {
	x, _ := openStore(t, h)
	evs := write(t, x, ev("s/A", "a", 1, "N"))
	l := claim(t, x, "s/k", 0, "w1", time.Hour)
	if s := subscriber(t, x, "s/k", 0); !s.AckedAt.IsZero() {
		t.Errorf("AckedAt after a claim = %s, want zero", s.AckedAt.Format(time.RFC3339Nano))
	}
	skew := time.Millisecond
	if x.Capabilities().StoreClock {
		skew += clockSkew
	}
	before := time.Now()
	noErr(t, x.Acknowledge(t.Context(), l, evento.Ack{Cursor: evs[0].Cursor()}), "Acknowledge")
	after := time.Now()
	s := subscriber(t, x, "s/k", 0)
	if s.AckedAt.Before(before.Add(-skew)) || s.AckedAt.After(after.Add(skew)) {
		t.Errorf("AckedAt = %s, want within [%s, %s]", s.AckedAt.Format(time.RFC3339Nano), before.Format(time.RFC3339Nano), after.Format(time.RFC3339Nano))
	}
	_, err := x.RenewLease(t.Context(), l, 2*time.Hour)
	noErr(t, err, "RenewLease")
	if s2 := subscriber(t, x, "s/k", 0); !s2.AckedAt.Equal(s.AckedAt) {
		t.Errorf("AckedAt moved from %s to %s on RenewLease, want it kept", s.AckedAt.Format(time.RFC3339Nano), s2.AckedAt.Format(time.RFC3339Nano))
	}
}

// announce announces a worker or fails the test, returning the live list.
func announce(t *testing.T, x evento.Executor, key, worker string, ttl time.Duration) []string {
	t.Helper()
	live, err := x.AnnounceWorker(t.Context(), key, worker, ttl)
	noErr(t, err, fmt.Sprintf("AnnounceWorker(%s, %s, %v)", clip(key), clip(worker), ttl))
	return live
}

// testWorkerPresence pins AnnounceWorker and WithdrawWorker: live workers
// of one key in byte order, the caller included; expiry by the store's
// clock; withdraw idempotent; keys independent.
func testWorkerPresence(t *testing.T, h Harness) {
	x, _ := openStore(t, h)
	want := func(got []string, want []string, when string) {
		t.Helper()
		if !slices.Equal(got, want) {
			t.Errorf("live workers %s = %q, want %q", when, got, want)
		}
	}
	want(announce(t, x, "s/k", "w2", time.Hour), []string{"w2"}, "after the first announcement")
	want(announce(t, x, "s/k", "w1", time.Hour), []string{"w1", "w2"}, "after a second worker announced (byte order)")
	want(announce(t, x, "s/k", "w2", time.Hour), []string{"w1", "w2"}, "after w2 announced again")
	want(announce(t, x, "s/other", "w9", time.Hour), []string{"w9"}, "on another key")
	want(announce(t, x, "s/k\x00", "w8", time.Hour), []string{"w8"}, `on key "s/k\x00"`)
	// A presence expires by the store's clock; the next announcement on the
	// key no longer lists it.
	announce(t, x, "s/k", "w3", shortTTL)
	waitFor(t, 20*time.Millisecond, func() string {
		live := announce(t, x, "s/k", "w1", time.Hour)
		if slices.Contains(live, "w3") {
			return fmt.Sprintf("w3 still live %v after its presence (ttl %v) expired", live, shortTTL)
		}
		return ""
	})
	want(announce(t, x, "s/k", "w3", time.Hour), []string{"w1", "w2", "w3"}, "after w3 announced again")
	// Withdraw removes it at once; withdrawing again or an unknown worker is
	// not an error.
	noErr(t, x.WithdrawWorker(t.Context(), "s/k", "w2"), "WithdrawWorker(w2)")
	noErr(t, x.WithdrawWorker(t.Context(), "s/k", "w2"), "WithdrawWorker(w2) again")
	noErr(t, x.WithdrawWorker(t.Context(), "s/nope", "w1"), "WithdrawWorker on an unknown key")
	want(announce(t, x, "s/k", "w1", time.Hour), []string{"w1", "w3"}, "after w2 withdrew")
	want(announce(t, x, "s/other", "w9", time.Hour), []string{"w9"}, "on another key after withdrawals on s/k")
	// Presence is not a subscriber.
	subs, err := x.Subscribers(t.Context())
	noErr(t, err, "Subscribers")
	if len(subs) != 0 {
		t.Errorf("Subscribers() = %d after announcements only, want none", len(subs))
	}
	for _, c := range []struct {
		key, worker string
		ttl         time.Duration
	}{{"", "w", time.Hour}, {"s/k", "", time.Hour}, {"s/k", "w", 0}, {"s/k", "w", -time.Second}} {
		_, err := x.AnnounceWorker(t.Context(), c.key, c.worker, c.ttl)
		wantErr(t, err, evento.ErrInvalidSubscriberArgs, fmt.Sprintf("AnnounceWorker(%q, %q, %v)", c.key, c.worker, c.ttl))
	}
	wantErr(t, x.WithdrawWorker(t.Context(), "s/k", ""), evento.ErrInvalidSubscriberArgs, `WithdrawWorker("s/k", "")`)
	want(announce(t, x, "s/k", "w1", time.Hour), []string{"w1", "w3"}, "after refused calls")
}

// testInvalidLeaseArgs pins the input rules every backend applies (one
// helper, storekit.CheckClaim/CheckRenew): an empty key or holder, or a zero
// or negative ttl, is ErrInvalidSubscriberArgs and changes nothing.
func testInvalidLeaseArgs(t *testing.T, h Harness) {
	x, _ := openStore(t, h)
	for _, c := range []struct {
		key, holder string
		ttl         time.Duration
	}{{"s/k", "", time.Hour}, {"", "w1", time.Hour}, {"s/k", "w1", 0}, {"s/k", "w1", -time.Second}, {"s/k", "w1", -1}} {
		l, err := x.ClaimLease(t.Context(), c.key, 0, c.holder, c.ttl)
		if wantErr(t, err, evento.ErrInvalidSubscriberArgs, fmt.Sprintf("ClaimLease(%q, 0, %q, %v)", c.key, c.holder, c.ttl)) && err == nil {
			t.Errorf("  … and it returned %+v", l)
		}
	}
	subs, err := x.Subscribers(t.Context())
	noErr(t, err, "Subscribers")
	if len(subs) != 0 {
		t.Errorf("refused claims created %d subscribers, want none", len(subs))
	}
	l := claim(t, x, "s/k", 0, "w1", time.Hour)
	before := subscriber(t, x, "s/k", 0)
	for _, ttl := range []time.Duration{0, -time.Second} {
		_, err := x.RenewLease(t.Context(), l, ttl)
		wantErr(t, err, evento.ErrInvalidSubscriberArgs, fmt.Sprintf("RenewLease(lease, %v)", ttl))
	}
	if d := subscriberDiff(before, subscriber(t, x, "s/k", 0), true); d != "" {
		t.Errorf("subscriber changed by refused renewals: %s", d)
	}
	_, err = x.ClaimLease(t.Context(), "s/k", 0, "", time.Hour)
	wantErr(t, err, evento.ErrInvalidSubscriberArgs, "ClaimLease with an empty holder of a held lease")
	noErr(t, x.Acknowledge(t.Context(), l, evento.Ack{LastError: "still mine"}), "Acknowledge after refused calls")
}

// testReleaseAfterExpiry pins ReleaseLease of an expired lease nobody
// claimed since: ErrLeaseLost, like RenewLease and Acknowledge, and nothing
// changes; a claim (by anyone) then succeeds with a larger token.
func testReleaseAfterExpiry(t *testing.T, h Harness) {
	x, _ := openStore(t, h)
	l := claim(t, x, "s/k", 0, "w1", shortTTL)
	waitFor(t, 20*time.Millisecond, func() string {
		_, err := x.ClaimLease(t.Context(), "s/k", 0, "w2", time.Hour)
		if errors.Is(err, evento.ErrLeaseHeld) { // not expired yet by the store's clock
			return fmt.Sprintf("w1's lease (ttl %v) has not expired yet", shortTTL)
		}
		noErr(t, err, "ClaimLease by w2 after expiry")
		return ""
	})
	// w2 now holds it: w1's expired lease is stale twice over.
	wantErr(t, x.ReleaseLease(t.Context(), l), evento.ErrLeaseLost, "ReleaseLease of an expired lease another worker claimed")

	// Expired and nobody claimed it since.
	l3 := claim(t, x, "s/k3", 0, "w1", shortTTL)
	waitFor(t, 20*time.Millisecond, func() string {
		err := x.Acknowledge(t.Context(), l3, evento.Ack{})
		if err == nil {
			return fmt.Sprintf("lease (ttl %v) still current", shortTTL)
		}
		wantErr(t, err, evento.ErrLeaseLost, "Acknowledge while waiting for expiry")
		return ""
	})
	before := subscriber(t, x, "s/k3", 0)
	wantErr(t, x.ReleaseLease(t.Context(), l3), evento.ErrLeaseLost, "ReleaseLease of an expired lease nobody claimed")
	if d := subscriberDiff(before, subscriber(t, x, "s/k3", 0), true); d != "" {
		t.Errorf("subscriber changed by ReleaseLease of an expired lease: %s", d)
	}
	l4 := claim(t, x, "s/k3", 0, "w2", time.Hour)
	if l4.Token <= l3.Token {
		t.Errorf("claim after the expired lease gave token %d, want more than %d", l4.Token, l3.Token)
	}
}
