package subscription

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/evento-go/evento"
	"github.com/evento-go/evento/cursor"
)

// runner is what a worker and CatchUp share: the plan, the executor and the
// holder id.
type runner struct {
	p       *plan
	exec    evento.Executor
	id      string
	log     *slog.Logger
	sig     Signals
	crashed *atomic.Bool          // test hook: a crashed worker neither acks nor releases
	txa     evento.TxAcknowledger // set for transactional subscriptions
	// pageMax is the largest page read: cursor.MaxPageSize, or ChunkSize
	// once the store refused a larger page (its max_page_size is lower).
	pageMax atomic.Int64
}

func newRunner(p *plan, exec evento.Executor, id string) *runner {
	r := &runner{p: p, exec: exec, id: id, crashed: new(atomic.Bool)}
	r.pageMax.Store(int64(max(cursor.MaxPageSize, p.cfg.ChunkSize)))
	r.log = p.cfg.Logger.With(slog.String("subscription", p.cfg.Key), slog.String("worker", id))
	if p.cfg.Signals != nil {
		r.sig = *p.cfg.Signals
	}
	if p.cfg.Transactional {
		r.txa, _ = exec.(evento.TxAcknowledger)
	}
	return r
}

// result is the outcome of dispatching one event.
type result uint8

const (
	resDone result = iota // handled or skipped: advance
	resPark               // parked: advance and record the parked event
	resQuit               // stop, lease loss or hard stop interrupted it: do not advance
	resFail               // retries exhausted under StopWorker
)

// session processes one partition while holding its lease.
type session struct {
	r       *runner
	part    uint32
	log     *slog.Logger
	ctx     context.Context // cancelled on lease loss and on a hard stop
	cancel  context.CancelCauseFunc
	hctx    context.Context // ctx with the handler env
	quit    <-chan struct{} // graceful stop of the worker; nil in CatchUp
	leave   chan struct{}   // closed to release this partition (rebalance); nil in CatchUp
	leaving atomic.Bool
	wake    chan struct{} // notifications; nil in CatchUp
	catchUp bool
	timer   *time.Timer

	leaseMu  sync.Mutex
	lease    evento.Lease
	deadline time.Time // local: last successful claim/renew start + TTL - margin (monotonic)
	dlTimer  *time.Timer
	lost     atomic.Bool // lease lost or past its deadline: stop at once, no release
	expired  atomic.Bool // lost because the local deadline passed (the store may still hold it)

	cursor      string        // the acknowledged cursor
	pending     *evento.Event // last event processed and not yet acknowledged
	pendingLeft int           // events of its page after it
	pendingN    int           // events processed since the last acknowledgement: the chunk so far
	lastPage    bool          // no page follows the current one: it ends at the head
	limit       int           // the chunk's size while behind: ChunkSize, doubling to MaxChunkSize/2
	chunkStart  time.Time     // when the chunk began (last acknowledgement or session start)
	inflight    *ackCall      // the acknowledgement being written in the background, if any
	parked      []evento.ParkedEvent
	lastErr     string
	errDirty    bool
	head        evento.Position
	haveHead    bool
}

// newSession starts a session on lease l, claimed by a call that started
// at claimStart (monotonic clock): its local deadline is claimStart + TTL -
// margin. A timer cancels the session's context at the deadline unless a
// renewal moved it.
func newSession(r *runner, parent context.Context, l evento.Lease, catchUp bool, claimStart time.Time) *session {
	s := &session{r: r, part: l.Partition, lease: l, catchUp: catchUp}
	s.ctx, s.cancel = context.WithCancelCause(parent)
	s.log = r.log.With(slog.Uint64("partition", uint64(l.Partition)))
	s.hctx = withEnv(s.ctx, &env{exec: r.exec, values: r.p.values, key: r.p.cfg.Key, partition: l.Partition, worker: r.id, lease: s.leaseInfo})
	if !catchUp {
		s.leave = make(chan struct{})
		s.wake = make(chan struct{}, 1)
	}
	s.leaseMu.Lock()
	s.deadline = s.deadlineFrom(claimStart)
	s.dlTimer = time.AfterFunc(time.Until(s.deadline), s.onDeadline)
	s.leaseMu.Unlock()
	return s
}

