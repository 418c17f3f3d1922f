package sqlite

import (
	"context"
	"sync"
	"time"
)

// notifier fans commit signals out to Notify channels. Each channel has a
// one-slot buffer, so signals coalesce and a slow receiver never blocks a
// writer.
type notifier struct {
	mu      sync.Mutex
	subs    map[chan struct{}]func() bool // channel -> stop of its AfterFunc
	closed  bool
	polling bool
	wg      sync.WaitGroup
}

func (n *notifier) init() { n.subs = map[chan struct{}]func() bool{} }

// broadcast signals every listener without blocking.
func (n *notifier) broadcast() {
	n.mu.Lock()
	defer n.mu.Unlock()
	for ch := range n.subs {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}

func (n *notifier) count() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return len(n.subs)
}

// close closes every channel; later subscriptions get a closed channel.
func (n *notifier) close() {
	n.mu.Lock()
	n.closed = true
	subs := n.subs
	n.subs = map[chan struct{}]func() bool{}
	n.mu.Unlock()
	for ch, stop := range subs {
		stop()
		close(ch)
	}
}

// Notify returns a channel that receives a value soon after events are
// committed through this Store, and, while the poll runs (WithPollInterval),
// after commits by other processes. Signals are coalesced. The channel is
// closed when ctx is done or the Store is closed.
func (s *Store) Notify(ctx context.Context) <-chan struct{} {
	n := &s.notify
	ch := make(chan struct{}, 1)
	n.mu.Lock()
	if n.closed || ctx.Err() != nil {
		n.mu.Unlock()
		close(ch)
		return ch
	}
	n.subs[ch] = func() bool { return true }
	startPoll := !n.polling && s.cfg.pollInterval > 0
	if startPoll {
		n.polling = true
		n.wg.Add(1)
	}
	n.mu.Unlock()
	stop := context.AfterFunc(ctx, func() {
		n.mu.Lock()
		_, ok := n.subs[ch]
		delete(n.subs, ch)
		n.mu.Unlock()
		if ok {
			close(ch)
		}
	})
	n.mu.Lock()
	if _, ok := n.subs[ch]; ok {
		n.subs[ch] = stop
	} else {
		stop()
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
				s.cfg.logger.Debug("sqlite executor: poll data_version", "err", err)
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
		if s.notify.count() > 0 {
			read()
		}
	}
}
