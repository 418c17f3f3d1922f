package aggregator

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/evento-go/evento"
)

var errConflict = &evento.VersionConflictError{AggregateType: "test/Counter", AggregateID: "x", Expected: 1, Actual: 2}

// fakeClock is a retry clock that only moves when the policy sleeps, so
// the tests below see exactly the pauses the policy chose, with no real
// waiting and no dependence on the machine's speed.
type fakeClock struct {
	t      time.Time
	pauses []time.Duration
}

func (c *fakeClock) now() time.Time { return c.t }

func (c *fakeClock) sleep(ctx context.Context, d time.Duration) error {
	c.pauses = append(c.pauses, d)
	c.t = c.t.Add(d)
	return ctx.Err()
}

func withClock(c *fakeClock, opts ...Option) *options {
	o := buildOptions(opts)
	o.now, o.sleep = c.now, c.sleep
	return &o
}

// TestNextPauseBounds: every pause is drawn from
// [base, min(max, 3 × max(previous, base))], never above the cap, and
// pauses vary (jitter), so racing writers do not retry in step.
func TestNextPauseBounds(t *testing.T) {
	for _, tc := range []struct{ base, max time.Duration }{
		{time.Millisecond, 100 * time.Millisecond},
		{DefaultBackoff, DefaultMaxBackoff},
		{5 * time.Millisecond, 7 * time.Millisecond},
		{time.Millisecond, time.Duration(1<<63 - 1)}, // no overflow in 3 × prev
	} {
		o := buildOptions([]Option{WithBackoff(tc.base, tc.max)})
		seen := map[time.Duration]bool{}
		reachedCap := false
		for range 200 {
			prev := time.Duration(0)
			for range 30 {
				d := o.nextPause(prev)
				hi := tc.max
				if p := max(prev, tc.base); p <= tc.max/3 {
					hi = 3 * p
				}
				if d < tc.base || d > hi || d > tc.max {
					t.Fatalf("base %v max %v: pause %v after %v, want within [%v, %v]", tc.base, tc.max, d, prev, tc.base, hi)
				}
				seen[d] = true
				reachedCap = reachedCap || d > tc.max/2
				prev = d
			}
		}
		if len(seen) < 10 {
			t.Errorf("base %v max %v: only %d distinct pauses in 6000 draws; want jitter", tc.base, tc.max, len(seen))
		}
		if tc.max < time.Hour && !reachedCap {
			t.Errorf("base %v max %v: pauses never grew past half the cap in 200 sequences of 30", tc.base, tc.max)
		}
	}
	// No base: retry at once. A cap below the base is raised to it.
	o := buildOptions([]Option{WithBackoff(0, time.Second)})
	if d := o.nextPause(time.Second); d != 0 {
		t.Fatalf("base 0: pause %v, want 0", d)
	}
	o = buildOptions([]Option{WithBackoff(10*time.Millisecond, time.Millisecond)})
	for range 100 {
		if d := o.nextPause(time.Second); d != 10*time.Millisecond {
			t.Fatalf("max below base: pause %v, want the base 10ms", d)
		}
	}
}

// TestDefaultRetryPolicy pins the defaults the docs describe: a time
// budget, no count limit, jittered pauses between 1ms and the cap.
func TestDefaultRetryPolicy(t *testing.T) {
	o := buildOptions(nil)
	if o.retryFor != DefaultRetryFor || o.attempts != 0 || o.backoff != DefaultBackoff || o.maxBackoff != DefaultMaxBackoff {
		t.Fatalf("defaults: for %v attempts %d backoff %v..%v", o.retryFor, o.attempts, o.backoff, o.maxBackoff)
	}
	if DefaultRetryFor < time.Second || DefaultBackoff <= 0 || DefaultMaxBackoff < DefaultBackoff {
		t.Fatalf("defaults out of shape: for %v backoff %v..%v", DefaultRetryFor, DefaultBackoff, DefaultMaxBackoff)
	}
}

// TestRetryTimeBudget: with conflicts forever, the policy retries until the
// budget has passed and no longer: no attempt starts after it, the last
// pause is cut to end exactly at it, and the error still wraps the
// conflict.
func TestRetryTimeBudget(t *testing.T) {
	c := &fakeClock{t: time.Unix(1000, 0)}
	start := c.t
	const budget = 2 * time.Second
	o := withClock(c, WithRetryFor(budget), WithBackoff(time.Millisecond, 50*time.Millisecond))
	calls := 0
	err := o.retry(context.Background(), func(ctx context.Context, attempt int) error {
		calls++
		if attempt != calls {
			t.Fatalf("attempt %d on call %d", attempt, calls)
		}
		if c.t.Sub(start) > budget {
			t.Fatalf("attempt %d started %v after the first, past the %v budget", attempt, c.t.Sub(start), budget)
		}
		return errConflict
	})
	if !errors.Is(err, evento.ErrVersionConflict) || !strings.Contains(err.Error(), "gave up after") {
		t.Fatalf("err = %v; want a give-up wrapping the conflict", err)
	}
	if got := c.t.Sub(start); got != budget {
		t.Fatalf("retried for %v, want exactly the budget %v (last pause cut to fit)", got, budget)
	}
	if calls < int(budget/(50*time.Millisecond)) || len(c.pauses) != calls-1 {
		t.Fatalf("%d attempts and %d pauses in a %v budget with pauses ≤ 50ms", calls, len(c.pauses), budget)
	}
	// Not a count: when rounds are quick, the default budget allows at
	// least one attempt per longest pause, i.e. dozens of attempts (50
	// writers racing on one aggregate may need about 50).
	n := int(DefaultRetryFor / DefaultMaxBackoff)
	if n < 50 {
		t.Fatalf("the default budget guarantees only %d attempts; 50 racing writers may need 50", n)
	}
	c = &fakeClock{t: time.Unix(1000, 0)}
	calls = 0
	err = withClock(c).retry(context.Background(), func(context.Context, int) error {
		calls++
		if calls == n {
			return nil
		}
		return errConflict
	})
	if err != nil || calls != n {
		t.Fatalf("default policy: %v after %d attempts, want success on attempt %d (elapsed %v)", err, calls, n, c.t.Sub(time.Unix(1000, 0)))
	}
}

