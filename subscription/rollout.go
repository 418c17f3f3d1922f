package subscription

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/evento-go/evento"
)

// Errors of read-model versions.
var (
	// ErrVersionNotDefined means the version recorded as active for a
	// base key has no definition among a rollout's versions: it is newer
	// than all of them (code older than the last switch was deployed), or
	// it is older than the target and has no definition to keep it
	// serving.
	ErrVersionNotDefined = errors.New("subscription: read-model version not defined")
	// ErrVersionInUse means a version asked to be dropped is the active
	// one, or the one a rollout is building.
	ErrVersionInUse = errors.New("subscription: read-model version in use")
)

// DefaultCheckInterval is how often a rollout checks its target's progress
// when RolloutConfig.CheckInterval is zero.
const DefaultCheckInterval = time.Second

// ActiveKey is the subscriber key under which rollouts record the active
// version of base: partition v holds a record once version v became
// active (the highest such partition is the active version), and a
// dropped version's record is marked dropped. The records read nothing;
// Status shows them with no pending events.
func ActiveKey(base string) string { return base + "@active" }

// The selections stored by rollouts. They read an aggregate type no event
// has, so Status counts 0 pending for them, and a worker of a dropped
// version finds a selection it does not have and is refused
// (ErrSelectionChanged) instead of rebuilding the dropped read model.
var (
	activeSel  = Selection{Types: []string{"evento/rollout-active"}, Partitions: 1}.encode()
	droppedSel = Selection{Types: []string{"evento/rollout-dropped"}, Partitions: 1}.encode()
)

// ActiveVersion returns the version of the read model of base that
// applications read from, as recorded by rollouts (Rollout, DropVersion);
// ok is false when none was recorded yet. Processes that serve reads
// without running the rollout use it to pick the table or namespace
// (TableName, VersionedKey).
func ActiveVersion(ctx context.Context, exec evento.Executor, base string) (v int, ok bool, err error) {
	subs, err := exec.Subscribers(ctx)
	if err != nil {
		return 0, false, fmt.Errorf("subscription %q: active version: %w", base, err)
	}
	v, ok = activeIn(subs, base)
	return v, ok, nil
}

func activeIn(subs []evento.SubscriberState, base string) (v int, ok bool) {
	mk := ActiveKey(base)
	for _, s := range subs {
		if s.Key == mk && bytes.Equal(s.Selection, activeSel) && int64(s.Partition) <= MaxVersion && (!ok || int(s.Partition) > v) {
			v, ok = int(s.Partition), true
		}
	}
	return v, ok
}

// built reports whether version v of base has a read model: a subscriber
// whose selection was recorded by a worker (not reset, not dropped).
func built(subs []evento.SubscriberState, base string, v int) bool {
	k := VersionedKey(base, v)
	for _, s := range subs {
		if s.Key == k && len(s.Selection) > 0 && !bytes.Equal(s.Selection, droppedSel) {
			return true
		}
	}
	return false
}

// ReadModelDropper is implemented by executors that keep read models of
// transactional subscriptions themselves (Pebble's key-value namespace,
// pebble.Store.ReadModel): DropVersion calls it to delete the namespace
// of a dropped version's key. SQL read models live in the application's
// tables, which RolloutConfig.DropData drops.
type ReadModelDropper interface {
	// DropReadModel deletes every key of subscription key's read-model
	// namespace.
	DropReadModel(ctx context.Context, key string) error
}

