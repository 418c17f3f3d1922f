package subscription

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/evento-go/evento"
)

// Worker is a running subscription, started by Subscription.Start. It claims
// the partitions' leases, processes events in the background and stops with
// Stop. Its methods are safe for concurrent use.
type Worker struct {
	r        *runner
	quit     chan struct{}
	quitOnce sync.Once
	hardCtx  context.Context
	hard     context.CancelFunc
	done     chan struct{}

	mu  sync.Mutex
	err error

	wakeMu sync.Mutex
	wakes  map[*session]struct{}

	view spreadView // the key's live workers and this worker's partitions (run goroutine only)
}

// Start validates the subscription and starts a worker on exec in the
// background. It returns at once; the worker waits StartDelay, claims the
// leases of the partitions it can and processes their events until Stop.
//
// ctx bounds the worker's whole life: cancelling it stops the worker at once
// (handlers see their context cancelled); what was handled is still
// acknowledged and the leases released. Use Stop for a graceful stop.
func (s *Subscription) Start(ctx context.Context, exec evento.Executor) (*Worker, error) {
	r, err := s.runner(exec)
	if err != nil {
		return nil, err
	}
	if err := r.checkSelection(ctx); err != nil {
		return nil, err
	}
	w := &Worker{
		r:     r,
		quit:  make(chan struct{}),
		done:  make(chan struct{}),
		wakes: map[*session]struct{}{},
	}
	w.hardCtx, w.hard = context.WithCancel(ctx)
	go w.run()
	return w, nil
}

// runner validates the subscription and returns a runner on exec under the
// configured worker id, or a fresh one.
func (s *Subscription) runner(exec evento.Executor) (*runner, error) {
	p, err := s.plan()
	if err != nil {
		return nil, err
	}
	if exec == nil {
		return nil, fmt.Errorf("subscription %q: nil executor: %w", p.cfg.Key, ErrInvalidConfig)
	}
	id := p.cfg.WorkerID
	if id == "" {
		id = newWorkerID()
	}
	return newRunner(p, exec, id), checkTx(p, exec)
}

func newWorkerID() string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "worker"
	}
	var b [4]byte
	_, _ = rand.Read(b[:])
	return fmt.Sprintf("%s-%d-%s", host, os.Getpid(), hex.EncodeToString(b[:]))
}

// ID returns the worker's lease holder id.
func (w *Worker) ID() string { return w.r.id }

// Done is closed when the worker has stopped: after Stop, after its context
// was cancelled, or by itself after a fatal error (see Err).
func (w *Worker) Done() <-chan struct{} { return w.done }

// Err returns the error that stopped the worker by itself (an event whose
// retries were exhausted under StopWorker, a closed executor, a corrupt
// cursor), or nil.
func (w *Worker) Err() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err
}

func (w *Worker) setErr(err error) {
	w.mu.Lock()
	if w.err == nil {
		w.err = err
	}
	w.mu.Unlock()
}

// Stop stops the worker gracefully: each partition finishes its in-flight
// event (a retry backoff is cut short, leaving that event for later),
// acknowledges what it handled and releases its lease. Stop returns when
// every goroutine of the worker has ended, with Err's error. If ctx ends
// first, Stop cancels the handlers' contexts, waits for them to return and
// returns ctx's error too; handlers must honour their context.
func (w *Worker) Stop(ctx context.Context) error {
	w.quitOnce.Do(func() { close(w.quit) })
	select {
	case <-w.done:
		return w.Err()
	case <-ctx.Done():
		w.hard()
		<-w.done
		return errors.Join(fmt.Errorf("subscription %q: stop: %w", w.r.p.cfg.Key, ctx.Err()), w.Err())
	}
}

// crash stops the worker as if its process died: nothing more is
// acknowledged and no lease is released. Tests use it.
func (w *Worker) crash() {
	w.r.crashed.Store(true)
	w.quitOnce.Do(func() { close(w.quit) })
	w.hard()
	<-w.done
}

type ended struct {
	s   *session
	err error
}