// TestRetryAttemptsCap: WithAttempts caps the count on top of the time
// budget; WithRetryFor(0) with no cap retries until fn stops conflicting.
func TestRetryAttemptsCap(t *testing.T) {
	c := &fakeClock{t: time.Unix(0, 0)}
	calls := 0
	err := withClock(c, WithAttempts(7), WithRetryFor(0)).retry(context.Background(), func(context.Context, int) error {
		calls++
		return errConflict
	})
	if !errors.Is(err, evento.ErrVersionConflict) || calls != 7 || len(c.pauses) != 6 {
		t.Fatalf("WithAttempts(7): %v after %d calls, %d pauses", err, calls, len(c.pauses))
	}
	// One attempt: the conflict comes back as fn returned it.
	calls = 0
	err = withClock(c, WithAttempts(1)).retry(context.Background(), func(context.Context, int) error {
		calls++
		return errConflict
	})
	if err != errConflict || calls != 1 {
		t.Fatalf("WithAttempts(1): %v after %d calls; want the conflict itself after 1", err, calls)
	}
	c = &fakeClock{t: time.Unix(0, 0)}
	calls = 0
	err = withClock(c, WithRetryFor(0), WithBackoff(time.Second, time.Minute)).retry(context.Background(), func(context.Context, int) error {
		calls++
		if calls == 1000 {
			return nil
		}
		return errConflict
	})
	if err != nil || calls != 1000 {
		t.Fatalf("no limits: %v after %d calls", err, calls)
	}
}

// TestRetryOnlyConflicts: an error that does not wrap ErrVersionConflict
// is returned as is after one call, with no pause; one that wraps it (as
// the stores' typed errors do, under context) is retried.
func TestRetryOnlyConflicts(t *testing.T) {
	other := errors.New("store unavailable")
	for _, tc := range []struct {
		err   error
		calls int
	}{
		{other, 1},
		{context.DeadlineExceeded, 1},
		{errors.Join(other, errors.New("x")), 1},
		{errConflict, 3},
		{errors.Join(other, errConflict), 3},
	} {
		c := &fakeClock{t: time.Unix(0, 0)}
		calls := 0
		err := withClock(c, WithAttempts(3)).retry(context.Background(), func(context.Context, int) error {
			calls++
			return tc.err
		})
		if calls != tc.calls || !errors.Is(err, tc.err) || (tc.calls == 1 && (err != tc.err || len(c.pauses) != 0)) {
			t.Fatalf("fn error %v: %d calls, %d pauses, err %v; want %d calls", tc.err, calls, len(c.pauses), err, tc.calls)
		}
	}
}

// TestRetryContextDuringBackoff: cancelling ctx while Retry pauses (the
// pause here is an hour) ends it at once with an error wrapping
// ctx.Err(), not a further attempt; a ctx deadline does the same.
func TestRetryContextDuringBackoff(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	failed := make(chan struct{})
	done := make(chan error, 1)
	calls := 0
	start := time.Now()
	go func() {
		done <- Retry(ctx, func(context.Context) error {
			calls++
			if calls == 1 {
				close(failed)
			}
			return errConflict
		}, WithBackoff(time.Hour, time.Hour))
	}()
	<-failed
	cancel()
	err := <-done
	if !errors.Is(err, context.Canceled) || calls != 1 {
		t.Fatalf("Retry = %v after %d calls; want context.Canceled after 1", err, calls)
	}
	if !strings.Contains(err.Error(), "version conflict") {
		t.Errorf("error %q does not mention the last conflict", err)
	}
	if time.Since(start) >= time.Hour {
		t.Fatalf("Retry slept through its pause instead of returning on cancel")
	}

	dctx, dcancel := context.WithTimeout(context.Background(), time.Millisecond)
	defer dcancel()
	calls = 0
	err = Retry(dctx, func(context.Context) error {
		calls++
		return errConflict
	}, WithBackoff(time.Hour, time.Hour))
	if !errors.Is(err, context.DeadlineExceeded) || calls != 1 {
		t.Fatalf("Retry with a deadline = %v after %d calls; want context.DeadlineExceeded after 1", err, calls)
	}

	// With no pause (base 0), a done ctx still stops the retries.
	cctx, ccancel := context.WithCancel(context.Background())
	calls = 0
	err = Retry(cctx, func(context.Context) error {
		calls++
		ccancel()
		return errConflict
	}, WithBackoff(0, 0))
	if !errors.Is(err, context.Canceled) || calls != 1 {
		t.Fatalf("Retry without pause = %v after %d calls; want context.Canceled after 1", err, calls)
	}
}
