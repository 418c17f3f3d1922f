package sqlite

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"

	"github.com/evento-go/evento"
)

// writeConn is the store's one write connection and its prepared
// statements. It is used only by the holder of Store.wsem.
type writeConn struct {
	conn  *sql.Conn
	stmts map[string]*sql.Stmt
	args  []any // scratch: the bound values of a multi-row INSERT
}

// stmt returns a statement prepared on the write connection.
func (w *writeConn) stmt(ctx context.Context, q string) (*sql.Stmt, error) {
	if st, ok := w.stmts[q]; ok {
		return st, nil
	}
	st, err := w.conn.PrepareContext(ctx, q)
	if err != nil {
		return nil, err
	}
	w.stmts[q] = st
	return st, nil
}

func (w *writeConn) exec(ctx context.Context, q string, args ...any) (sql.Result, error) {
	st, err := w.stmt(ctx, q)
	if err != nil {
		return nil, err
	}
	return st.ExecContext(ctx, args...)
}

func (w *writeConn) queryRow(ctx context.Context, q string, args []any, dest ...any) error {
	st, err := w.stmt(ctx, q)
	if err != nil {
		return err
	}
	return st.QueryRowContext(ctx, args...).Scan(dest...)
}

func (w *writeConn) query(ctx context.Context, q string, args ...any) (*sql.Rows, error) {
	st, err := w.stmt(ctx, q)
	if err != nil {
		return nil, err
	}
	return st.QueryContext(ctx, args...)
}

// lockWrite takes the in-process write lock, honouring ctx and Close.
func (s *Store) lockWrite(ctx context.Context) error {
	if err := s.check(ctx); err != nil {
		return err
	}
	select {
	case s.wsem <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	case <-s.done:
		return errClosed
	}
	if s.closed.Load() {
		<-s.wsem
		return errClosed
	}
	return nil
}

func (s *Store) unlockWrite() { <-s.wsem }

// writeConnLocked returns the write connection, opening and configuring it
// if needed. The caller holds wsem.
func (s *Store) writeConnLocked(ctx context.Context) (*writeConn, error) {
	if s.wc != nil {
		return s.wc, nil
	}
	conn, err := s.db.Conn(ctx)
	if err != nil {
		return nil, err
	}
	for _, p := range s.cfg.pragmas() {
		if _, err := conn.ExecContext(ctx, p); err != nil {
			conn.Close()
			return nil, fmt.Errorf("%s: %w", p, err)
		}
	}
	s.wc = &writeConn{conn: conn, stmts: map[string]*sql.Stmt{}}
	return s.wc, nil
}

// discardWriteConn drops a write connection left in an unknown state, so
// the pool closes it instead of reusing it. The caller holds wsem.
func (s *Store) discardWriteConn() { s.releaseWriteConn(true) }

// closeWriteConn returns the write connection to the pool. The caller holds
// wsem (or the store is being built or closed).
func (s *Store) closeWriteConn() { s.releaseWriteConn(false) }

// releaseWriteConn closes the write connection's statements and releases
// the connection; bad marks it unusable so the pool closes it.
func (s *Store) releaseWriteConn(bad bool) {
	if s.wc == nil {
		return
	}
	for _, st := range s.wc.stmts {
		st.Close()
	}
	if bad {
		_ = s.wc.conn.Raw(func(any) error { return driver.ErrBadConn })
	}
	s.wc.conn.Close()
	s.wc = nil
}

// writeTx runs fn inside one BEGIN IMMEDIATE transaction on the write
// connection, committing if fn returns nil and rolling back otherwise.
// Commits are not interrupted by ctx once fn has finished: a commit either
// lands whole or not at all.
func (s *Store) writeTx(ctx context.Context, op string, fn func(w *writeConn) error) error {
	if err := s.lockWrite(ctx); err != nil {
		return err
	}
	defer s.unlockWrite()
	w, err := s.writeConnLocked(ctx)
	if err != nil {
		return s.wrap(op, err)
	}
	if _, err := w.conn.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
		if ctx.Err() != nil {
			// An interrupted BEGIN may or may not have started the
			// transaction; do not trust the connection.
			s.discardWriteConn()
			return ctx.Err()
		}
		return s.wrap(op+": begin", err)
	}
	if err := fn(w); err != nil {
		s.rollback(w)
		return err
	}
	if _, err := w.conn.ExecContext(context.WithoutCancel(ctx), "COMMIT"); err != nil {
		s.rollback(w)
		return s.wrap(op+": commit", err)
	}
	return nil
}

// rollback rolls the write connection's transaction back, discarding the
// connection if that fails (it may be left inside the transaction). The
// caller holds wsem.
func (s *Store) rollback(w *writeConn) {
	if _, err := w.conn.ExecContext(context.Background(), "ROLLBACK"); err != nil {
		// Either SQLite already rolled back ("no transaction is active")
		// or the connection is in an unknown state: a fresh one is cheap.
		s.cfg.logger.Debug("sqlite executor: rollback failed; discarding the write connection", evento.LogError, err)
		s.discardWriteConn()
	}
}

// txErr wraps an error from inside a write transaction, keeping evento's
// typed errors as they are.
func (s *Store) txErr(op string, err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("sqlite executor: %s: %w", op, err)
	}
	return s.wrap(op, err)
}
