package main

import (
	"errors"
	"fmt"

	"github.com/evento-go/evento"
	"github.com/evento-go/evento/aggregator"
)

//go:generate go run github.com/evento-go/evento/cmd/evento-gen

// Account is a bank account, rebuilt from its events. Amounts are in cents.
// Its exported fields are its whole state, which snapshots record.
//
//evento:aggregate bank/Account
type Account struct {
	ID             string
	Owner          string
	Balance        int64
	OverdraftLimit int64
	Open           bool
}

// Domain errors.
var (
	// ErrInsufficientFunds means a withdrawal or transfer would take the
	// balance below the overdraft limit. The concrete error is an
	// *InsufficientFundsError.
	ErrInsufficientFunds = errors.New("bank: insufficient funds")
	// ErrNotOpen means the account does not exist (or is not open).
	ErrNotOpen = errors.New("bank: account not open")
	// ErrAlreadyOpen means the account was opened before.
	ErrAlreadyOpen = errors.New("bank: account already open")
	// ErrInvalidAmount means an amount is not positive.
	ErrInvalidAmount = errors.New("bank: amount must be positive")
	// ErrSameAccount means a transfer names one account twice.
	ErrSameAccount = errors.New("bank: transfer to the same account")
)

// InsufficientFundsError is the business rule refusing an overdraft past
// the account's limit.
type InsufficientFundsError struct {
	AccountID      string
	Balance        int64
	Amount         int64
	OverdraftLimit int64
}

// Error describes the refused debit.
func (e *InsufficientFundsError) Error() string {
	return fmt.Sprintf("bank: insufficient funds on %s: balance %s, amount %s, overdraft limit %s",
		e.AccountID, money(e.Balance), money(e.Amount), money(e.OverdraftLimit))
}

// Is makes errors.Is(err, ErrInsufficientFunds) true.
func (e *InsufficientFundsError) Is(target error) bool { return target == ErrInsufficientFunds }

// Decisions: each checks the business rules against the current state and
// returns the events to record.

// OpenAccount decides to open the account.
func (a *Account) OpenAccount(owner string, overdraftLimit int64) ([]aggregator.EventData, error) {
	if a.Open {
		return nil, ErrAlreadyOpen
	}
	if overdraftLimit < 0 {
		return nil, ErrInvalidAmount
	}
	return []aggregator.EventData{AccountOpened{Owner: owner, OverdraftLimit: overdraftLimit}}, nil
}

// Deposit decides to deposit amount.
func (a *Account) Deposit(amount int64) ([]aggregator.EventData, error) {
	if !a.Open {
		return nil, ErrNotOpen
	}
	if amount <= 0 {
		return nil, ErrInvalidAmount
	}
	return []aggregator.EventData{MoneyDeposited{Amount: amount}}, nil
}

// Withdraw decides to withdraw amount, within the overdraft limit.
func (a *Account) Withdraw(amount int64) ([]aggregator.EventData, error) {
	if err := a.canDebit(amount); err != nil {
		return nil, err
	}
	return []aggregator.EventData{MoneyWithdrawn{Amount: amount}}, nil
}

func (a *Account) canDebit(amount int64) error {
	if !a.Open {
		return ErrNotOpen
	}
	if amount <= 0 {
		return ErrInvalidAmount
	}
	if a.Balance-amount < -a.OverdraftLimit {
		return &InsufficientFundsError{AccountID: a.ID, Balance: a.Balance, Amount: amount, OverdraftLimit: a.OverdraftLimit}
	}
	return nil
}

// Apply methods: how each event changes the state. Each takes its event's
// payload, and the stored event when it needs it (evento-gen's convention);
// they never fail.

// ApplyAccountOpened applies AccountOpened.
func (a *Account) ApplyAccountOpened(d *AccountOpened, e *evento.Event) {
	a.ID, a.Owner, a.OverdraftLimit, a.Open = e.AggregateID, d.Owner, d.OverdraftLimit, true
}

// ApplyMoneyDeposited applies MoneyDeposited.
func (a *Account) ApplyMoneyDeposited(d *MoneyDeposited) { a.Balance += d.Amount }

// ApplyMoneyWithdrawn applies MoneyWithdrawn.
func (a *Account) ApplyMoneyWithdrawn(d *MoneyWithdrawn) { a.Balance -= d.Amount }

// ApplyTransferSent applies TransferSent.
func (a *Account) ApplyTransferSent(d *TransferSent) { a.Balance -= d.Amount }

// ApplyTransferReceived applies TransferReceived.
func (a *Account) ApplyTransferReceived(d *TransferReceived) { a.Balance += d.Amount }

func money(cents int64) string {
	sign := ""
	if cents < 0 {
		sign, cents = "-", -cents
	}
	return fmt.Sprintf("%s%d.%02d", sign, cents/100, cents%100)
}