func (s *session) deadlineFrom(start time.Time) time.Time {
	return start.Add(s.r.p.cfg.LeaseTTL - s.r.p.cfg.LeaseMargin)
}

func (s *session) getLease() evento.Lease {
	s.leaseMu.Lock()
	defer s.leaseMu.Unlock()
	return s.lease
}

// renewed records a successful renewal whose call started at start. A
// renewal that returns after the deadline passed changes nothing: the
// session has ended its work, and the worker must claim again (a new token,
// a cursor read again).
func (s *session) renewed(l evento.Lease, start time.Time) {
	s.leaseMu.Lock()
	defer s.leaseMu.Unlock()
	if s.lost.Load() || !time.Now().Before(s.deadline) {
		return
	}
	s.lease = l
	s.deadline = s.deadlineFrom(start)
}

// leaseInfo is what LeaseFromContext returns for this session.
func (s *session) leaseInfo() LeaseInfo {
	s.leaseMu.Lock()
	defer s.leaseMu.Unlock()
	return LeaseInfo{Key: s.lease.Key, Partition: s.lease.Partition, Holder: s.lease.Holder, Token: s.lease.Token, Deadline: s.deadline}
}

// inLease reports whether the local deadline is still ahead; when it has
// passed it ends the session's work (expire) and returns false. It is
// checked before every handler call.
func (s *session) inLease() bool {
	s.leaseMu.Lock()
	ok := time.Now().Before(s.deadline)
	s.leaseMu.Unlock()
	if !ok {
		s.expire()
	}
	return ok && !s.lost.Load()
}

// onDeadline runs when the deadline timer fires: it re-arms the timer when
// a renewal moved the deadline, else expires the session.
func (s *session) onDeadline() {
	s.leaseMu.Lock()
	if d := time.Until(s.deadline); d > 0 && !s.lost.Load() {
		s.dlTimer.Reset(d)
		s.leaseMu.Unlock()
		return
	}
	s.leaseMu.Unlock()
	s.expire()
}

// expire ends the session's work because the local lease deadline passed:
// the handler's context is cancelled and no handler starts again in this
// session. The store may still hold the lease (renewals failed, or were
// slow), so what was handled is still acknowledged — the acknowledgement
// is fenced by the store — but the lease is not released; the worker
// claims again.
func (s *session) expire() {
	s.leaseMu.Lock()
	l, dl := s.lease, s.deadline
	s.leaseMu.Unlock()
	if s.lost.Load() {
		return
	}
	s.expired.Store(true)
	s.markLost(fmt.Errorf("subscription %q partition %d: local lease deadline %s passed without a successful renewal (token %d): %w",
		s.r.p.cfg.Key, s.part, dl.Format(time.RFC3339Nano), l.Token, evento.ErrLeaseLost))
}

// release asks the session to give its lease up at the next event boundary.
func (s *session) release() {
	if s.leave != nil && s.leaving.CompareAndSwap(false, true) {
		close(s.leave)
	}
}

// quitting reports whether a graceful stop or a release was requested.
func (s *session) quitting() bool {
	select {
	case <-s.quit:
		return true
	case <-s.leave:
		return true
	default:
		return false
	}
}

func (s *session) markLost(err error) {
	if s.lost.CompareAndSwap(false, true) {
		s.cancel(err)
		s.log.Warn("subscription: lease lost", slog.Any("error", err))
		if f := s.r.sig.LeaseLost; f != nil {
			f(s.r.p.cfg.Key, s.part, err)
		}
	}
}

// lostError is what CatchUp returns when it lost a lease.
func (s *session) lostError() error {
	return fmt.Errorf("subscription %q partition %d: %w", s.r.p.cfg.Key, s.part, evento.ErrLeaseLost)
}

