package subscription

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/evento-go/evento"
	"github.com/evento-go/evento/executor/storekit"
)

// Tx returns the store transaction a transactional subscription's handler
// runs in (Config.Transactional), or nil outside one. The backend packages
// give it its native type: sqlite.TxFrom (*sql.Tx), postgres.TxFrom
// (pgx.Tx), pebble.KVFrom (the subscription's key-value namespace).
func Tx(ctx context.Context) evento.AckTx { return storekit.AckTxFrom(ctx) }

// checkTx refuses a transactional subscription on an executor that cannot
// acknowledge in a transaction.
func checkTx(p *plan, exec evento.Executor) error {
	if !p.cfg.Transactional {
		return nil
	}
	if _, ok := exec.(evento.TxAcknowledger); !ok {
		return fmt.Errorf("subscription %q: transactional handlers on %T: %w", p.cfg.Key, exec, ErrNotTransactional)
	}
	return nil
}

// errNoProgress rolls back a transaction that handled nothing.
var errNoProgress = errors.New("subscription: nothing to acknowledge")

// errCrashed rolls back the transaction of a crashed worker (test hook).
var errCrashed = errors.New("subscription: worker crashed")

// progress is the session state a transaction changes, restored when it
// rolls back.
type progress struct {
	pending     *evento.Event
	pendingLeft int
	pendingN    int
	lastErr     string
	errDirty    bool
}

func (s *session) progress() progress {
	return progress{s.pending, s.pendingLeft, s.pendingN, s.lastErr, s.errDirty}
}

func (s *session) restore(p progress) {
	s.pending, s.pendingLeft, s.pendingN, s.lastErr, s.errDirty = p.pending, p.pendingLeft, p.pendingN, p.lastErr, p.errDirty
}

// chunkTx dispatches one page of events for a transactional subscription.
// The rule is the one of chunk — in order, one handler call at a time,
// retries with backoff, the exhausted policy — with every handler call
// inside a store transaction that also acknowledges it
// (evento.TxAcknowledger): one transaction per chunk (AckPerChunk) or per
// handled event (AckPerEvent). Each handler call runs in a savepoint: a
// failing call leaves no trace, the events handled before it are committed
// with their acknowledgement, and the event is tried again in a new
// transaction after the backoff, so no transaction stays open while the
// worker waits. A transaction that fails (lease lost, store error, crash)
// keeps nothing: the handlers' writes and the cursor move go together.
func (s *session) chunkTx(events []evento.Event) (stop bool, err error) {
	n := s.r.p.cfg.Partitions
	perEvent := s.r.p.cfg.AckMode == AckPerEvent
	pol := &s.r.p.cfg.Retry
	i, attempt := 0, 1 // the next event and the number of its next attempt
	for i < len(events) {
		if s.quitting() || s.ctx.Err() != nil {
			return true, nil
		}
		var (
			quit    bool
			failErr error // handler error of events[j], rolled back to its savepoint
			noHand  bool  // events[j] has no handler under the safety check
			j       = i
			a       evento.Ack
		)
		saved := s.progress()
		txErr := s.r.txa.AcknowledgeTx(s.ctx, s.getLease(), func(tx evento.AckTx) (evento.Ack, error) {
			hctx := storekit.WithAckTx(s.hctx, tx)
			for ; j < len(events); j++ {
				e := &events[j]
				if s.quitting() || s.ctx.Err() != nil {
					quit = true
					break
				}
				if n > 1 && PartitionOf(e.AggregateID, n) != s.part {
					s.advance(e, j, len(events))
					continue
				}
				h, skip := s.r.p.lookup(e)
				if skip || (h == nil && !s.r.p.cfg.SafetyCheck) {
					s.advance(e, j, len(events))
					continue
				}
				if h == nil {
					noHand = true
					break
				}
				if !s.inLease() {
					quit = true
					break
				}
				var herr error
				serr := tx.Savepoint(func() error {
					herr = s.callIn(hctx, h, e, attempt)
					return herr
				})
				if herr != nil {
					failErr = herr
					if serr != herr {
						// The savepoint could not be rolled back: the
						// transaction is unusable.
						return evento.Ack{}, fmt.Errorf("savepoint: %w", serr)
					}
					break
				}
				if serr != nil {
					return evento.Ack{}, fmt.Errorf("savepoint: %w", serr)
				}
				s.advance(e, j, len(events))
				s.lastErr = ""
				attempt = 1
				if perEvent {
					j++
					break
				}
			}
			if s.r.crashed.Load() {
				return evento.Ack{}, errCrashed // the process "died" before its commit
			}
			var ok bool
			if a, ok = s.ackOf(context.WithoutCancel(s.ctx)); !ok {
				return evento.Ack{}, errNoProgress
			}
			return a, nil
		})
		switch {
		case txErr == nil:
			s.acked(a)
		case errors.Is(txErr, errNoProgress):
			s.restore(saved)
		default:
			s.restore(saved)
			if errors.Is(txErr, errCrashed) || s.r.crashed.Load() {
				return true, nil
			}
			txErr = fmt.Errorf("subscription %q partition %d: acknowledge in transaction: %w", s.r.p.cfg.Key, s.part, txErr)
			if errors.Is(txErr, evento.ErrLeaseLost) {
				s.markLost(txErr)
				return true, nil
			}
			if s.ctx.Err() != nil {
				return true, nil
			}
			return true, txErr
		}
		i = j
		switch {
		case quit:
			return true, nil
		case noHand:
			e := &events[i]
			stop, err := s.exhaustedTx(e, i, len(events), fmt.Errorf("%w: %s %q (aggregate %s)", ErrNoHandler, e.AggregateType, e.Name, e.AggregateID), 1)
			if stop {
				return true, err
			}
			i, attempt = i+1, 1
		case failErr != nil:
			e := &events[i]
			if s.ctx.Err() != nil {
				return true, nil
			}
			if attempt >= pol.MaxAttempts {
				stop, err := s.exhaustedTx(e, i, len(events), failErr, attempt)
				if stop {
					return true, err
				}
				i, attempt = i+1, 1
				continue
			}
			if !s.backoff(pol, e, attempt, failErr) {
				return true, nil
			}
			attempt++
		}
	}
	return false, nil
}

// exhaustedTx applies the exhausted policy to e, events[i] of a page of n
// events of a transactional subscription. Nothing is pending (the events
// before it were committed) and its handler's writes were rolled back, so
// a plain acknowledgement records the park or the error.
func (s *session) exhaustedTx(e *evento.Event, i, n int, err error, attempts int) (stop bool, _ error) {
	res, herr := s.exhausted(e, err, attempts)
	if res == resPark {
		s.advance(e, i, n)
		if err := s.flush(s.ctx); err != nil {
			return true, s.ackFailed(err)
		}
		if f := s.r.sig.Parked; f != nil {
			f(s.r.p.cfg.Key, s.part, e.ID, herr)
		}
		return false, nil
	}
	if err := s.flush(s.ctx); err != nil {
		s.log.Error("subscription: acknowledgement before stopping failed", slog.Any("error", err))
	}
	return true, herr
}
