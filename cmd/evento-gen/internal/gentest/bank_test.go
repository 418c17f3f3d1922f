package gentest

import (
	"context"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/evento-go/evento"
	"github.com/evento-go/evento/aggregator"
	"github.com/evento-go/evento/cmd/evento-gen/testdata/src/bank"
	"github.com/evento-go/evento/eventtype"
)

func event(t *testing.T, version uint64, data aggregator.EventData) evento.Event {
	t.Helper()
	b, err := evento.Marshal(data)
	if err != nil {
		t.Fatal(err)
	}
	return evento.Event{AggregateType: bank.AccountAggregateType, AggregateID: "acc-1", Version: version, Name: data.EventName(), Data: b}
}

func TestApplyEvent(t *testing.T) {
	opened := time.Date(2024, 5, 1, 12, 0, 0, 1234, time.UTC)
	events := []evento.Event{
		event(t, 1, bank.AccountOpened{Owner: "ada", At: opened}),
		event(t, 2, &bank.MoneyDeposited{Amount: 100, Note: "salary"}),
		event(t, 3, bank.MoneyWithdrawn{Amount: 30}),
		event(t, 4, bank.MoneyDeposited{Amount: 5}),
		event(t, 5, bank.AccountClosed{}),
	}
	var a bank.Account
	var agg aggregator.Aggregate = &a
	for i := range events {
		if err := agg.ApplyEvent(&events[i]); err != nil {
			t.Fatalf("apply %s: %v", events[i].Name, err)
		}
	}
	want := bank.Account{Owner: "ada", Balance: 75, Closed: true, History: []string{"salary", "withdrawn at version 3"}}
	if !a.Opened.Equal(opened) {
		t.Errorf("Opened = %v, want %v", a.Opened, opened)
	}
	a.Opened = time.Time{}
	if !reflect.DeepEqual(a, want) {
		t.Errorf("state = %+v, want %+v", a, want)
	}
	if events[2].Name != "Withdrawn" {
		t.Errorf("MoneyWithdrawn stored as %q, want the directive's name Withdrawn", events[2].Name)
	}

	// An Apply method's error comes back unchanged.
	after := event(t, 6, bank.MoneyDeposited{Amount: 1})
	if err := a.ApplyEvent(&after); !errors.Is(err, bank.ErrClosed) {
		t.Errorf("deposit on closed account: %v, want ErrClosed", err)
	}
}

func TestApplyEventErrors(t *testing.T) {
	var a bank.Account
	unknown := evento.Event{AggregateType: bank.AccountAggregateType, Name: "Nope", Version: 7}
	err := a.ApplyEvent(&unknown)
	if !errors.Is(err, aggregator.ErrUnknownEvent) {
		t.Fatalf("unknown event: %v, want ErrUnknownEvent", err)
	}
	if got := err.Error(); got != `bank: bank/Account: event "Nope" (version 7): aggregator: unknown event` {
		t.Errorf("message %q", got)
	}
	for _, data := range [][]byte{{0xc1}, {0x81, 0xa6, 'a', 'm', 'o', 'u', 'n', 't', 0xa1, 'x'}, {0x81}, {0xdf, 0xff, 0xff, 0xff, 0xff}} {
		bad := evento.Event{AggregateType: bank.AccountAggregateType, Name: bank.MoneyDepositedEventName, Data: data}
		if err := a.ApplyEvent(&bad); !errors.Is(err, evento.ErrDecode) {
			t.Errorf("data %x: %v, want ErrDecode", data, err)
		}
	}
	// Empty data is the zero event.
	empty := evento.Event{Name: bank.AccountClosedEventName}
	if err := a.ApplyEvent(&empty); err != nil || !a.Closed {
		t.Errorf("empty data: err %v, closed %v", err, a.Closed)
	}
}

func TestContracts(t *testing.T) {
	var a bank.Account
	if a.AggregateType() != "bank/Account" {
		t.Errorf("AggregateType %q", a.AggregateType())
	}
	var r aggregator.Revisioned = &a
	if rev := r.SnapshotRevision(); len(rev) != 16 || rev != bank.AccountSnapshotRevision {
		t.Errorf("SnapshotRevision %q", rev)
	}
	for _, e := range []aggregator.AggregateEvent{bank.AccountOpened{}, &bank.MoneyDeposited{}, bank.MoneyWithdrawn{}, bank.AccountClosed{}} {
		if e.EventAggregateType() != "bank/Account" || e.EventName() == "" {
			t.Errorf("%T: %q %q", e, e.EventAggregateType(), e.EventName())
		}
	}
}

