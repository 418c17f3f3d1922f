package sqlite_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/evento-go/evento"
	"github.com/evento-go/evento/executor/sqlite"
)

func ExampleOpen() {
	dir, _ := os.MkdirTemp("", "evento-example-*")
	defer os.RemoveAll(dir)
	ctx := context.Background()
	store, err := sqlite.Open(ctx, filepath.Join(dir, "events.db"))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer store.Close()

	events := []evento.Event{
		{AggregateType: "bank/Account", AggregateID: "acc-1", Version: 1, Name: "AccountOpened"},
		{AggregateType: "bank/Account", AggregateID: "acc-1", Version: 2, Name: "MoneyDeposited"},
	}
	if err := store.Write(ctx, events); err != nil {
		fmt.Println(err)
		return
	}
	page, err := store.Read(ctx, evento.ByAggregate("bank/Account", "acc-1").First(10, ""))
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, e := range page.Events {
		fmt.Println(e.Position, e.Version, e.Name)
	}
	// Output:
	// 1 1 AccountOpened
	// 2 2 MoneyDeposited
}