// DropVersion drops version v of the read model of base: it deletes the
// parked events of VersionedKey(base, v), resets its subscribers and marks
// them dropped (a worker still running that version's definition is
// refused with ErrSelectionChanged rather than build it again), deletes
// its namespace on executors that keep one (ReadModelDropper: Pebble),
// then calls dropData, if not nil, to drop the application's own tables
// of that version (TableName). The active version gives ErrVersionInUse.
// The subscribers stay listed, marked dropped with no pending event, until
// an operator deletes them (evento.SubscriberStore.DeleteSubscriber) once
// no process runs that version. Stop every worker of the version first: a
// transaction in flight may still write after the drop.
func DropVersion(ctx context.Context, exec evento.Executor, base string, v int, dropData func(ctx context.Context, version int) error) error {
	if v < 0 || v > MaxVersion {
		return fmt.Errorf("subscription %q: drop version %d: %w", base, v, ErrInvalidConfig)
	}
	subs, err := exec.Subscribers(ctx)
	if err != nil {
		return fmt.Errorf("subscription %q: drop version %d: %w", base, v, err)
	}
	if a, ok := activeIn(subs, base); ok && a == v {
		return fmt.Errorf("subscription %q: drop version %d: it is the active version: %w", base, v, ErrVersionInUse)
	}
	key := VersionedKey(base, v)
	parked, err := exec.ParkedEvents(ctx, key)
	if err != nil {
		return fmt.Errorf("subscription %q: drop version %d: parked events: %w", base, v, err)
	}
	for _, pe := range parked {
		if err := exec.DeleteParked(ctx, key, pe.Partition, pe.Event.ID); err != nil && !errors.Is(err, evento.ErrNotFound) {
			return fmt.Errorf("subscription %q: drop version %d: parked event %s: %w", base, v, pe.Event.ID, err)
		}
	}
	tomb := func(k string, p uint32) error {
		if err := exec.ResetSubscriber(ctx, k, p, ""); err != nil {
			return fmt.Errorf("subscription %q: drop version %d: reset %q partition %d: %w", base, v, k, p, err)
		}
		if _, err := exec.RecordSelection(ctx, k, p, droppedSel); err != nil {
			return fmt.Errorf("subscription %q: drop version %d: mark %q partition %d dropped: %w", base, v, k, p, err)
		}
		return nil
	}
	for _, s := range subs {
		if s.Key == key && !bytes.Equal(s.Selection, droppedSel) {
			if err := tomb(s.Key, s.Partition); err != nil {
				return err
			}
		}
	}
	if d, ok := exec.(ReadModelDropper); ok {
		if err := d.DropReadModel(ctx, key); err != nil {
			return fmt.Errorf("subscription %q: drop version %d: read model: %w", base, v, err)
		}
	}
	if dropData != nil {
		if err := dropData(ctx, v); err != nil {
			return fmt.Errorf("subscription %q: drop version %d: application data: %w", base, v, err)
		}
	}
	// The record of v's time as the active version goes.
	mk := ActiveKey(base)
	for _, s := range subs {
		if s.Key == mk && s.Partition == uint32(v) {
			if err := exec.DeleteSubscriber(ctx, mk, s.Partition); err != nil && !errors.Is(err, evento.ErrNotFound) {
				return fmt.Errorf("subscription %q: drop version %d: delete its record as active: %w", base, v, err)
			}
		}
	}
	return nil
}

// RolloutConfig configures a Rollout. Every field is optional.
type RolloutConfig struct {
	// CheckInterval is how often the rollout checks the target version's
	// progress (Status of its key) while it builds. Zero means
	// DefaultCheckInterval.
	CheckInterval time.Duration
	// MaxLag is the backlog (pending events) under which the target
	// counts as caught up. It also counts as caught up as soon as its
	// backlog is no larger than the serving version's, so the switch never
	// makes reads staler. Zero means it must have no pending event.
	MaxLag uint64
	// Prepare, if set, is called before a version's worker starts, e.g.
	// to create its tables (CREATE TABLE IF NOT EXISTS TableName(...)).
	Prepare func(ctx context.Context, version int) error
	// DropData, if set, is called by Drop to drop the application's own
	// data of a version (its tables); the executor's part is done by
	// DropVersion.
	DropData func(ctx context.Context, version int) error
	// OnSwitch, if set, is called once the target version became active,
	// after the switch was recorded and the previous version's worker
	// stopped. It is not called when the target is active from the start
	// (Switched is closed at once then).
	OnSwitch func(from, to int)
	// OnProgress, if set, is called after every check while the target
	// builds. It must return quickly.
	OnProgress func(Progress)
	// Logger receives the rollout's logs. Nil means slog.Default().
	Logger *slog.Logger
}

// Progress is a rollout's state, as of its last check.
type Progress struct {
	// Key is the base key.
	Key string
	// Active is the version applications read from.
	Active int
	// Target is the newest version, the one being built until it is
	// active.
	Target int
	// Switched is true once Target is active.
	Switched bool
	// Pending is the number of events the target still has to handle
	// (every partition; see SubscriberStatus.Pending), and PendingExact
	// whether it was counted exactly. Before its worker records its first
	// partition it is the distance to the head.
	Pending      uint64
	PendingExact bool
	// ServingPending is the active version's pending events while the
	// target builds.
	ServingPending uint64
	// Rate is the smoothed rate, in events per second, at which the
	// target's backlog shrinks (new events count against it), measured
	// between checks; 0 when unknown or not shrinking.
	Rate float64
	// ETA is Pending / Rate: the estimated time to catch up, 0 when
	// unknown or caught up.
	ETA time.Duration
	// Handled is the number of events this process's target worker has
	// acknowledged since Start.
	Handled uint64
	// BuildErr is the error that stopped the target's worker, if it
	// stopped by itself; the active version keeps serving.
	BuildErr error
	// CheckedAt is the time of the last check.
	CheckedAt time.Time
}