// run processes the partition until a stop, a release, a lease loss or a
// fatal error, then acknowledges what was handled, stops the heartbeat and
// releases the lease. It returns fatal errors only (nil on a stop, a release
// or, for a worker, a lease loss).
func (s *session) run() error {
	defer s.cancel(nil)
	defer s.dlTimer.Stop()
	hbStop, hbDone := make(chan struct{}), make(chan struct{})
	go s.heartbeat(hbStop, hbDone)

	err := s.loop()
	// No handler runs after loop: the deadline no longer matters, and the
	// final acknowledgement and release are fenced by the store.
	s.dlTimer.Stop()

	crashed := s.r.crashed.Load()
	cctx, cancel := context.WithTimeout(context.WithoutCancel(s.ctx), min(s.r.p.cfg.LeaseTTL, 5*time.Second))
	defer cancel()
	if (!s.lost.Load() || s.expired.Load()) && !crashed {
		if ferr := s.flush(cctx); ferr != nil && !s.lost.Load() {
			s.log.Error("subscription: final acknowledgement failed", slog.Any("error", ferr))
			if err == nil && s.catchUp {
				err = ferr
			}
		}
	}
	s.drain()
	close(hbStop)
	<-hbDone
	if !s.lost.Load() && !crashed {
		if rerr := s.r.exec.ReleaseLease(cctx, s.getLease()); rerr != nil {
			s.log.Warn("subscription: release lease failed", slog.Any("error", rerr))
		} else if f := s.r.sig.LeaseReleased; f != nil {
			f(s.r.p.cfg.Key, s.part)
		}
	}
	if err == nil && s.catchUp && s.lost.Load() {
		err = s.lostError()
	}
	return err
}

func (s *session) heartbeat(stop, done chan struct{}) {
	defer close(done)
	t := time.NewTicker(s.r.p.cfg.Heartbeat)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-s.ctx.Done():
			return
		case <-t.C:
		}
		start := time.Now()
		nl, err := s.r.exec.RenewLease(s.ctx, s.getLease(), s.r.p.cfg.LeaseTTL)
		switch {
		case err == nil:
			s.renewed(nl, start)
		case errors.Is(err, evento.ErrLeaseLost):
			s.markLost(fmt.Errorf("subscription %q partition %d: renew: %w", s.r.p.cfg.Key, s.part, err))
			return
		case s.ctx.Err() != nil:
			return
		default:
			s.log.Warn("subscription: lease renewal failed", slog.Any("error", err))
		}
	}
}

// fatal reports whether err ends the whole worker rather than one session.
func fatal(err error) bool {
	return errors.Is(err, ErrRetriesExhausted) || errors.Is(err, evento.ErrClosed) || errors.Is(err, evento.ErrInvalidCursor) ||
		errors.Is(err, ErrSelectionChanged)
}

