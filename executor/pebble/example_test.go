package pebble_test

import (
	"context"
	"fmt"
	"log"

	"github.com/evento-go/evento"
	"github.com/evento-go/evento/executor"
	"github.com/evento-go/evento/executor/pebble"
)

// Open an in-memory store, append two events to an aggregate and load
// them back.
func ExampleOpenMemory() {
	ctx := context.Background()
	store, err := pebble.OpenMemory(ctx)
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close()

	events := []evento.Event{
		{AggregateType: "bank/Account", AggregateID: "acc-1", Version: 1, Name: "Opened"},
		{AggregateType: "bank/Account", AggregateID: "acc-1", Version: 2, Name: "MoneyDeposited"},
	}
	if err := store.Write(ctx, events); err != nil {
		log.Fatal(err)
	}
	loaded, err := store.ReadAggregate(ctx, "bank/Account", "acc-1", 0, 0)
	if err != nil {
		log.Fatal(err)
	}
	for _, e := range loaded {
		fmt.Println(e.Version, e.Name, e.Position)
	}
	// Output:
	// 1 Opened 1
	// 2 MoneyDeposited 2
}

// Open a store by DSN through the scheme registry.
func Example_dsn() {
	ctx := context.Background()
	x, err := executor.Open(ctx, "pebble::memory:?sync=false")
	if err != nil {
		log.Fatal(err)
	}
	defer x.Close()
	fmt.Println(x.Capabilities().Name)
	// Output: pebble
}
