package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/evento-go/evento"
	"github.com/evento-go/evento/executor/storekit"
)

// ackExec is what the acknowledgement rule needs of a write transaction:
// the write connection with its cached statements (Acknowledge), or the
// *sql.Tx a transactional handler wrote in (AcknowledgeTx).
type ackExec interface {
	exec(ctx context.Context, q string, args ...any) (sql.Result, error)
	queryRow(ctx context.Context, q string, args []any, dest ...any) error
}

// ackTx is the evento.AckTx of an AcknowledgeTx: a *sql.Tx on the write
// connection.
type ackTx struct {
	tx *sql.Tx
}

func (t *ackTx) exec(ctx context.Context, q string, args ...any) (sql.Result, error) {
	return t.tx.ExecContext(ctx, q, args...)
}

func (t *ackTx) queryRow(ctx context.Context, q string, args []any, dest ...any) error {
	return t.tx.QueryRowContext(ctx, q, args...).Scan(dest...)
}

// Savepoint runs f inside SAVEPOINT evento_handler, rolling back to it when
// f fails (see evento.AckTx).
func (t *ackTx) Savepoint(f func() error) error {
	ctx := context.Background()
	if _, err := t.tx.ExecContext(ctx, "SAVEPOINT evento_handler"); err != nil {
		return fmt.Errorf("sqlite executor: savepoint: %w", err)
	}
	if ferr := f(); ferr != nil {
		if _, err := t.tx.ExecContext(ctx, "ROLLBACK TO evento_handler"); err != nil {
			return errors.Join(ferr, fmt.Errorf("sqlite executor: rollback to savepoint: %w", err))
		}
		if _, err := t.tx.ExecContext(ctx, "RELEASE evento_handler"); err != nil {
			return errors.Join(ferr, fmt.Errorf("sqlite executor: release savepoint: %w", err))
		}
		return ferr
	}
	if _, err := t.tx.ExecContext(ctx, "RELEASE evento_handler"); err != nil {
		return fmt.Errorf("sqlite executor: release savepoint: %w", err)
	}
	return nil
}

// TxFrom returns the transaction a transactional subscription handler runs
// in (subscription.Config.Transactional) on a SQLite executor: write the
// read model with it, in the same database file as the events, and the
// writes commit with the acknowledgement that checks the lease — or roll
// back with it. It is nil outside such a handler. Do not commit or roll it
// back, and do not write through the Store (Write, snapshots) from the
// handler: the transaction holds the store's single write lock until the
// chunk is acknowledged.
func TxFrom(ctx context.Context) *sql.Tx {
	if t, ok := storekit.AckTxFrom(ctx).(*ackTx); ok {
		return t.tx
	}
	return nil
}

// AcknowledgeTx runs fn in a transaction on the write connection, then
// checks l and records the Ack fn returned in the same transaction (see
// evento.TxAcknowledger). The transaction takes the write lock at its
// start, like the store's own writes (BEGIN IMMEDIATE), and holds it while
// fn runs.
func (s *Store) AcknowledgeTx(ctx context.Context, l evento.Lease, fn func(tx evento.AckTx) (evento.Ack, error)) error {
	if err := s.check(ctx); err != nil {
		return err
	}
	if err := s.lockWrite(ctx); err != nil {
		return err
	}
	defer s.unlockWrite()
	w, err := s.writeConnLocked(ctx)
	if err != nil {
		return s.wrap("acknowledge", err)
	}
	// The transaction is not tied to ctx: handlers' statements honour
	// their own context, and once fn returned the check and the commit
	// run to the end.
	bg := context.WithoutCancel(ctx)
	tx, err := w.conn.BeginTx(bg, nil)
	if err != nil {
		return s.wrap("acknowledge: begin", err)
	}
	done := false
	defer func() {
		if !done {
			if rerr := tx.Rollback(); rerr != nil && !errors.Is(rerr, sql.ErrTxDone) {
				s.cfg.logger.Debug("sqlite executor: rollback failed; discarding the write connection", evento.LogError, rerr)
				s.discardWriteConn()
			}
		}
	}()
	t := &ackTx{tx: tx}
	// A write first takes the write lock now, as BEGIN IMMEDIATE does, so
	// the transaction never has to upgrade a read snapshot that another
	// process made stale.
	if _, err := t.exec(bg, `UPDATE subscribers SET holder = holder WHERE key = ? AND partition = ?`, blob(l.Key), int64(l.Partition)); err != nil {
		return s.txErr("acknowledge: begin", err)
	}
	a, err := fn(t)
	if err != nil {
		return err
	}
	p, err := prepareAck(a)
	if err != nil {
		return err
	}
	if err := s.ackIn(bg, t, l, p); err != nil {
		return err
	}
	done = true
	if err := tx.Commit(); err != nil {
		if rerr := tx.Rollback(); rerr != nil && !errors.Is(rerr, sql.ErrTxDone) {
			s.discardWriteConn()
		}
		return s.wrap("acknowledge: commit", err)
	}
	return nil
}