// Rollout runs a new version of a read model beside the one applications
// read from, and switches to it when it has caught up (see "Read-model
// versions" in the package documentation). Create it with StartRollout.
// Its methods are safe for concurrent use.
type Rollout struct {
	exec     evento.Executor
	base     string
	cfg      RolloutConfig
	defs     map[int]*Subscription
	target   int
	active   atomic.Int64
	handled  atomic.Uint64
	switched chan struct{}
	quit     chan struct{}
	done     chan struct{}
	stopOnce sync.Once

	mu       sync.Mutex
	prog     Progress
	serving  *Worker // the active version's worker before the switch
	building *Worker // the target's worker
	errs     []error
}

// StartRollout starts the rollout of versions: definitions of one
// subscription (one base key, see Subscription.Version) with distinct
// versions; the highest is the target. It reads the active version
// recorded under ActiveKey(base) — or, when none is, takes the lowest
// version that has a read model (a key used before it declared a version
// is version 0), or else the target — and records it. The active version
// must be among the definitions (else ErrVersionNotDefined), so that it
// keeps serving while the target builds.
// If the target is active it runs only the target's worker. Otherwise it
// runs the active version's worker, which keeps serving, and the target's,
// which builds a fresh read model from the start of the log; it checks the
// target's progress every CheckInterval and when the target has caught up,
// records the switch, stops the previous version's worker, makes Active
// return the target and calls OnSwitch. The record survives restarts:
// a rollout started again after a switch runs the target alone, one
// started mid-build keeps the previous version serving until the target
// has caught up. Several processes may run the same rollout: leases share
// the work and each follows the recorded switch.
//
// ctx bounds the rollout's life as Subscription.Start's does; use Stop to
// stop it.
func StartRollout(ctx context.Context, exec evento.Executor, cfg RolloutConfig, versions ...*Subscription) (*Rollout, error) {
	if exec == nil {
		return nil, fmt.Errorf("subscription: rollout: nil executor: %w", ErrInvalidConfig)
	}
	if len(versions) == 0 {
		return nil, fmt.Errorf("subscription: rollout: no versions: %w", ErrInvalidConfig)
	}
	r := &Rollout{exec: exec, cfg: cfg, defs: map[int]*Subscription{}, switched: make(chan struct{}), quit: make(chan struct{}), done: make(chan struct{})}
	if r.cfg.CheckInterval <= 0 {
		r.cfg.CheckInterval = DefaultCheckInterval
	}
	if r.cfg.Logger == nil {
		r.cfg.Logger = slog.Default()
	}
	for i, s := range versions {
		if s == nil {
			return nil, fmt.Errorf("subscription: rollout: version %d is nil: %w", i, ErrInvalidConfig)
		}
		b, v := SplitVersion(s.Key())
		if i == 0 {
			r.base = b
		} else if b != r.base {
			return nil, fmt.Errorf("subscription: rollout: versions of different keys %q and %q: %w", r.base, b, ErrInvalidConfig)
		}
		if _, dup := r.defs[v]; dup {
			return nil, fmt.Errorf("subscription %q: rollout: two definitions of version %d: %w", r.base, v, ErrInvalidConfig)
		}
		if err := s.Validate(); err != nil {
			return nil, err
		}
		r.defs[v] = s
		r.target = max(r.target, v)
	}
	r.cfg.Logger = r.cfg.Logger.With(slog.String("subscription", r.base), slog.Int("target", r.target))

	subs, err := exec.Subscribers(ctx)
	if err != nil {
		return nil, fmt.Errorf("subscription %q: rollout: %w", r.base, err)
	}
	active, ok := activeIn(subs, r.base)
	if !ok {
		// The first rollout of this key: the read model applications
		// used so far is the oldest version built (a key used without
		// versions is version 0), or none.
		active = r.target
		for _, s := range subs {
			if b, v := SplitVersion(s.Key); b == r.base && v < active && built(subs, b, v) {
				active = v
			}
		}
	}
	if _, defined := r.defs[active]; !defined {
		return nil, fmt.Errorf("subscription %q: rollout: version %d is active, the definitions are versions %s: %w",
			r.base, active, versionList(r.defs), ErrVersionNotDefined)
	}
	if active > r.target {
		// Unreachable: the target is the highest defined version.
		return nil, fmt.Errorf("subscription %q: rollout: active version %d is newer than the target %d: %w", r.base, active, r.target, ErrVersionNotDefined)
	}
	if !ok {
		if err := r.record(ctx, active); err != nil {
			return nil, err
		}
	}
	r.active.Store(int64(active))
	r.prog = Progress{Key: r.base, Active: active, Target: r.target, Switched: active == r.target}

	if r.serving, err = r.startVersion(ctx, active, active == r.target); err != nil {
		return nil, err
	}
	if active == r.target {
		r.building, r.serving = r.serving, nil
		close(r.switched)
		close(r.done)
		return r, nil
	}
	if r.building, err = r.startVersion(ctx, r.target, true); err != nil {
		return nil, errors.Join(err, r.serving.Stop(ctx))
	}
	r.cfg.Logger.Info("subscription: building a new read-model version", slog.Int("active", active))
	go r.run(ctx)
	return r, nil
}

