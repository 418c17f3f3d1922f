// Package bank is a small aggregate that evento-gen's tests generate code
// for, compile and run.
package bank

import (
	"errors"
	"time"

	"github.com/evento-go/evento"
)

//go:generate go run github.com/evento-go/evento/cmd/evento-gen

// Account is a bank account.
//
//evento:aggregate bank/Account
type Account struct {
	Owner   string
	Balance int64
	Closed  bool
	History []string
	Opened  time.Time
}

// AccountOpened opens an account.
type AccountOpened struct {
	Owner string `msgpack:"owner"`
	At    time.Time
}

// MoneyDeposited adds money.
type MoneyDeposited struct {
	Amount int64  `msgpack:"amount"`
	Note   string `msgpack:"note,omitempty"`
}

// MoneyWithdrawn removes money.
//
//evento:event Withdrawn
type MoneyWithdrawn struct {
	Amount int64 `msgpack:"amount"`
}

// AccountClosed closes the account.
type AccountClosed struct{}

// ErrClosed is returned when money moves on a closed account.
var ErrClosed = errors.New("bank: account closed")

// ApplyAccountOpened applies AccountOpened.
func (a *Account) ApplyAccountOpened(e *AccountOpened) error {
	a.Owner = e.Owner
	a.Opened = e.At
	return nil
}

// ApplyMoneyDeposited applies MoneyDeposited.
func (a *Account) ApplyMoneyDeposited(e *MoneyDeposited) error {
	if a.Closed {
		return ErrClosed
	}
	a.Balance += e.Amount
	if e.Note != "" {
		a.History = append(a.History, e.Note)
	}
	return nil
}

// ApplyMoneyWithdrawn applies MoneyWithdrawn; it also sees the stored event.
func (a *Account) ApplyMoneyWithdrawn(e *MoneyWithdrawn, ev *evento.Event) error {
	if a.Closed {
		return ErrClosed
	}
	a.Balance -= e.Amount
	a.History = append(a.History, "withdrawn at version "+itoa(ev.Version))
	return nil
}

// ApplyAccountClosed applies AccountClosed and cannot fail.
func (a *Account) ApplyAccountClosed(*AccountClosed) { a.Closed = true }

func itoa(v uint64) string {
	if v == 0 {
		return "0"
	}
	var b [20]byte
	i := len(b)
	for v > 0 {
		i--
		b[i] = byte('0' + v%10)
		v /= 10
	}
	return string(b[i:])
}
