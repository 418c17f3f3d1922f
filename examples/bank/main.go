// Command bank is a small bank on evento: it opens accounts, deposits,
// withdraws within an overdraft limit, transfers between accounts as one
// atomic batch, and prints balances and versions.
//
// It stores events where EVENTO_DSN says (pebble:<dir>, sqlite:<file>,
// postgres://…), by default in the embedded Pebble directory .evento/data
// under the working directory, so it runs with no setup. Each run opens new
// accounts, so it can be run again and again.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"

	"github.com/evento-go/evento/aggregator"
	"github.com/evento-go/evento/executor"
	_ "github.com/evento-go/evento/executor/pebble" // registered for executor.Open
	_ "github.com/evento-go/evento/executor/postgres"
	_ "github.com/evento-go/evento/executor/sqlite"
)

// defaultDSN is the embedded Pebble directory used without EVENTO_DSN:
// .evento/data under the working directory, the same default as the evento
// CLI, so `go run ./cmd/evento events` shows what this program wrote.
func defaultDSN() string {
	return "pebble:" + filepath.Join(".evento", "data")
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	dsn := os.Getenv("EVENTO_DSN")
	if dsn == "" {
		dsn = defaultDSN()
	}
	if err := openAndRun(ctx, dsn, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "bank:", err)
		os.Exit(1)
	}
}

func openAndRun(ctx context.Context, dsn string, w io.Writer) error {
	exec, err := executor.Open(ctx, dsn)
	if err != nil {
		return err
	}
	s, err := run(ctx, exec, w)
	if err == nil {
		// The balances read model, kept effectively once by a
		// transactional subscription in the same store.
		_, err = projectBalances(ctx, exec, s, func(format string, args ...any) { fmt.Fprintf(w, format, args...) })
	}
	return errors.Join(err, exec.Close())
}

// AccountView is an account's balance and version as printed.
type AccountView struct {
	ID      string
	Owner   string
	Balance int64
	Version uint64
}

// Summary is the outcome of a run, for tests.
type Summary struct {
	Alice, Bob AccountView
	// Refused are the commands the business rules refused.
	Refused []error
}

// run is the example's flow against store.
func run(ctx context.Context, store aggregator.Store, w io.Writer) (Summary, error) {
	var s Summary
	bank := NewBank(store)

	alice, err := bank.Open(ctx, "Alice", 100_00)
	if err != nil {
		return s, err
	}
	bob, err := bank.Open(ctx, "Bob", 0)
	if err != nil {
		return s, err
	}
	fmt.Fprintf(w, "opened Alice %s (overdraft limit %s) and Bob %s\n", alice, money(100_00), bob)

	res, err := bank.Deposit(ctx, alice, 500_00)
	if err != nil {
		return s, err
	}
	fmt.Fprintf(w, "Alice deposits %s: balance %s, version %d\n", money(500_00), money(res.State.Balance), res.Version)

	if res, err = bank.Withdraw(ctx, alice, 200_00); err != nil {
		return s, err
	}
	fmt.Fprintf(w, "Alice withdraws %s: balance %s, version %d\n", money(200_00), money(res.State.Balance), res.Version)

	// Past the overdraft limit: refused by the business rule.
	if _, err = bank.Withdraw(ctx, alice, 500_00); !errors.Is(err, ErrInsufficientFunds) {
		return s, fmt.Errorf("withdrawal past the limit: want ErrInsufficientFunds, got %v", err)
	}
	s.Refused = append(s.Refused, err)
	fmt.Fprintf(w, "Alice withdraws %s: refused: %v\n", money(500_00), err)

	// Into the overdraft, within the limit, in one atomic batch.
	if err := bank.Transfer(ctx, alice, bob, 350_00); err != nil {
		return s, err
	}
	fmt.Fprintf(w, "Alice transfers %s to Bob\n", money(350_00))

	if err = bank.Transfer(ctx, bob, alice, 1000_00); !errors.Is(err, ErrInsufficientFunds) {
		return s, fmt.Errorf("transfer past the limit: want ErrInsufficientFunds, got %v", err)
	}
	s.Refused = append(s.Refused, err)
	fmt.Fprintf(w, "Bob transfers %s to Alice: refused: %v\n", money(1000_00), err)

	for _, v := range []struct {
		id   string
		into *AccountView
	}{{alice, &s.Alice}, {bob, &s.Bob}} {
		a, version, err := bank.Account(ctx, v.id)
		if err != nil {
			return s, err
		}
		*v.into = AccountView{ID: a.ID, Owner: a.Owner, Balance: a.Balance, Version: version}
		fmt.Fprintf(w, "%-5s %s balance %9s  version %d\n", a.Owner, a.ID, money(a.Balance), version)
	}

	// Time travel: Alice's account as it was after her deposit.
	then, err := bank.AccountAt(ctx, alice, 2)
	if err != nil {
		return s, err
	}
	fmt.Fprintf(w, "Alice at version 2: balance %s\n", money(then.Balance))
	return s, nil
}