func versionList(defs map[int]*Subscription) string {
	var b strings.Builder
	for i, v := range slices.Sorted(maps.Keys(defs)) {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(strconv.Itoa(v))
	}
	return b.String()
}

// record records v as active under ActiveKey(base).
func (r *Rollout) record(ctx context.Context, v int) error {
	if _, err := r.exec.RecordSelection(ctx, ActiveKey(r.base), uint32(v), activeSel); err != nil {
		return fmt.Errorf("subscription %q: rollout: record version %d active: %w", r.base, v, err)
	}
	return nil
}

// startVersion prepares version v and starts its worker; the target's
// worker counts its acknowledged events.
func (r *Rollout) startVersion(ctx context.Context, v int, target bool) (*Worker, error) {
	if r.cfg.Prepare != nil {
		if err := r.cfg.Prepare(ctx, v); err != nil {
			return nil, fmt.Errorf("subscription %q: rollout: prepare version %d: %w", r.base, v, err)
		}
	}
	s := r.defs[v]
	if target {
		cp := *s
		var sig Signals
		if s.cfg.Signals != nil {
			sig = *s.cfg.Signals
		}
		prev := sig.ChunkAcked
		sig.ChunkAcked = func(key string, partition uint32, cursor string, events int) {
			r.handled.Add(uint64(events))
			if prev != nil {
				prev(key, partition, cursor, events)
			}
		}
		cp.cfg.Signals = &sig
		s = &cp
	}
	return s.Start(ctx, r.exec)
}

// run checks the target's progress until the switch, Stop or ctx's end.
func (r *Rollout) run(ctx context.Context) {
	defer close(r.done)
	t := time.NewTimer(0)
	defer t.Stop()
	buildDone := r.building.Done()
	for {
		select {
		case <-r.quit:
			return
		case <-ctx.Done():
			return
		case <-buildDone:
			buildDone = nil
			err := r.building.Err()
			r.mu.Lock()
			r.prog.BuildErr = err
			r.mu.Unlock()
			if err != nil {
				r.cfg.Logger.Error("subscription: the new read-model version stopped; the active version keeps serving", slog.Any("error", err))
			}
			continue
		case <-t.C:
		}
		done, err := r.check(ctx)
		if err != nil && ctx.Err() == nil {
			r.cfg.Logger.Warn("subscription: rollout check failed", slog.Any("error", err))
		}
		if done {
			return
		}
		t.Reset(r.cfg.CheckInterval)
	}
}

// check measures the target's progress and switches when it has caught up
// or another process recorded the switch. It reports whether the switch
// happened.
func (r *Rollout) check(ctx context.Context) (bool, error) {
	from := int(r.active.Load())
	subs, err := r.exec.Subscribers(ctx)
	if err != nil {
		return false, err
	}
	if a, ok := activeIn(subs, r.base); ok && a > r.target {
		err := fmt.Errorf("subscription %q: rollout: version %d was made active elsewhere, this rollout's target is %d; version %d keeps serving here: %w", r.base, a, r.target, from, ErrVersionNotDefined)
		r.addErr(err)
		return true, err
	} else if ok && a == r.target {
		return true, r.switchTo(ctx, from)
	}
	tk, ak := VersionedKey(r.base, r.target), VersionedKey(r.base, from)
	sts, err := Status(ctx, r.exec, tk, ak)
	if err != nil {
		return false, err
	}
	var pend, serving uint64
	exact, parts := true, 0
	for _, st := range sts {
		switch st.Key {
		case tk:
			if st.Selection != nil {
				parts++
			}
			pend += st.Pending
			exact = exact && st.PendingExact
		case ak:
			serving += st.Pending
		}
	}
	want := r.defs[r.target].Config().Partitions
	if parts < want {
		// Not every partition has started: the whole log is ahead.
		head, err := r.exec.Head(ctx)
		if err != nil {
			return false, err
		}
		pend, exact = max(pend, lagEvents(head, evento.Position{})), false
	}
	r.mu.Lock()
	p := &r.prog
	p.observe(pend, exact, serving, time.Now())
	p.Handled = r.handled.Load()
	snap := *p
	r.mu.Unlock()
	if r.cfg.OnProgress != nil {
		r.cfg.OnProgress(snap)
	}
	if parts < want || (pend > r.cfg.MaxLag && pend > serving) {
		return false, nil
	}
	if err := r.record(ctx, r.target); err != nil {
		return false, err
	}
	return true, r.switchTo(ctx, from)
}

