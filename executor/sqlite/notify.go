package sqlite

import (
	"context"
	"sync"
	"time"

	"github.com/evento-go/evento"
	"github.com/evento-go/evento/executor/internal/broadcast"
)

// notifier fans commit signals out to Notify channels and owns the
// data_version poll, which starts with the first Notify call.
type notifier struct {
	b       broadcast.Broadcaster
	mu      sync.Mutex // guards closed and polling
	closed  bool
	polling bool
	wg      sync.WaitGroup
}

func (n *notifier) broadcast() { n.b.Signal() }

// close closes every channel, keeps the poll from starting and waits for it
// to end (it ends once the Store's done channel is closed).
func (n *notifier) close() {
	n.mu.Lock()
	n.closed = true
	n.mu.Unlock()
	n.b.Close()
	n.wg.Wait()
}

// Notify returns a channel that receives a value soon after events are
// committed through this Store, and, while the poll runs (WithPollInterval),
// after commits by other processes. Signals are coalesced. The channel is
// closed when ctx is done or the Store is closed.
func (s *Store) Notify(ctx context.Context) <-chan struct{} {
	n := &s.notify
	ch := n.b.Subscribe(ctx)
	n.mu.Lock()
	startPoll := !n.closed && !n.polling && s.cfg.pollInterval > 0 && ctx.Err() == nil
	if startPoll {
		n.polling = true
		n.wg.Add(1)
	}
	n.mu.Unlock()
	if startPoll {
		// Wait for the poll's first reading, so that a commit made by
		// another process after Notify returns is not taken as the
		// baseline.
		ready := make(chan struct{})
		go s.poll(ready)
		select {
		case <-ready:
		case <-ctx.Done():
		case <-s.done:
		}
	}
	return ch
}

// poll watches PRAGMA data_version on one connection of its own: the value
// changes when another connection (another process, or this Store's writer)
// commits. It runs until Close.
func (s *Store) poll(ready chan struct{}) {
	defer s.notify.wg.Done()
	readyOnce := sync.OnceFunc(func() { close(ready) })
	defer readyOnce()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		<-s.done
		cancel()
	}()
	t := time.NewTicker(s.cfg.pollInterval)
	defer t.Stop()
	conn, err := s.db.Conn(ctx)
	if err != nil {
		return
	}
	defer conn.Close()
	last := int64(-1)
	read := func() {
		var v int64
		if err := conn.QueryRowContext(ctx, "PRAGMA data_version").Scan(&v); err != nil {
			if ctx.Err() == nil {
				s.cfg.logger.Debug("sqlite executor: poll data_version", evento.LogError, err)
			}
			return
		}
		if last >= 0 && v != last {
			s.notify.broadcast()
		}
		last = v
	}
	read()
	readyOnce()
	for {
		select {
		case <-s.done:
			return
		case <-t.C:
		}
		if s.notify.b.Len() > 0 {
			read()
		}
	}
}
