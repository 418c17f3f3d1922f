package postgres

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/evento-go/evento"
	"github.com/evento-go/evento/executor/internal/broadcast"
	"github.com/jackc/pgx/v5"
)

// notifyChannel is the LISTEN/NOTIFY channel; the payload is the schema
// name, so stores on different schemas of one database ignore each other.
const notifyChannel = "evento"

// notifier fans commit signals out to Notify channels. Local commits signal
// directly; commits by other processes arrive on a dedicated LISTEN
// connection. While that connection is down, a poller watches Head instead,
// and the listener reconnects with backoff.
type notifier struct {
	s         *Store
	b         broadcast.Broadcaster
	kick      chan struct{}
	listening atomic.Bool
	listenPID atomic.Uint32 // backend pid of the LISTEN connection, for tests
	lastSent  time.Time     // sender goroutine only
}

// notifyMinInterval is the shortest time between two pg_notify calls of a
// store: commits within it share one notification.
const notifyMinInterval = 5 * time.Millisecond

func newNotifier(s *Store) *notifier {
	n := &notifier{s: s, kick: make(chan struct{}, 1)}
	s.wg.Add(3)
	go n.sender()
	go n.poller()
	go n.listener()
	return n
}

// Notify returns a channel that receives a coalesced signal after commits by
// this store and, through LISTEN/NOTIFY, by other processes. It is closed
// when ctx is done or the store is closed. See evento.Executor.
func (s *Store) Notify(ctx context.Context) <-chan struct{} {
	return s.notifier.b.Subscribe(ctx)
}

func (n *notifier) broadcast() { n.b.Signal() }

// committed signals a local commit: local subscribers at once, other
// processes through pg_notify (sent after the commit, not inside the write
// transaction, where NOTIFY would serialise commits on the notify queue lock).
// The notifying transaction commits asynchronously: it has an xid (the queue
// records one) but nothing worth a WAL flush.
func (n *notifier) committed() {
	n.broadcast()
	select {
	case n.kick <- struct{}{}:
	default:
	}
}

func (n *notifier) close() { n.b.Close() }

func (n *notifier) sender() {
	defer n.s.wg.Done()
	ctx := n.s.ctx
	for {
		select {
		case <-ctx.Done():
			return
		case <-n.kick:
		}
		// Coalesce: at most one pg_notify per notifyMinInterval.
		if !n.lastSent.IsZero() {
			if wait := notifyMinInterval - time.Since(n.lastSent); wait > 0 {
				t := time.NewTimer(wait)
				select {
				case <-ctx.Done():
					t.Stop()
					return
				case <-t.C:
				}
			}
		}
		n.lastSent = time.Now()
		if _, err := n.s.pool.Exec(ctx, "SELECT set_config('synchronous_commit', 'off', true), pg_notify($1, $2)", notifyChannel, n.s.cfg.schema); err != nil && ctx.Err() == nil {
			n.s.cfg.logger.Debug("postgres executor: pg_notify failed", evento.LogError, err)
		}
	}
}

func (n *notifier) poller() {
	defer n.s.wg.Done()
	ctx := n.s.ctx
	t := time.NewTicker(n.s.cfg.pollInterval)
	defer t.Stop()
	var last [2]uint64
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if n.listening.Load() {
			continue
		}
		h, err := n.s.Head(ctx)
		if err != nil {
			continue
		}
		if cur := [2]uint64{h.Tx, h.Seq}; cur != last {
			last = cur
			n.broadcast()
		}
	}
}

func (n *notifier) listener() {
	defer n.s.wg.Done()
	if !n.s.cfg.listen {
		return
	}
	ctx := n.s.ctx
	const minBackoff, maxBackoff = 50 * time.Millisecond, 5 * time.Second
	backoff := minBackoff
	for ctx.Err() == nil {
		err := n.listenOnce(ctx, func() { backoff = minBackoff })
		if ctx.Err() != nil {
			return
		}
		n.s.cfg.logger.Warn("postgres executor: LISTEN connection lost; polling until it is back", evento.LogError, err, "retry_in", backoff)
		// Commits may have been missed: let readers look.
		n.broadcast()
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		backoff = min(backoff*2, maxBackoff)
	}
}

func (n *notifier) listenOnce(ctx context.Context, connected func()) error {
	conn, err := pgx.ConnectConfig(ctx, n.s.pool.Config().ConnConfig.Copy())
	if err != nil {
		return err
	}
	defer func() {
		n.listening.Store(false)
		n.listenPID.Store(0)
		cctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = conn.Close(cctx)
	}()
	if _, err := conn.Exec(ctx, "LISTEN "+notifyChannel); err != nil {
		return err
	}
	n.listenPID.Store(conn.PgConn().PID())
	n.listening.Store(true)
	connected()
	n.broadcast()
	for {
		nt, err := conn.WaitForNotification(ctx)
		if err != nil {
			return err
		}
		if nt.Payload == n.s.cfg.schema {
			n.broadcast()
		}
	}
}
