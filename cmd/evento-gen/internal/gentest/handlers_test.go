package gentest

import (
	"context"
	"errors"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/evento-go/evento"
	"github.com/evento-go/evento/aggregator"
	"github.com/evento-go/evento/cmd/evento-gen/testdata/src/bank"
	"github.com/evento-go/evento/cmd/evento-gen/testdata/src/codec"
	"github.com/evento-go/evento/executor/pebble"
	"github.com/evento-go/evento/subscription"
)

// deposits handles two of Account's four events.
type deposits struct{ got []string }

func (d *deposits) OnMoneyDeposited(_ context.Context, e *evento.Event, data *bank.MoneyDeposited) error {
	d.got = append(d.got, e.AggregateID+":+"+itoa(data.Amount))
	return nil
}

func (d *deposits) OnMoneyWithdrawn(_ context.Context, e *evento.Event, data *bank.MoneyWithdrawn) error {
	d.got = append(d.got, e.AggregateID+":-"+itoa(data.Amount))
	return nil
}

// The compiler checks the methods a read model means to have.
var _ interface {
	bank.MoneyDepositedHandler
	bank.MoneyWithdrawnHandler
} = (*deposits)(nil)

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

func TestHandlersOfSubset(t *testing.T) {
	var d deposits
	set, err := bank.AccountHandlersOf(&d)
	if err != nil {
		t.Fatal(err)
	}
	if set.AggregateType != bank.AccountAggregateType {
		t.Errorf("aggregate type %q", set.AggregateType)
	}
	names := slices.Sorted(func(yield func(string) bool) {
		for n := range set.Handlers {
			if !yield(n) {
				return
			}
		}
	})
	if want := []string{bank.MoneyDepositedEventName, bank.MoneyWithdrawnEventName}; !reflect.DeepEqual(names, want) {
		t.Fatalf("handlers for %q, want %q", names, want)
	}
	ctx := context.Background()
	for _, ev := range []evento.Event{event(t, 2, bank.MoneyDeposited{Amount: 12}), event(t, 3, bank.MoneyWithdrawn{Amount: 5})} {
		if err := set.Handlers[ev.Name](ctx, &ev); err != nil {
			t.Fatal(err)
		}
	}
	if want := []string{"acc-1:+12", "acc-1:-5"}; !reflect.DeepEqual(d.got, want) {
		t.Errorf("handled %q, want %q", d.got, want)
	}
	bad := evento.Event{Name: bank.MoneyDepositedEventName, Data: []byte{0xc1}}
	if err := set.Handlers[bad.Name](ctx, &bad); !errors.Is(err, evento.ErrDecode) {
		t.Errorf("bad data: %v, want ErrDecode", err)
	}

	// A value implementing every interface gets every event, as with
	// AccountHandlers.
	var r recorder
	all, err := bank.AccountHandlersOf(&r)
	if err != nil || len(all.Handlers) != 4 {
		t.Errorf("full handler: %d handlers, %v", len(all.Handlers), err)
	}
}

// Values that would silently handle nothing, or less than they mean to.
type (
	nothing    struct{}
	misspelt   struct{ deposits }
	wrongSig   struct{}
	byValue    struct{}
	onlyOthers struct{}
)

func (nothing) String() string { return "nothing" }

// OnAcountOpened has the signature of AccountOpened's handler: a typo.
func (*misspelt) OnAcountOpened(context.Context, *evento.Event, *bank.AccountOpened) error {
	return nil
}

// OnAccountClosed takes the payload by value.
func (*wrongSig) OnAccountClosed(context.Context, *evento.Event, bank.AccountClosed) error {
	return nil
}

// OnAccountOpened is a pointer method, and the value is passed by copy.
func (*byValue) OnAccountOpened(context.Context, *evento.Event, *bank.AccountOpened) error {
	return nil
}

// OnScalars handles an event of another aggregate only.
func (*onlyOthers) OnScalars(context.Context, *evento.Event, *codec.Scalars) error { return nil }

