package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/evento-go/evento"
	"github.com/evento-go/evento/executor/storekit"
	"github.com/jackc/pgx/v5"
)

// ackTx is the evento.AckTx of an AcknowledgeTx.
type ackTx struct {
	tx pgx.Tx
}

// Savepoint runs f inside SAVEPOINT evento_handler, rolling back to it when
// f fails (see evento.AckTx).
func (t *ackTx) Savepoint(f func() error) error {
	ctx := context.Background()
	if _, err := t.tx.Exec(ctx, "SAVEPOINT evento_handler"); err != nil {
		return fmt.Errorf("postgres executor: savepoint: %w", err)
	}
	if ferr := f(); ferr != nil {
		if _, err := t.tx.Exec(ctx, "ROLLBACK TO SAVEPOINT evento_handler"); err != nil {
			return errors.Join(ferr, fmt.Errorf("postgres executor: rollback to savepoint: %w", err))
		}
		if _, err := t.tx.Exec(ctx, "RELEASE SAVEPOINT evento_handler"); err != nil {
			return errors.Join(ferr, fmt.Errorf("postgres executor: release savepoint: %w", err))
		}
		return ferr
	}
	if _, err := t.tx.Exec(ctx, "RELEASE SAVEPOINT evento_handler"); err != nil {
		return fmt.Errorf("postgres executor: release savepoint: %w", err)
	}
	return nil
}

// TxFrom returns the transaction a transactional subscription handler runs
// in (subscription.Config.Transactional) on a PostgreSQL executor: write
// the read model with it, in the same database, and the writes commit with
// the acknowledgement that checks the lease — or roll back with it. The
// transaction is READ COMMITTED whatever the session default. It is nil
// outside such a handler. Do not commit or roll it back.
func TxFrom(ctx context.Context) pgx.Tx {
	if t, ok := storekit.AckTxFrom(ctx).(*ackTx); ok {
		return t.tx
	}
	return nil
}

// AcknowledgeTx runs fn in a READ COMMITTED transaction, then checks l and
// records the Ack fn returned in the same transaction (see
// evento.TxAcknowledger). The check judges expiry by the server's clock at
// the check (clock_timestamp(), not the transaction's start), and takes
// the subscriber row's lock only then, so renewals are not blocked while fn
// runs; a claim or reset that bumped the token first makes the check fail,
// and one that comes after waits for the commit.
func (s *Store) AcknowledgeTx(ctx context.Context, l evento.Lease, fn func(tx evento.AckTx) (evento.Ack, error)) error {
	if err := s.check(); err != nil {
		return err
	}
	tx, err := s.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.ReadCommitted})
	if err != nil {
		return s.wrap("acknowledge: begin", err)
	}
	bg := context.WithoutCancel(ctx)
	defer tx.Rollback(bg) //nolint:errcheck // a no-op after Commit
	a, err := fn(&ackTx{tx: tx})
	if err != nil {
		return err
	}
	if a.Cursor != "" {
		if _, _, err := storekit.DecodeCursor(a.Cursor); err != nil {
			return fmt.Errorf("postgres executor: acknowledge: %w", err)
		}
	}
	if err := s.ackIn(bg, tx, l, a, "clock_timestamp()"); err != nil {
		if errors.Is(err, evento.ErrLeaseLost) {
			return err
		}
		return s.wrap("acknowledge", err)
	}
	if err := tx.Commit(bg); err != nil {
		return s.wrap("acknowledge: commit", err)
	}
	return nil
}
