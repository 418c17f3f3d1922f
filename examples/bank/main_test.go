package main

import (
	"bytes"
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/evento-go/evento/aggregator"
	"github.com/evento-go/evento/executor/pebble"
	"github.com/evento-go/evento/executor/postgres/postgrestest"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestRun(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	for round := range 2 { // re-runnable over the same directory
		store, err := pebble.Open(ctx, dir)
		if err != nil {
			t.Fatal(err)
		}
		var out bytes.Buffer
		s, err := run(ctx, store, &out)
		if cerr := store.Close(); cerr != nil {
			t.Fatal(cerr)
		}
		if err != nil {
			t.Fatalf("round %d: %v\n%s", round, err, out.String())
		}
		// Alice: opened, deposit 500, withdraw 200, transfer 350 out.
		if s.Alice.Balance != -50_00 || s.Alice.Version != 4 || s.Alice.Owner != "Alice" {
			t.Errorf("round %d: Alice = %+v; want balance -50.00 at version 4", round, s.Alice)
		}
		// Bob: opened, transfer 350 in; the refused transfer changed nothing.
		if s.Bob.Balance != 350_00 || s.Bob.Version != 2 {
			t.Errorf("round %d: Bob = %+v; want balance 350.00 at version 2", round, s.Bob)
		}
		var ife *InsufficientFundsError
		if len(s.Refused) != 2 || !errors.As(s.Refused[0], &ife) || ife.Amount != 500_00 || ife.Balance != 300_00 {
			t.Errorf("round %d: refused %v; want two insufficient-funds errors, the first for 500.00 on 300.00", round, s.Refused)
		}
		if !strings.Contains(out.String(), "Alice at version 2: balance 500.00") {
			t.Errorf("round %d: output lacks the time-travel line:\n%s", round, out.String())
		}
	}
}

func TestTransferIsAtomicUnderRace(t *testing.T) {
	ctx := context.Background()
	store, err := pebble.Open(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	// 30 commands race on two accounts: allow enough rounds.
	bank := NewBank(store, aggregator.WithAttempts(100))
	a, err := bank.Open(ctx, "A", 0)
	if err != nil {
		t.Fatal(err)
	}
	b, err := bank.Open(ctx, "B", 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bank.Deposit(ctx, a, 100); err != nil {
		t.Fatal(err)
	}
	// Concurrent transfers both ways and withdrawals: money is neither
	// created nor lost, and no balance goes below zero.
	errs := make(chan error, 30)
	for i := range 30 {
		go func() {
			var err error
			switch i % 3 {
			case 0:
				err = bank.Transfer(ctx, a, b, 7)
			case 1:
				err = bank.Transfer(ctx, b, a, 5)
			default:
				_, err = bank.Withdraw(ctx, a, 3)
			}
			if errors.Is(err, ErrInsufficientFunds) {
				err = nil
			}
			errs <- err
		}()
	}
	for range 30 {
		if err := <-errs; err != nil {
			t.Errorf("command: %v", err)
		}
	}
	acc, _, err := bank.Account(ctx, a)
	if err != nil {
		t.Fatal(err)
	}
	bcc, _, err := bank.Account(ctx, b)
	if err != nil {
		t.Fatal(err)
	}
	withdrawn := int64(0)
	evs, err := store.ReadAggregate(ctx, AccountAggregateType, a, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range evs {
		if e.Name == "MoneyWithdrawn" {
			withdrawn += 3
		}
	}
	if acc.Balance < 0 || bcc.Balance < 0 || acc.Balance+bcc.Balance+withdrawn != 100 {
		t.Fatalf("balances %d + %d + withdrawn %d != 100", acc.Balance, bcc.Balance, withdrawn)
	}
}

func TestOpenAndRunByDSN(t *testing.T) {
	// The path main takes: executor.Open with a DSN of each scheme.
	for name, dsn := range map[string]func(t *testing.T) string{
		"pebble":   func(t *testing.T) string { return "pebble:" + t.TempDir() },
		"sqlite":   func(t *testing.T) string { return "sqlite:" + filepath.Join(t.TempDir(), "bank.db") },
		"postgres": func(t *testing.T) string { return postgrestest.DSN(t) }, // skips without a server
	} {
		t.Run(name, func(t *testing.T) {
			var out bytes.Buffer
			if err := openAndRun(context.Background(), dsn(t), &out); err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(out.String(), "Bob transfers 1000.00 to Alice: refused") {
				t.Fatalf("unexpected output:\n%s", out.String())
			}
		})
	}
	if !strings.HasPrefix(defaultDSN(), "pebble:") {
		t.Fatalf("default DSN %q is not an embedded Pebble directory", defaultDSN())
	}
}