func (w *Worker) run() {
	defer close(w.done)
	defer w.hard()
	cfg := &w.r.p.cfg
	active := map[uint32]*session{}
	endedCh := make(chan ended, cfg.Partitions)

	nctx, ncancel := context.WithCancel(w.hardCtx)
	notifyDone := make(chan struct{})
	go w.notifyLoop(nctx, notifyDone)
	defer func() {
		ncancel()
		<-notifyDone
		if f := w.r.sig.Stopped; f != nil {
			f(w.Err())
		}
	}()

	if cfg.StartDelay > 0 {
		t := time.NewTimer(cfg.StartDelay)
		select {
		case <-t.C:
		case <-w.quit:
		case <-w.hardCtx.Done():
		}
		t.Stop()
	}
	tick := time.NewTimer(cfg.ClaimInterval)
	defer tick.Stop()
	claim := func() {
		tick.Reset(w.claimRound(active, endedCh))
	}
	onEnded := func(e ended) {
		delete(active, e.s.part)
		w.wakeMu.Lock()
		delete(w.wakes, e.s)
		w.wakeMu.Unlock()
		if e.err == nil {
			return
		}
		if fatal(e.err) {
			w.setErr(e.err)
			w.quitOnce.Do(func() { close(w.quit) })
			return
		}
		w.r.log.Warn("subscription: partition stopped, will claim it again", slog.Uint64("partition", uint64(e.s.part)), slog.Any("error", e.err))
	}
	claim()
loop:
	for {
		select {
		case <-w.quit:
			break loop
		case <-w.hardCtx.Done():
			break loop
		case e := <-endedCh:
			onEnded(e)
		case <-tick.C:
			claim()
		}
	}
	for len(active) > 0 {
		onEnded(<-endedCh)
	}
	// Every partition was acknowledged and released: leave, so the others'
	// share grows at their next round. A crashed worker's presence expires.
	if cfg.Partitions > 1 && !w.r.crashed.Load() {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(w.hardCtx), min(cfg.LeaseTTL, 5*time.Second))
		if err := w.r.exec.WithdrawWorker(ctx, cfg.Key, w.r.id); err != nil {
			w.r.log.Warn("subscription: withdraw worker presence failed", slog.Any("error", err))
		}
		cancel()
	}
}

// notifyLoop fans the executor's commit notifications out to the sessions.
func (w *Worker) notifyLoop(ctx context.Context, done chan struct{}) {
	defer close(done)
	ch := w.r.exec.Notify(ctx)
	for {
		select {
		case <-ctx.Done():
			return
		case _, ok := <-ch:
			if !ok {
				return
			}
			w.wakeMu.Lock()
			for s := range w.wakes {
				select {
				case s.wake <- struct{}{}:
				default:
				}
			}
			w.wakeMu.Unlock()
		}
	}
}

func (w *Worker) stopping() bool {
	select {
	case <-w.quit:
		return true
	case <-w.hardCtx.Done():
		return true
	default:
		return false
	}
}

// claimRound announces the worker, releases the partitions the spread rule
// gives another worker (once that worker has been live for a claim
// interval) and claims its own free or expired partitions while it holds
// fewer than FairShare (and MaxClaims). It returns when to try again: the
// claim interval, or sooner, just after the earliest expiry of a lease
// another worker holds on a partition this worker should own.
func (w *Worker) claimRound(active map[uint32]*session, endedCh chan ended) time.Duration {
	cfg := &w.r.p.cfg
	next := cfg.ClaimInterval
	if w.stopping() {
		return next
	}
	now := time.Now()
	w.announce(now)
	v := &w.view
	limit := v.limit(cfg.MaxClaims)
	// Hand over, at an event boundary, the partitions another worker owns.
	for p, s := range active {
		if s.leaving.Load() || v.owns(p) {
			continue
		}
		if owner := v.owners[p]; v.settled(owner, now, cfg.ClaimInterval) {
			w.r.log.Info("subscription: releasing partition to its owner", slog.Uint64("partition", uint64(p)), slog.String("owner", owner), slog.Int("live_workers", len(v.live)))
			s.release()
		}
	}
	for _, part := range v.mine {
		if len(active) >= limit {
			break
		}
		if w.stopping() {
			return next
		}
		if active[part] != nil {
			continue
		}
		start := time.Now()
		l, err := w.r.exec.ClaimLease(w.hardCtx, cfg.Key, part, w.r.id, cfg.LeaseTTL)
		if err != nil {
			switch {
			case w.hardCtx.Err() != nil:
			case errors.Is(err, evento.ErrLeaseHeld):
				// Held by a worker that will hand it over, or a dead one:
				// come back just after the lease expires (by this clock,
				// an estimate when the store's clock differs).
				if st, err := w.r.exec.Subscriber(w.hardCtx, cfg.Key, part); err == nil && !st.LeaseExpiresAt.IsZero() {
					next = min(next, max(time.Until(st.LeaseExpiresAt)+2*time.Millisecond, time.Millisecond))
				}
			case errors.Is(err, evento.ErrClosed):
				w.setErr(fmt.Errorf("subscription %q: claim partition %d: %w", cfg.Key, part, err))
				w.quitOnce.Do(func() { close(w.quit) })
				return next
			default:
				w.r.log.Warn("subscription: claim failed", slog.Uint64("partition", uint64(part)), slog.Any("error", err))
			}
			continue
		}
		w.r.log.Debug("subscription: lease gained", slog.Uint64("partition", uint64(part)), slog.Uint64("token", l.Token))
		if f := w.r.sig.LeaseGained; f != nil {
			f(l)
		}
		s := newSession(w.r, w.hardCtx, l, false, start)
		s.quit = w.quit
		active[part] = s
		w.wakeMu.Lock()
		w.wakes[s] = struct{}{}
		w.wakeMu.Unlock()
		go func() { endedCh <- ended{s: s, err: s.run()} }()
	}
	return next
}