func (s *session) loop() error {
	// Every claim checks the selection again: an operator may have reset
	// the subscriber and another definition recorded its own since.
	if err := s.r.recordSelection(s.ctx, s.part); err != nil {
		if s.ctx.Err() != nil {
			return nil
		}
		return err
	}
	st, err := s.r.exec.Subscriber(s.ctx, s.r.p.cfg.Key, s.part)
	if err != nil {
		if s.ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("subscription %q partition %d: read subscriber: %w", s.r.p.cfg.Key, s.part, err)
	}
	s.cursor = st.Cursor
	cfg := &s.r.p.cfg
	s.limit, s.chunkStart = cfg.ChunkSize, time.Now()
	// next is the page after the one being handled, read meanwhile.
	var next *prefetch
	defer func() { next.abandon() }()
	size := cfg.ChunkSize // of the page read next
	for {
		if s.quitting() || s.ctx.Err() != nil {
			return nil
		}
		var page evento.Page
		var err error
		if next != nil {
			page, err = next.wait()
			next = nil
		} else {
			page, err = s.read(s.ctx, s.position(), size)
		}
		if err != nil {
			if s.ctx.Err() != nil {
				return nil
			}
			if errors.Is(err, evento.ErrPageTooLarge) && size > cfg.ChunkSize {
				// The store's max_page_size is below the pages a worker
				// reads behind the head: keep to ChunkSize.
				s.log.Debug("subscription: the store refused a page larger than the chunk size", slog.Int("page", size), slog.Any("error", err))
				s.r.pageMax.Store(int64(cfg.ChunkSize))
				size = cfg.ChunkSize
				continue
			}
			err = fmt.Errorf("subscription %q partition %d: read: %w", cfg.Key, s.part, err)
			if s.catchUp || fatal(err) {
				return err
			}
			s.log.Warn("subscription: read failed", slog.Any("error", err))
			s.wait()
			continue
		}
		// Behind the head pages double up to pageMax: fewer reads. A
		// transactional subscription commits one transaction per page, so
		// its pages stay at ChunkSize.
		atHead := !page.PageInfo.HasNextPage || len(page.Events) == 0
		switch {
		case atHead:
			size = cfg.ChunkSize
		case s.r.txa != nil:
			next = s.prefetch(page.Events[len(page.Events)-1].Cursor(), size)
		default:
			size = min(2*size, int(s.r.pageMax.Load()))
			next = s.prefetch(page.Events[len(page.Events)-1].Cursor(), size)
		}
		s.haveHead = false
		s.lastPage, s.pendingLeft = atHead, len(page.Events)
		var stop bool
		if s.r.txa != nil {
			stop, err = s.chunkTx(page.Events)
		} else {
			stop, err = s.chunk(page.Events)
		}
		if err != nil {
			return err
		}
		if stop {
			return nil
		}
		// The chunk ends at the head, at its size, or at its age. At the
		// head it is acknowledged at once; behind it, in the background
		// while the next chunk is handled.
		switch {
		case atHead:
			if err := s.flush(s.ctx); err != nil {
				return s.ackFailed(err)
			}
			s.limit, s.chunkStart = cfg.ChunkSize, time.Now()
		case s.pendingN >= s.limit || time.Since(s.chunkStart) >= MaxChunkAge:
			if err := s.flushAsync(); err != nil {
				return s.ackFailed(err)
			}
			s.limit, s.chunkStart = min(2*s.limit, max(cfg.MaxChunkSize/2, cfg.ChunkSize)), time.Now()
		}
		if !atHead {
			continue
		}
		if s.catchUp {
			return nil
		}
		s.wait()
	}
}

// position is the cursor after the last event processed: where the next
// read starts.
func (s *session) position() string {
	switch {
	case s.pending != nil:
		return s.pending.Cursor()
	case s.inflight != nil:
		return s.inflight.a.Cursor
	}
	return s.cursor
}

// read reads a page of up to size of the subscription's events after
// cursor after.
func (s *session) read(ctx context.Context, after string, size int) (evento.Page, error) {
	q := s.r.p.query
	q.Args = cursor.Forward(size, after)
	return s.r.exec.Read(ctx, q)
}

// prefetch is a page read in the background while the previous one is
// handled: one goroutine, one page, ended by wait or abandon.
type prefetch struct {
	done   chan struct{}
	cancel context.CancelFunc
	page   evento.Page
	err    error
}

// prefetch starts reading the page of up to size events after cursor
// after. Reading is not handling: it needs no lease check, and a lost lease
// cancels it with the session's context.
func (s *session) prefetch(after string, size int) *prefetch {
	ctx, cancel := context.WithCancel(s.ctx)
	f := &prefetch{done: make(chan struct{}), cancel: cancel}
	go func() {
		defer close(f.done)
		f.page, f.err = s.read(ctx, after, size)
	}()
	return f
}

// wait returns the page once read.
func (f *prefetch) wait() (evento.Page, error) {
	<-f.done
	f.cancel()
	return f.page, f.err
}

// abandon cancels the read, if any, and waits for its goroutine to end.
func (f *prefetch) abandon() {
	if f != nil {
		f.cancel()
		<-f.done
	}
}

