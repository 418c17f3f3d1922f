package subscription_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sync"

	"github.com/evento-go/evento"
	"github.com/evento-go/evento/executor/pebble"
	"github.com/evento-go/evento/subscription"
)

// Balances is a read model the handlers update.
type Balances struct {
	mu sync.Mutex
	by map[string]int
}

func Example() {
	ctx := context.Background()
	exec, err := pebble.OpenMemory(ctx)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer exec.Close()

	// Two events on one account.
	err = exec.Write(ctx, []evento.Event{
		{AggregateType: "bank/Account", AggregateID: "acc-1", Version: 1, Name: "AccountOpened"},
		{AggregateType: "bank/Account", AggregateID: "acc-1", Version: 2, Name: "MoneyDeposited"},
	})
	if err != nil {
		fmt.Println(err)
		return
	}

	deposited := func(ctx context.Context, e *evento.Event) error {
		b, _ := subscription.Value[*Balances](ctx) // shared value, added with Data
		b.mu.Lock()
		defer b.mu.Unlock()
		b.by[e.AggregateID] += 100
		return nil
	}
	balances := &Balances{by: map[string]int{}}
	sub := subscription.New("balances").
		Handle("bank/Account", "MoneyDeposited", deposited).
		Skip("bank/Account", "AccountOpened").
		SafetyCheck(true).
		Data(balances).
		Logger(slog.New(slog.NewTextHandler(io.Discard, nil)))

	// Process everything pending, then return.
	if err := sub.CatchUp(ctx, exec); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("acc-1:", balances.by["acc-1"])

	// Or run a worker in the background until Stop.
	done := make(chan struct{})
	var once sync.Once
	sub.Signals(&subscription.Signals{ChunkAcked: func(string, uint32, string, int) { once.Do(func() { close(done) }) }})
	w, err := sub.Start(ctx, exec)
	if err != nil {
		fmt.Println(err)
		return
	}
	_ = exec.Write(ctx, []evento.Event{{AggregateType: "bank/Account", AggregateID: "acc-1", Version: 3, Name: "MoneyDeposited"}})
	<-done
	if err := w.Stop(ctx); err != nil {
		fmt.Println(err)
	}
	balances.mu.Lock()
	fmt.Println("acc-1:", balances.by["acc-1"])
	balances.mu.Unlock()

	st, _ := subscription.Status(ctx, exec, "balances")
	fmt.Println("subscribers:", len(st), "lag:", st[0].Lag.Events)
	// Output:
	// acc-1: 100
	// acc-1: 200
	// subscribers: 1 lag: 0
}