// announce records this worker's presence on a partitioned key and updates
// its view of the live workers (see spreadView). The presence expires after
// max(LeaseTTL, 2 ClaimIntervals) by the store's clock unless renewed; it is
// renewed every claim round, so a live worker never drops out, and a dead
// one drops out about when its leases expire. When the announcement fails
// the last view is kept.
func (w *Worker) announce(now time.Time) {
	cfg := &w.r.p.cfg
	if cfg.Partitions <= 1 {
		w.view.update(w.r.id, cfg.Partitions, nil, now)
		return
	}
	live, err := w.r.exec.AnnounceWorker(w.hardCtx, cfg.Key, w.r.id, presenceTTL(cfg))
	if err != nil {
		if w.hardCtx.Err() == nil {
			w.r.log.Warn("subscription: announce worker presence failed", slog.Any("error", err))
		}
		if w.view.owners != nil {
			return
		}
		live = nil // no view yet: alone
	}
	w.view.update(w.r.id, cfg.Partitions, live, now)
}

func presenceTTL(cfg *Config) time.Duration {
	return max(cfg.LeaseTTL, 2*cfg.ClaimInterval)
}

// CatchUp processes every pending event of every partition in the calling
// goroutine and returns: for tests, command-line tools and batch jobs. It
// claims each partition's lease in turn (a partition held by a running
// worker gives an error wrapping evento.ErrLeaseHeld), reads until the last
// page, acknowledges and releases the lease. Handler failures follow the
// retry and exhausted policies; under StopWorker the error is returned.
func (s *Subscription) CatchUp(ctx context.Context, exec evento.Executor) error {
	r, err := s.runner(exec)
	if err != nil {
		return err
	}
	p := r.p
	if err := r.checkSelection(ctx); err != nil {
		return err
	}
	for part := range uint32(p.cfg.Partitions) {
		start := time.Now()
		l, err := exec.ClaimLease(ctx, p.cfg.Key, part, r.id, p.cfg.LeaseTTL)
		if err != nil {
			return fmt.Errorf("subscription %q: claim partition %d: %w", p.cfg.Key, part, err)
		}
		if f := r.sig.LeaseGained; f != nil {
			f(l)
		}
		if err := newSession(r, ctx, l, true, start).run(); err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("subscription %q: catch-up: %w", p.cfg.Key, err)
		}
	}
	return nil
}

// Replay runs the subscription's handlers on its parked events (all
// partitions, in global order), once each, and deletes those that succeed.
// It returns the number replayed and the failures joined; a failed event
// stays parked. Replay takes no lease: do not run two at once on one key.
func (s *Subscription) Replay(ctx context.Context, exec evento.Executor) (int, error) {
	p, err := s.plan()
	if err != nil {
		return 0, err
	}
	if p.cfg.Transactional {
		return 0, fmt.Errorf("subscription %q: replay of a transactional subscription: %w", p.cfg.Key, ErrNotTransactional)
	}
	parked, err := exec.ParkedEvents(ctx, p.cfg.Key)
	if err != nil {
		return 0, fmt.Errorf("subscription %q: list parked events: %w", p.cfg.Key, err)
	}
	r := newRunner(p, exec, "")
	sessions := map[uint32]*session{} // one per partition: its logger and handler context
	var errs []error
	n := 0
	for i := range parked {
		pe := &parked[i]
		e := &pe.Event
		sess := sessions[pe.Partition]
		if sess == nil {
			sess = &session{r: r, part: pe.Partition, log: r.log.With(slog.Uint64("partition", uint64(pe.Partition)))}
			sess.hctx = withEnv(ctx, &env{exec: exec, values: p.values, key: p.cfg.Key, partition: pe.Partition})
			sessions[pe.Partition] = sess
		}
		h, skip := p.lookup(e)
		if !skip && h == nil && p.cfg.SafetyCheck {
			errs = append(errs, fmt.Errorf("subscription %q: replay event %s: %w: %s %q", p.cfg.Key, e.ID, ErrNoHandler, e.AggregateType, e.Name))
			continue
		}
		if !skip && h != nil {
			if err := sess.call(h, e, pe.Attempts+1); err != nil {
				if ctx.Err() != nil {
					return n, errors.Join(append(errs, fmt.Errorf("subscription %q: replay: %w", p.cfg.Key, ctx.Err()))...)
				}
				errs = append(errs, fmt.Errorf("subscription %q: replay event %s (%s/%s %s): %w", p.cfg.Key, e.ID, e.AggregateType, e.AggregateID, e.Name, err))
				continue
			}
		}
		if err := exec.DeleteParked(ctx, p.cfg.Key, pe.Partition, e.ID); err != nil {
			errs = append(errs, fmt.Errorf("subscription %q: delete parked event %s: %w", p.cfg.Key, e.ID, err))
			continue
		}
		n++
	}
	return n, errors.Join(errs...)
}