// ackFailed turns an acknowledgement error into the session's outcome.
func (s *session) ackFailed(err error) error {
	if errors.Is(err, evento.ErrLeaseLost) {
		s.markLost(err)
		return nil
	}
	if s.ctx.Err() != nil {
		return nil
	}
	return err
}

// wait blocks until a notification, the poll interval, a stop, a release or
// the end of the session.
func (s *session) wait() {
	if s.timer == nil {
		s.timer = time.NewTimer(s.r.p.cfg.PollInterval)
	} else {
		s.timer.Reset(s.r.p.cfg.PollInterval)
	}
	select {
	case <-s.wake:
	case <-s.timer.C:
	case <-s.quit:
	case <-s.leave:
	case <-s.ctx.Done():
	}
	s.timer.Stop()
}

// chunk dispatches one page of events. stop is true when the session must
// end (stop, release, lease loss); err is a fatal error. It acknowledges
// mid-page when the chunk reaches MaxChunkSize events, so no more than
// that are ever handled and not acknowledged.
func (s *session) chunk(events []evento.Event) (stop bool, err error) {
	n := s.r.p.cfg.Partitions
	perEvent := s.r.p.cfg.AckMode == AckPerEvent
	for i := range events {
		e := &events[i]
		if s.quitting() || s.ctx.Err() != nil {
			return true, nil
		}
		if n > 1 && PartitionOf(e.AggregateID, n) != s.part {
			s.advance(e, i, len(events))
		} else {
			res, herr := s.dispatch(e)
			switch res {
			case resDone:
				s.advance(e, i, len(events))
				s.lastErr = "" // the next acknowledgement clears the stored error
				if perEvent {
					if err := s.flush(s.ctx); err != nil {
						return true, s.ackFailed(err)
					}
				}
			case resPark:
				s.advance(e, i, len(events))
				if err := s.flush(s.ctx); err != nil {
					return true, s.ackFailed(err)
				}
				if f := s.r.sig.Parked; f != nil {
					f(s.r.p.cfg.Key, s.part, e.ID, herr)
				}
			case resQuit:
				return true, nil
			case resFail:
				if err := s.flush(s.ctx); err != nil {
					s.log.Error("subscription: acknowledgement before stopping failed", slog.Any("error", err))
				}
				return true, herr
			}
		}
		// At most MaxChunkSize events handled and not stored as
		// acknowledged, the one in flight included.
		if s.pendingN+s.inflight.events() >= s.r.p.cfg.MaxChunkSize {
			if err := s.settle(); err != nil {
				return true, s.ackFailed(err)
			}
			if s.pendingN >= s.r.p.cfg.MaxChunkSize {
				if err := s.flush(s.ctx); err != nil {
					return true, s.ackFailed(err)
				}
			}
		}
	}
	return false, nil
}

// advance records events[i] of a page of n events as processed.
func (s *session) advance(e *evento.Event, i, n int) {
	s.pending, s.pendingLeft = e, n-1-i
	s.pendingN++
}

func (s *session) setErr(err error) {
	s.lastErr, s.errDirty = err.Error(), true
}

// dispatch runs e's handler with retries.
func (s *session) dispatch(e *evento.Event) (result, error) {
	h, skip := s.r.p.lookup(e)
	if skip {
		return resDone, nil
	}
	if h == nil {
		if !s.r.p.cfg.SafetyCheck {
			return resDone, nil
		}
		return s.exhausted(e, fmt.Errorf("%w: %s %q (aggregate %s)", ErrNoHandler, e.AggregateType, e.Name, e.AggregateID), 1)
	}
	pol := &s.r.p.cfg.Retry
	for attempt := 1; ; attempt++ {
		if !s.inLease() {
			return resQuit, nil
		}
		err := s.call(h, e, attempt)
		if err == nil {
			return resDone, nil
		}
		if s.ctx.Err() != nil {
			return resQuit, nil
		}
		if attempt >= pol.MaxAttempts {
			return s.exhausted(e, err, attempt)
		}
		if !s.backoff(pol, e, attempt, err) {
			return resQuit, nil
		}
	}
}