// observe records a check's figures at now and updates the rate at which
// the backlog shrinks (smoothed over checks) and the ETA.
func (p *Progress) observe(pend uint64, exact bool, serving uint64, now time.Time) {
	if !p.CheckedAt.IsZero() {
		if dt := now.Sub(p.CheckedAt).Seconds(); dt > 0 {
			cur := 0.0
			if pend < p.Pending {
				cur = float64(p.Pending-pend) / dt
			}
			if p.Rate == 0 {
				p.Rate = cur
			} else {
				p.Rate = 0.5*p.Rate + 0.5*cur
			}
		}
	}
	if p.Rate < 1e-3 {
		p.Rate = 0 // decayed: not shrinking
	}
	p.Pending, p.PendingExact, p.ServingPending, p.CheckedAt = pend, exact, serving, now
	p.ETA = 0
	if secs := float64(pend) / p.Rate; p.Rate > 0 && pend > 0 && secs < 1e8 {
		p.ETA = time.Duration(secs * float64(time.Second))
	}
}

// switchTo stops the previous version's worker, makes the target active
// and calls OnSwitch.
func (r *Rollout) switchTo(ctx context.Context, from int) error {
	r.mu.Lock()
	old := r.serving
	r.serving = nil
	r.mu.Unlock()
	var err error
	if old != nil {
		if err = old.Stop(ctx); err != nil {
			r.addErr(err)
		}
	}
	r.active.Store(int64(r.target))
	r.mu.Lock()
	r.prog.Active, r.prog.Switched, r.prog.ETA = r.target, true, 0
	r.mu.Unlock()
	close(r.switched)
	r.cfg.Logger.Info("subscription: switched to the new read-model version", slog.Int("from", from))
	if r.cfg.OnSwitch != nil {
		r.cfg.OnSwitch(from, r.target)
	}
	return err
}

func (r *Rollout) addErr(err error) {
	r.mu.Lock()
	r.errs = append(r.errs, err)
	r.mu.Unlock()
}

// Key returns the base key.
func (r *Rollout) Key() string { return r.base }

// Target returns the newest version, the one built until it is active.
func (r *Rollout) Target() int { return r.target }

// Active returns the version applications read from: the previous version
// while the target builds, the target once it has caught up.
func (r *Rollout) Active() int { return int(r.active.Load()) }

// Switched is closed once the target is active.
func (r *Rollout) Switched() <-chan struct{} { return r.switched }

// Progress returns the state as of the last check.
func (r *Rollout) Progress() Progress {
	r.mu.Lock()
	defer r.mu.Unlock()
	p := r.prog
	p.Handled = r.handled.Load()
	return p
}

// Drop drops version v (see DropVersion) with RolloutConfig.DropData. The
// active version and the target being built give ErrVersionInUse.
func (r *Rollout) Drop(ctx context.Context, v int) error {
	if v == r.Active() || v == r.target {
		return fmt.Errorf("subscription %q: drop version %d: it is the active version or the one being built: %w", r.base, v, ErrVersionInUse)
	}
	return DropVersion(ctx, r.exec, r.base, v, r.cfg.DropData)
}

// Stop stops the rollout and its workers gracefully (see Worker.Stop) and
// returns their errors joined. A build stopped before the switch goes on
// from its cursor when the rollout starts again; the active version stays
// active.
func (r *Rollout) Stop(ctx context.Context) error {
	r.stopOnce.Do(func() { close(r.quit) })
	<-r.done
	r.mu.Lock()
	workers := []*Worker{r.serving, r.building}
	r.serving, r.building = nil, nil
	errs := r.errs
	r.mu.Unlock()
	for _, w := range workers {
		if w != nil {
			errs = append(errs, w.Stop(ctx))
		}
	}
	return errors.Join(errs...)
}