type recorder struct{ got []string }

func (r *recorder) OnAccountOpened(_ context.Context, e *evento.Event, d *bank.AccountOpened) error {
	r.got = append(r.got, e.Name+":"+d.Owner)
	return nil
}
func (r *recorder) OnMoneyDeposited(_ context.Context, e *evento.Event, d *bank.MoneyDeposited) error {
	r.got = append(r.got, e.Name+":"+d.Note)
	return nil
}
func (r *recorder) OnMoneyWithdrawn(_ context.Context, e *evento.Event, d *bank.MoneyWithdrawn) error {
	if d.Amount < 0 {
		return errors.New("negative")
	}
	r.got = append(r.got, e.Name)
	return nil
}
func (r *recorder) OnAccountClosed(_ context.Context, e *evento.Event, _ *bank.AccountClosed) error {
	r.got = append(r.got, e.Name)
	return nil
}

func TestHandlers(t *testing.T) {
	var r recorder
	set := bank.AccountHandlers(&r)
	if set.AggregateType != bank.AccountAggregateType || len(set.Handlers) != 4 {
		t.Fatalf("set %q with %d handlers", set.AggregateType, len(set.Handlers))
	}
	ctx := context.Background()
	for _, ev := range []evento.Event{
		event(t, 1, bank.AccountOpened{Owner: "bob"}),
		event(t, 2, bank.MoneyDeposited{Amount: 3, Note: "n"}),
		event(t, 3, bank.MoneyWithdrawn{Amount: 1}),
		event(t, 4, bank.AccountClosed{}),
	} {
		if err := set.Handlers[ev.Name](ctx, &ev); err != nil {
			t.Fatal(err)
		}
	}
	want := []string{"AccountOpened:bob", "MoneyDeposited:n", "Withdrawn", "AccountClosed"}
	if !reflect.DeepEqual(r.got, want) {
		t.Errorf("handled %q, want %q", r.got, want)
	}
	bad := evento.Event{Name: bank.MoneyDepositedEventName, Data: []byte{0xc1}}
	if err := set.Handlers[bad.Name](ctx, &bad); !errors.Is(err, evento.ErrDecode) {
		t.Errorf("bad data: %v, want ErrDecode", err)
	}
	neg := event(t, 5, bank.MoneyWithdrawn{Amount: -1})
	if err := set.Handlers[neg.Name](ctx, &neg); err == nil || err.Error() != "negative" {
		t.Errorf("handler error not returned: %v", err)
	}
}

// TestEventTypeRegistry checks that the generated init registered every
// event's payload type under its stored name, so a stored event decodes
// through its Go type without a switch on names.
func TestEventTypeRegistry(t *testing.T) {
	want := map[string]reflect.Type{
		bank.AccountOpenedEventName:  reflect.TypeOf(&bank.AccountOpened{}),
		bank.MoneyDepositedEventName: reflect.TypeOf(&bank.MoneyDeposited{}),
		bank.MoneyWithdrawnEventName: reflect.TypeOf(&bank.MoneyWithdrawn{}),
		bank.AccountClosedEventName:  reflect.TypeOf(&bank.AccountClosed{}),
	}
	names := eventtype.Names(bank.AccountAggregateType)
	if len(names) != len(want) {
		t.Errorf("registered names %q, want the %d events", names, len(want))
	}
	for name, typ := range want {
		if got, ok := eventtype.Type(bank.AccountAggregateType, name); !ok || got != typ {
			t.Errorf("Type(%s) = %v, %v; want %v", name, got, ok, typ)
		}
	}
	// The stored name counts, not the Go name.
	if _, ok := eventtype.Type(bank.AccountAggregateType, "MoneyWithdrawn"); ok {
		t.Error("MoneyWithdrawn registered under its Go name; its stored name is Withdrawn")
	}
	ev := event(t, 1, bank.MoneyDeposited{Amount: 7, Note: "n"})
	v, ok := eventtype.New(ev.AggregateType, ev.Name)
	if !ok {
		t.Fatal("New: not registered")
	}
	if err := ev.Decode(v); err != nil {
		t.Fatal(err)
	}
	if d, _ := v.(*bank.MoneyDeposited); d == nil || *d != (bank.MoneyDeposited{Amount: 7, Note: "n"}) {
		t.Errorf("decoded %#v", v)
	}
}