// exhausted applies the ExhaustedPolicy to an event that failed attempts
// times with err.
func (s *session) exhausted(e *evento.Event, err error, attempts int) (result, error) {
	s.setErr(err)
	attrs := append(EventLogAttrs(e), slog.Int("attempt", attempts), slog.Any(evento.LogError, err))
	if s.r.p.cfg.OnExhausted == ParkEvent {
		s.log.Error("subscription: handler failed, parking the event", attrs...)
		s.parked = append(s.parked, evento.ParkedEvent{
			Key: s.r.p.cfg.Key, Partition: s.part, Event: *e, Error: err.Error(), Attempts: attempts, ParkedAt: time.Now().UTC(),
		})
		return resPark, err
	}
	s.log.Error("subscription: handler failed, stopping the worker", attrs...)
	return resFail, fmt.Errorf("subscription %q partition %d: event %s (%s/%s v%d %s): %w after %d attempts: %w",
		s.r.p.cfg.Key, s.part, e.ID, e.AggregateType, e.AggregateID, e.Version, e.Name, ErrRetriesExhausted, attempts, err)
}

// sleep waits d; false means it was interrupted by a stop, a release or the
// end of the session.
func (s *session) sleep(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-s.quit:
	case <-s.leave:
	case <-s.ctx.Done():
	}
	return false
}

// call runs h, turning a panic into an error.
func (s *session) call(h HandlerFunc, e *evento.Event, attempt int) error {
	return s.callIn(s.hctx, h, e, attempt)
}

// callIn runs h with ctx, turning a panic into an error.
func (s *session) callIn(ctx context.Context, h HandlerFunc, e *evento.Event, attempt int) (err error) {
	defer func() {
		if r := recover(); r != nil {
			s.log.ErrorContext(ctx, "subscription: handler panicked",
				append(EventLogAttrs(e), slog.Int("attempt", attempt), slog.Any("panic", r), slog.String("stack", string(debug.Stack())))...)
			err = fmt.Errorf("%w: %v", ErrHandlerPanic, r)
		}
	}()
	return s.invoke(ctx, h, e, attempt)
}

// flush acknowledges the pending progress, parked events and last error,
// after the acknowledgement in flight.
func (s *session) flush(ctx context.Context) error {
	// A background acknowledgement that failed for another reason than a
	// lost lease (a hard stop cancelled it, a store error) is pending
	// again: this one covers its events.
	if err := s.settle(); errors.Is(err, evento.ErrLeaseLost) {
		return err
	}
	a, ok := s.ackOf(ctx)
	if !ok {
		return nil
	}
	if err := s.r.exec.Acknowledge(ctx, s.getLease(), a); err != nil {
		return s.ackError(err)
	}
	s.acked(a)
	return nil
}

func (s *session) ackError(err error) error {
	return fmt.Errorf("subscription %q partition %d: acknowledge: %w", s.r.p.cfg.Key, s.part, err)
}

// ackCall is an acknowledgement written in the background (flushAsync).
type ackCall struct {
	done chan struct{}
	a    evento.Ack
	n    int           // events it covers
	last *evento.Event // the last of them
	err  error
}

// events is the number of events c covers, 0 for none.
func (c *ackCall) events() int {
	if c == nil {
		return 0
	}
	return c.n
}

// flushAsync starts acknowledging the pending progress in the background,
// after the acknowledgement in flight: one at a time, in order, so the
// stored cursor only moves forward. The handler goes on meanwhile; the
// next settle collects the outcome. Parked events and a changed last error
// are acknowledged at once instead.
func (s *session) flushAsync() error {
	if err := s.settle(); err != nil {
		return err
	}
	if s.pending == nil || len(s.parked) > 0 || s.errDirty {
		return s.flush(s.ctx)
	}
	a, _ := s.ackOf(s.ctx)
	c := &ackCall{done: make(chan struct{}), a: a, n: s.pendingN, last: s.pending}
	s.pending, s.pendingN = nil, 0
	s.inflight = c
	l := s.getLease()
	go func() {
		defer close(c.done)
		c.err = s.r.exec.Acknowledge(s.ctx, l, c.a)
		if c.err == nil {
			// Fired here, as soon as the store has it.
			if f := s.r.sig.ChunkAcked; f != nil {
				f(s.r.p.cfg.Key, s.part, c.a.Cursor, c.n)
			}
		}
	}()
	return nil
}

