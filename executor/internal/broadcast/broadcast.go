// Package broadcast fans coalesced "something changed" signals out to
// channels handed to in-process listeners. The executors use it to implement
// evento.Executor.Notify.
package broadcast

import (
	"context"
	"sync"
)

// Broadcaster hands out Notify channels and signals them. Each channel has a
// one-slot buffer, so signals coalesce and a slow receiver never blocks
// Signal. A channel is closed when the context it was made for is done or
// when the Broadcaster is closed, whichever comes first.
//
// The zero value is ready to use. All methods are safe for concurrent use.
type Broadcaster struct {
	mu     sync.Mutex
	subs   map[chan struct{}]func() bool // channel -> stop of its AfterFunc
	closed bool
}

// Subscribe returns a new channel that receives a value after each later
// Signal (coalesced). It is closed when ctx is done or the Broadcaster is
// closed; if either already happened, it is returned closed.
func (b *Broadcaster) Subscribe(ctx context.Context) <-chan struct{} {
	ch := make(chan struct{}, 1)
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed || ctx.Err() != nil {
		close(ch)
		return ch
	}
	if b.subs == nil {
		b.subs = make(map[chan struct{}]func() bool)
	}
	// The AfterFunc takes b.mu, so it cannot run before ch is registered.
	b.subs[ch] = context.AfterFunc(ctx, func() { b.unsubscribe(ch) })
	return ch
}

func (b *Broadcaster) unsubscribe(ch chan struct{}) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if _, ok := b.subs[ch]; ok {
		delete(b.subs, ch)
		close(ch)
	}
}

// Signal gives every open channel a value, without blocking.
func (b *Broadcaster) Signal() {
	b.mu.Lock()
	defer b.mu.Unlock()
	for ch := range b.subs {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}

// Len returns the number of open channels.
func (b *Broadcaster) Len() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.subs)
}

// Close closes every open channel; later Subscribe calls return a closed
// channel. Close is idempotent.
func (b *Broadcaster) Close() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.closed = true
	for ch, stop := range b.subs {
		stop()
		close(ch)
	}
	b.subs = nil
}
