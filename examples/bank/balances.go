package main

import (
	"context"
	"database/sql"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/evento-go/evento"
	"github.com/evento-go/evento/executor/pebble"
	"github.com/evento-go/evento/executor/postgres"
	"github.com/evento-go/evento/executor/sqlite"
	"github.com/evento-go/evento/subscription"
	"github.com/jackc/pgx/v5"
)

// BalancesKey is the subscription key of the balances read model.
const BalancesKey = "bank-balances"

// balanceStore is where the balances read model lives: in the same store
// as the events, so the subscription writes it in the transaction that
// acknowledges the events (subscription.Transactional) and each event is
// applied exactly once, whatever crashes or lease losses happen.
type balanceStore interface {
	// add adds delta to an account's balance inside the handler's
	// transaction.
	add(ctx context.Context, id string, delta int64) error
	// balance reads an account's committed balance.
	balance(ctx context.Context, id string) (int64, bool, error)
}

// balancesOn returns the read model's home on exec's backend.
func balancesOn(ctx context.Context, exec evento.Executor) (balanceStore, error) {
	switch s := exec.(type) {
	case *pebble.Store:
		return pebbleBalances{s.ReadModel(BalancesKey)}, nil
	case *sqlite.Store:
		if _, err := s.DB().ExecContext(ctx, `CREATE TABLE IF NOT EXISTS bank_balances (account TEXT PRIMARY KEY, balance INTEGER NOT NULL)`); err != nil {
			return nil, err
		}
		return sqliteBalances{s}, nil
	case *postgres.Store:
		table := s.Schema() + ".bank_balances"
		if _, err := s.Pool().Exec(ctx, `CREATE TABLE IF NOT EXISTS `+table+` (account text PRIMARY KEY, balance bigint NOT NULL)`); err != nil {
			return nil, err
		}
		return postgresBalances{s, table}, nil
	}
	return nil, fmt.Errorf("bank: no balances read model for %T", exec)
}

// Balances is the subscription that keeps the balances read model.
func Balances(rm balanceStore) *subscription.Subscription {
	return subscription.New(BalancesKey).Transactional(true).
		HandleSet(AccountHandlers(balanceHandlers{rm})) // generated: one typed method per event
}

// balanceHandlers turns each event of an account into a change of its
// balance. It implements the generated AccountHandler interface, so an
// event added to Account without a method here does not compile.
type balanceHandlers struct{ rm balanceStore }

// OnAccountOpened records the new account's zero balance.
func (h balanceHandlers) OnAccountOpened(ctx context.Context, e *evento.Event, _ *AccountOpened) error {
	return h.rm.add(ctx, e.AggregateID, 0)
}

// OnMoneyDeposited adds the deposit.
func (h balanceHandlers) OnMoneyDeposited(ctx context.Context, e *evento.Event, d *MoneyDeposited) error {
	return h.rm.add(ctx, e.AggregateID, d.Amount)
}

// OnMoneyWithdrawn takes the withdrawal off.
func (h balanceHandlers) OnMoneyWithdrawn(ctx context.Context, e *evento.Event, d *MoneyWithdrawn) error {
	return h.rm.add(ctx, e.AggregateID, -d.Amount)
}

// OnTransferSent takes the transfer off the sender.
func (h balanceHandlers) OnTransferSent(ctx context.Context, e *evento.Event, d *TransferSent) error {
	return h.rm.add(ctx, e.AggregateID, -d.Amount)
}

// OnTransferReceived adds the transfer to the receiver.
func (h balanceHandlers) OnTransferReceived(ctx context.Context, e *evento.Event, d *TransferReceived) error {
	return h.rm.add(ctx, e.AggregateID, d.Amount)
}

type pebbleBalances struct{ view *pebble.ReadModel }

func (b pebbleBalances) add(ctx context.Context, id string, delta int64) error {
	kv := pebble.KVFrom(ctx)
	v, _, err := kv.Get([]byte(id))
	if err != nil {
		return err
	}
	var n int64
	if len(v) == 8 {
		n = int64(binary.BigEndian.Uint64(v))
	}
	return kv.Set([]byte(id), binary.BigEndian.AppendUint64(nil, uint64(n+delta)))
}

func (b pebbleBalances) balance(ctx context.Context, id string) (int64, bool, error) {
	v, ok, err := b.view.Get(ctx, []byte(id))
	if err != nil || !ok {
		return 0, ok, err
	}
	return int64(binary.BigEndian.Uint64(v)), true, nil
}

type sqliteBalances struct{ s *sqlite.Store }

func (b sqliteBalances) add(ctx context.Context, id string, delta int64) error {
	_, err := sqlite.TxFrom(ctx).ExecContext(ctx, `INSERT INTO bank_balances (account, balance) VALUES (?1, ?2)
ON CONFLICT (account) DO UPDATE SET balance = balance + ?2`, id, delta)
	return err
}

func (b sqliteBalances) balance(ctx context.Context, id string) (int64, bool, error) {
	var n int64
	err := b.s.DB().QueryRowContext(ctx, `SELECT balance FROM bank_balances WHERE account = ?`, id).Scan(&n)
	if errors.Is(err, errNoRows) {
		return 0, false, nil
	}
	return n, err == nil, err
}

type postgresBalances struct {
	s     *postgres.Store
	table string
}

func (b postgresBalances) add(ctx context.Context, id string, delta int64) error {
	_, err := postgres.TxFrom(ctx).Exec(ctx, `INSERT INTO `+b.table+` (account, balance) VALUES ($1, $2)
ON CONFLICT (account) DO UPDATE SET balance = `+b.table+`.balance + $2`, id, delta)
	return err
}

func (b postgresBalances) balance(ctx context.Context, id string) (int64, bool, error) {
	var n int64
	err := b.s.Pool().QueryRow(ctx, `SELECT balance FROM `+b.table+` WHERE account = $1`, id).Scan(&n)
	if errors.Is(err, errNoRows) || errors.Is(err, pgxNoRows) {
		return 0, false, nil
	}
	return n, err == nil, err
}

// projectBalances brings the balances read model up to date and prints
// the balances of the accounts of s from it.
func projectBalances(ctx context.Context, exec evento.Executor, s Summary, print func(format string, args ...any)) (map[string]int64, error) {
	rm, err := balancesOn(ctx, exec)
	if err != nil {
		return nil, err
	}
	if err := Balances(rm).CatchUp(ctx, exec); err != nil {
		return nil, err
	}
	out := map[string]int64{}
	for _, a := range []AccountView{s.Alice, s.Bob} {
		n, ok, err := rm.balance(ctx, a.ID)
		if err != nil {
			return nil, err
		}
		if !ok {
			return nil, fmt.Errorf("bank: balances read model has no account %s", a.ID)
		}
		out[a.ID] = n
		print("read model: %-5s balance %9s\n", a.Owner, money(n))
	}
	return out, nil
}

var (
	errNoRows = sql.ErrNoRows
	pgxNoRows = pgx.ErrNoRows
)