func TestHandlersOfRefuses(t *testing.T) {
	cases := []struct {
		name string
		h    any
		want []string
	}{
		{"nil", nil, []string{"nil value"}},
		{"implements nothing", nothing{}, []string{"gentest.nothing handles no event of bank/Account", "OnAccountClosed, OnAccountOpened, OnMoneyDeposited, OnMoneyWithdrawn"}},
		{"another aggregate's handler", &onlyOthers{}, []string{"handles no event of bank/Account"}},
		{"misspelt method", &misspelt{}, []string{"OnAcountOpened has the signature of the handler of AccountOpened, which is named OnAccountOpened"}},
		{"wrong signature", &wrongSig{}, []string{"OnAccountClosed is func(context.Context, *evento.Event, bank.AccountClosed) error, want func(context.Context, *evento.Event, *bank.AccountClosed) error"}},
		{"pointer method on a value", byValue{}, []string{"OnAccountOpened has a pointer receiver, so gentest.byValue does not implement it: pass a *gentest.byValue"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := bank.AccountHandlersOf(c.h)
			t.Log(err)
			if !errors.Is(err, subscription.ErrInvalidConfig) {
				t.Fatalf("err %v, want ErrInvalidConfig", err)
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
	// misspelt's two real handlers alone would be a valid set: the typo is
	// what refuses it, rather than dropping AccountOpened silently.
	if _, err := bank.AccountHandlersOf(&(&misspelt{}).deposits); err != nil {
		t.Errorf("misspelt's real handlers alone: %v", err)
	}
}

// closings handles AccountClosed with a value receiver; its String method
// is no handler and is ignored.
type closings struct{ n *int }

func (c closings) OnAccountClosed(context.Context, *evento.Event, *bank.AccountClosed) error {
	*c.n++
	return nil
}

func (closings) String() string { return "closings" }

func TestHandlersOfValue(t *testing.T) {
	var n int
	set, err := bank.AccountHandlersOf(closings{&n})
	if err != nil {
		t.Fatal(err)
	}
	ev := event(t, 5, bank.AccountClosed{})
	if len(set.Handlers) != 1 || set.Handlers[bank.AccountClosedEventName](context.Background(), &ev) != nil || n != 1 {
		t.Errorf("value handler: %d handlers, %d calls", len(set.Handlers), n)
	}
}

// report is one read model over two aggregates: deposits of bank.Account
// and transfers of codec.Ledger.
type report struct {
	deposits
	lines []string
}

func (r *report) OnMoneyDeposited(ctx context.Context, e *evento.Event, d *bank.MoneyDeposited) error {
	r.lines = append(r.lines, "deposit "+itoa(d.Amount))
	return nil
}

func (r *report) OnTransfer(_ context.Context, e *evento.Event, d *codec.Transfer) error {
	r.lines = append(r.lines, "transfer "+d.From.Name+">"+d.To.Name)
	return nil
}

// TestHandlersOfSeveralAggregates runs one read model over events of two
// aggregates through a subscription on a real store: each event reaches
// its typed method, in commit order, and the generated Append and Create
// record the aggregate type.
func TestHandlersOfSeveralAggregates(t *testing.T) {
	ctx := context.Background()
	store, err := pebble.OpenMemory(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()

	acc := bank.AccountCreate().Event(bank.AccountOpened{Owner: "ada"}).Event(bank.MoneyDeposited{Amount: 10})
	if _, err := acc.Commit(ctx, store); err != nil {
		t.Fatal(err)
	}
	if _, err := codec.LedgerAppend("l-1", 0).Event(codec.Transfer{From: codec.Party{Name: "ada"}, To: codec.Party{Name: "bob"}}).Commit(ctx, store); err != nil {
		t.Fatal(err)
	}
	if _, err := bank.AccountAppend(acc.ID(), 2).Event(bank.MoneyWithdrawn{Amount: 3}).Event(bank.MoneyDeposited{Amount: 4}).Commit(ctx, store); err != nil {
		t.Fatal(err)
	}
	var a bank.Account
	if v, err := aggregator.Load(ctx, store, acc.ID(), &a); err != nil || v != 4 || a.Balance != 11 {
		t.Fatalf("Load = %d, %v, balance %d", v, err, a.Balance)
	}

	var r report
	accounts, err := bank.AccountHandlersOf(&r)
	if err != nil {
		t.Fatal(err)
	}
	ledgers, err := codec.LedgerHandlersOf(&r)
	if err != nil {
		t.Fatal(err)
	}
	if len(accounts.Handlers) != 2 || len(ledgers.Handlers) != 1 {
		t.Errorf("%d account and %d ledger handlers, want 2 and 1", len(accounts.Handlers), len(ledgers.Handlers))
	}
	if err := subscription.New("report").HandleSet(accounts).HandleSet(ledgers).CatchUp(ctx, store); err != nil {
		t.Fatal(err)
	}
	if want := []string{"deposit 10", "transfer ada>bob", "deposit 4"}; !reflect.DeepEqual(r.lines, want) {
		t.Errorf("report %q, want %q", r.lines, want)
	}
	if want := []string{acc.ID() + ":-3"}; !reflect.DeepEqual(r.got, want) {
		t.Errorf("withdrawals %q, want %q", r.got, want)
	}
}

// TestAppendChecksAggregateType: the generated builders carry their
// aggregate type, and an event of another aggregate fails the commit with
// a typed error, writing nothing.
func TestAppendChecksAggregateType(t *testing.T) {
	ctx := context.Background()
	store, err := pebble.OpenMemory(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	b := bank.AccountAppend("a-1", 0)
	if b.AggregateType() != bank.AccountAggregateType || b.ID() != "a-1" || b.Version() != 0 {
		t.Errorf("builder %s/%s@%d", b.AggregateType(), b.ID(), b.Version())
	}
	if c := codec.LedgerCreate(); c.AggregateType() != codec.LedgerAggregateType || c.ID() == "" {
		t.Errorf("LedgerCreate: %s/%q", c.AggregateType(), c.ID())
	}
	_, err = b.Event(bank.AccountOpened{Owner: "ada"}).Event(codec.Scalars{}).Commit(ctx, store)
	var invalid *evento.InvalidEventError
	if !errors.Is(err, evento.ErrInvalidEvent) || !errors.As(err, &invalid) || invalid.Index != 1 || !strings.Contains(err.Error(), `"test/codec.Ledger", not "bank/Account"`) {
		t.Fatalf("commit of a Ledger event to an Account: %v", err)
	}
	if v, err := store.AggregateVersion(ctx, bank.AccountAggregateType, "a-1"); err != nil || v != 0 {
		t.Errorf("after the refused commit: version %d, %v", v, err)
	}
}
