package main

import (
	"context"
	"fmt"
	"time"

	"github.com/evento-go/evento"
	"github.com/evento-go/evento/aggregator"
	"github.com/evento-go/evento/subscription"
	"github.com/oklog/ulid/v2"
)

// Bank runs the account commands against a store.
type Bank struct {
	store aggregator.Store
	opts  []aggregator.Option
}

// NewBank returns a Bank over store; opts apply to every load and command.
func NewBank(store aggregator.Store, opts ...aggregator.Option) *Bank {
	return &Bank{store: store, opts: opts}
}

func newAccount() *Account { return &Account{} }

// Open opens a new account and returns its id.
func (b *Bank) Open(ctx context.Context, owner string, overdraftLimit int64) (string, error) {
	res, err := aggregator.Handle(ctx, b.store, "", newAccount, func(a *Account) ([]aggregator.EventData, error) {
		return a.OpenAccount(owner, overdraftLimit)
	}, b.opts...)
	return res.ID, err
}

// Deposit deposits amount cents on account id.
func (b *Bank) Deposit(ctx context.Context, id string, amount int64) (aggregator.Result[*Account], error) {
	return aggregator.Handle(ctx, b.store, id, newAccount, func(a *Account) ([]aggregator.EventData, error) {
		return a.Deposit(amount)
	}, b.opts...)
}

// Withdraw withdraws amount cents from account id, within its overdraft
// limit (else an *InsufficientFundsError).
func (b *Bank) Withdraw(ctx context.Context, id string, amount int64) (aggregator.Result[*Account], error) {
	return aggregator.Handle(ctx, b.store, id, newAccount, func(a *Account) ([]aggregator.EventData, error) {
		return a.Withdraw(amount)
	}, b.opts...)
}

// Transfer moves amount cents from one account to another. Both sides are
// committed as one atomic batch: either both accounts record the transfer
// or neither does. A concurrent change to either account makes the whole
// command run again.
func (b *Bank) Transfer(ctx context.Context, from, to string, amount int64) error {
	if from == to {
		return ErrSameAccount
	}
	transferID := ulid.Make().String()
	return aggregator.Retry(ctx, func(ctx context.Context) error {
		src, dst := newAccount(), newAccount()
		sv, err := b.load(ctx, from, src)
		if err != nil {
			return err
		}
		dv, err := b.load(ctx, to, dst)
		if err != nil {
			return err
		}
		if err := src.canDebit(amount); err != nil {
			return err
		}
		if !dst.Open {
			return fmt.Errorf("bank: transfer to %s: %w", to, ErrNotOpen)
		}
		out := aggregator.Append(AccountAggregateType, from, sv).Event(TransferSent{TransferID: transferID, To: to, Amount: amount})
		in := aggregator.Append(AccountAggregateType, to, dv).Event(TransferReceived{TransferID: transferID, From: from, Amount: amount})
		return aggregator.CommitAll(ctx, b.store, out, in)
	}, b.opts...)
}

// Account loads account id and its version.
func (b *Bank) Account(ctx context.Context, id string) (*Account, uint64, error) {
	a := newAccount()
	v, err := b.load(ctx, id, a)
	return a, v, err
}

// AccountAt loads account id as it was at version.
func (b *Bank) AccountAt(ctx context.Context, id string, version uint64) (*Account, error) {
	a := newAccount()
	_, err := aggregator.LoadAt(ctx, b.store, id, a, version, b.opts...)
	return a, err
}

func (b *Bank) load(ctx context.Context, id string, a *Account) (uint64, error) {
	v, err := aggregator.Load(ctx, b.store, id, a, b.opts...)
	if err != nil {
		return v, fmt.Errorf("bank: account %s: %w", id, err)
	}
	return v, nil
}

// AlertsKey is the subscription key of the large-movement alerts.
const AlertsKey = "bank-alerts"

// LargeAmount is the smallest withdrawal or outgoing transfer, in cents,
// that raises an alert.
const LargeAmount = 300_00

// Notifier delivers an alert (an e-mail, a chat message…). It may fail;
// the alerts subscription retries it and parks the event when it keeps
// failing, so an operator can replay it from the admin UI.
type Notifier interface {
	Notify(ctx context.Context, accountID, message string) error
}

// NotifierFunc adapts a function to Notifier.
type NotifierFunc func(ctx context.Context, accountID, message string) error

// Notify calls f.
func (f NotifierFunc) Notify(ctx context.Context, accountID, message string) error {
	return f(ctx, accountID, message)
}

// Alerts is the subscription that notifies large withdrawals and outgoing
// transfers. Its side effect lives outside the store, so it is at least
// once (not transactional), and its parked events can be replayed with
// its own handlers (evhttp.Options.Subscriptions).
func Alerts(n Notifier) *subscription.Subscription {
	alert := func(ctx context.Context, e *evento.Event, amount int64, what string) error {
		if amount < LargeAmount {
			return nil
		}
		return n.Notify(ctx, e.AggregateID, fmt.Sprintf("%s of %s on account %s", what, money(amount), e.AggregateID))
	}
	return subscription.New(AlertsKey).
		Handle(AccountAggregateType, MoneyWithdrawnEventName, func(ctx context.Context, e *evento.Event) error {
			var v MoneyWithdrawn
			if err := e.Decode(&v); err != nil {
				return err
			}
			return alert(ctx, e, v.Amount, "withdrawal")
		}).
		Handle(AccountAggregateType, TransferSentEventName, func(ctx context.Context, e *evento.Event) error {
			var v TransferSent
			if err := e.Decode(&v); err != nil {
				return err
			}
			return alert(ctx, e, v.Amount, "transfer")
		}).
		Retry(subscription.RetryPolicy{Initial: 50 * time.Millisecond, Max: time.Second, MaxAttempts: 3}).
		OnExhausted(subscription.ParkEvent)
}
