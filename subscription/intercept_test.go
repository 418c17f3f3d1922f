package subscription

import (
	"context"
	"errors"
	"log/slog"
	"reflect"
	"testing"

	"github.com/evento-go/evento"
)

// Interceptors nest in the order added, see every call with its attempt,
// and see a handler's panic as an error wrapping ErrHandlerPanic.
func TestIntercept(t *testing.T) {
	ctx := context.Background()
	x := newPebble(t)
	if err := x.Write(ctx, []evento.Event{
		{AggregateType: "t/A", AggregateID: "1", Version: 1, Name: "Ok"},
		{AggregateType: "t/A", AggregateID: "1", Version: 2, Name: "Boom"},
	}); err != nil {
		t.Fatal(err)
	}
	var trail []string
	var panicErrs int
	mk := func(name string) Interceptor {
		return func(ctx context.Context, c Call, next func(context.Context) error) error {
			trail = append(trail, name+">"+c.Event.Name)
			err := next(ctx)
			if errors.Is(err, ErrHandlerPanic) {
				panicErrs++
			}
			trail = append(trail, name+"<")
			if c.Key != "icpt" || c.Attempt != 1 {
				t.Errorf("call %+v", c)
			}
			return err
		}
	}
	s := New("icpt").
		Handle("t/A", "Ok", func(context.Context, *evento.Event) error { return nil }).
		Handle("t/A", "Boom", func(context.Context, *evento.Event) error { panic("boom") }).
		Retry(RetryPolicy{MaxAttempts: 1}).OnExhausted(ParkEvent).
		Intercept(mk("outer")).Intercept(mk("inner"))
	if err := s.CatchUp(ctx, x); err != nil {
		t.Fatal(err)
	}
	want := []string{"outer>Ok", "inner>Ok", "inner<", "outer<", "outer>Boom", "inner>Boom", "inner<", "outer<"}
	if !reflect.DeepEqual(trail, want) {
		t.Errorf("trail %v, want %v", trail, want)
	}
	if panicErrs != 2 {
		t.Errorf("%d interceptors saw the panic as ErrHandlerPanic, want 2", panicErrs)
	}
	parked, err := x.ParkedEvents(ctx, "icpt")
	if err != nil || len(parked) != 1 {
		t.Fatalf("parked %v, %v; want the panicking event", parked, err)
	}
}

func TestJoinSignals(t *testing.T) {
	var got []string
	a := &Signals{LeaseGained: func(evento.Lease) { got = append(got, "a") }, Stopped: func(error) { got = append(got, "a-stop") }}
	b := &Signals{LeaseGained: func(evento.Lease) { got = append(got, "b") }}
	if JoinSignals(nil, a, nil) != a {
		t.Errorf("one non-nil Signals is not returned as is")
	}
	j := JoinSignals(a, nil, b)
	j.LeaseGained(evento.Lease{})
	j.Stopped(nil)
	if j.Parked != nil {
		t.Errorf("a callback nobody set is not nil")
	}
	if want := []string{"a", "b", "a-stop"}; !reflect.DeepEqual(got, want) {
		t.Errorf("called %v, want %v", got, want)
	}
}

// A handler call through an interceptor allocates nothing of its own, and
// the pooled next still turns a panic into ErrHandlerPanic.
func TestInvokeAllocs(t *testing.T) {
	var seen *evento.Event
	pass := func(ctx context.Context, c Call, next func(context.Context) error) error {
		seen = c.Event
		return next(ctx)
	}
	s := &session{r: &runner{p: &plan{cfg: Config{Key: "k", Intercept: pass}}}, log: slog.New(slog.DiscardHandler)}
	ctx := context.Background()
	e := &evento.Event{Name: "E"}
	var calls int
	h := func(_ context.Context, got *evento.Event) error {
		if got != e {
			t.Errorf("handler got %p, want %p", got, e)
		}
		calls++
		return nil
	}
	if n := testing.AllocsPerRun(1000, func() {
		if err := s.invoke(ctx, h, e, 1); err != nil {
			t.Fatal(err)
		}
	}); n != 0 {
		t.Errorf("invoke through an interceptor: %v allocations per call, want 0", n)
	}
	if calls != 1001 || seen != e {
		t.Errorf("handler called %d times (want 1001), interceptor saw %p", calls, seen)
	}
	err := s.invoke(ctx, func(context.Context, *evento.Event) error { panic("boom") }, e, 2)
	if !errors.Is(err, ErrHandlerPanic) {
		t.Errorf("panicking handler: %v, want ErrHandlerPanic", err)
	}
	if err := s.invoke(ctx, h, e, 3); err != nil || calls != 1002 {
		t.Errorf("after a panic: %v, %d calls", err, calls)
	}
}