// settle waits for the acknowledgement in flight, if any, and records its
// outcome. When it failed its events are pending again, so that the final
// acknowledgement covers them when the store still takes it.
func (s *session) settle() error {
	c := s.inflight
	if c == nil {
		return nil
	}
	<-c.done
	s.inflight = nil
	if c.err != nil {
		s.pendingN += c.n
		if s.pending == nil {
			s.pending, s.pendingLeft = c.last, 0
		}
		return s.ackError(c.err)
	}
	s.cursor = c.a.Cursor
	return nil
}

// drain waits for the acknowledgement in flight, if any, without
// recording it: the session is over.
func (s *session) drain() {
	if c := s.inflight; c != nil {
		<-c.done
		s.inflight = nil
	}
}

// ackOf builds the acknowledgement of the pending progress, parked events
// and last error; ok is false when there is nothing to acknowledge.
func (s *session) ackOf(ctx context.Context) (a evento.Ack, ok bool) {
	if s.pending == nil && len(s.parked) == 0 && !s.errDirty {
		return a, false
	}
	a = evento.Ack{LastError: s.lastErr, Park: s.parked}
	if s.pending != nil {
		a.Cursor = s.pending.Cursor()
		a.Lag.Time = max(time.Since(s.pending.Timestamp), 0)
		switch {
		case s.lastPage:
			// The page reached the end of the subscription's events: the
			// lag is what is left of it, with no extra read.
			a.Lag.Events = uint64(s.pendingLeft)
		case !s.haveHead:
			h, err := s.r.exec.Head(ctx)
			if err == nil {
				s.head, s.haveHead = h, true
			} else {
				s.log.Debug("subscription: head for lag failed", slog.Any("error", err))
			}
			fallthrough
		default:
			a.Lag.Events = lagEvents(s.head, s.pending.Position)
		}
	}
	return a, true
}

// acked records that a was stored.
func (s *session) acked(a evento.Ack) {
	n := s.pendingN
	if a.Cursor != "" {
		s.cursor = a.Cursor
	}
	s.pending, s.pendingN, s.parked, s.errDirty = nil, 0, nil, false
	s.chunkStart = time.Now()
	if f := s.r.sig.ChunkAcked; f != nil {
		f(s.r.p.cfg.Key, s.part, s.cursor, n)
	}
}

// lagEvents approximates the number of events between pos and head from
// their sequence numbers: exact for single-sequence backends (Tx == 0),
// an estimate otherwise.
func lagEvents(head, pos evento.Position) uint64 {
	if head.Compare(pos) <= 0 || head.Seq < pos.Seq {
		return 0
	}
	return head.Seq - pos.Seq
}

// backoff waits before the next attempt at e after a handler failure:
// jittered delay from the retry policy, a log line and the Retrying signal.
// It reports false (after recording err) when the session stopped while
// waiting.
func (s *session) backoff(pol *RetryPolicy, e *evento.Event, attempt int, err error) bool {
	delay := pol.Delay(attempt)
	if pol.Jitter > 0 {
		delay -= time.Duration(rand.Float64() * pol.Jitter * float64(delay))
	}
	s.log.Warn("subscription: handler failed, retrying",
		append(EventLogAttrs(e), slog.Int("attempt", attempt), slog.Duration("delay", delay), slog.Any(evento.LogError, err))...)
	if f := s.r.sig.Retrying; f != nil {
		f(s.r.p.cfg.Key, s.part, e.ID, attempt, delay, err)
	}
	if !s.sleep(delay) {
		s.setErr(err)
		return false
	}
	return true
}
