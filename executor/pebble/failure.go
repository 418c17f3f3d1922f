package pebble

import (
	"errors"
	"fmt"

	pdb "github.com/cockroachdb/pebble/v2"
	"github.com/evento-go/evento"
)

// ErrFailed means a commit to the Pebble database failed, so the Store
// stopped: a failed commit may have reached Pebble's memtable without
// reaching the log on disk, and Pebble's commit pipeline is unusable after
// it. Every later call returns an error that wraps ErrFailed, evento.ErrClosed
// and the commit's own error. Close the Store and open the directory again:
// on reopen Pebble replays exactly what reached its log.
var ErrFailed = errors.New("pebble executor: store failed")

// failure is the error every call returns once the Store has failed.
type failure struct{ cause error }

func (f *failure) Error() string {
	return "pebble executor: store failed after a commit error, close it and reopen the database: " + f.cause.Error()
}

// Unwrap makes errors.Is true for ErrFailed, evento.ErrClosed and the
// cause.
func (f *failure) Unwrap() []error { return []error{ErrFailed, evento.ErrClosed, f.cause} }

// fail records the first commit failure; every later call returns it.
func (s *Store) fail(cause error) error {
	f := &failure{cause: cause}
	if s.failure.CompareAndSwap(nil, f) {
		s.cfg.logger.Error("pebble executor: commit failed, the store refuses every later call", evento.LogError, cause)
		return f
	}
	return s.failure.Load()
}

// failed returns the Store's failure, or nil.
func (s *Store) failed() error {
	if f := s.failure.Load(); f != nil {
		return f
	}
	return nil
}

// applyBatch commits b with the Store's write options. Every batch the
// Store writes goes through it. A failed commit fails the Store (see
// ErrFailed) and b must not be used again: Pebble may still hold it. Pebble
// reports a failed commit through Logger.Fatalf; the loggers Open installs
// panic there, and applyBatch turns that panic into the failure.
func (s *Store) applyBatch(b *pdb.Batch) (err error) {
	if f := s.failed(); f != nil {
		return f
	}
	defer func() {
		if v := recover(); v != nil {
			cause, ok := v.(error)
			if !ok {
				cause = fmt.Errorf("%v", v)
			}
			err = s.fail(fmt.Errorf("pebble executor: commit: %w", cause))
		}
	}()
	if err := b.Commit(s.wopts); err != nil {
		return s.fail(fmt.Errorf("pebble executor: commit: %w", err))
	}
	return nil
}

// fatalLogger makes Pebble's Fatalf never return: after the wrapped
// logger's Fatalf (which may exit the process) it panics, so that a commit
// error Pebble reports through Fatalf reaches applyBatch instead of
// looking like a successful commit.
type fatalLogger struct{ pdb.Logger }

func (l fatalLogger) Fatalf(format string, args ...any) {
	l.Logger.Fatalf(format, args...)
	panic(newFatal(format, args))
}

// fatalError is what the Store's loggers panic with in Fatalf: Pebble's
// message, wrapping the errors among its arguments (a failed commit's
// cause).
type fatalError struct {
	msg  string
	errs []error
}

func newFatal(format string, args []any) *fatalError {
	f := &fatalError{msg: fmt.Sprintf("pebble: fatal: "+format, args...)}
	for _, a := range args {
		if err, ok := a.(error); ok {
			f.errs = append(f.errs, err)
		}
	}
	return f
}

func (f *fatalError) Error() string   { return f.msg }
func (f *fatalError) Unwrap() []error { return f.errs }
