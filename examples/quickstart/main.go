// Command quickstart is the README's quickstart: define an aggregate,
// generate its glue, commit events, load it back and subscribe to them.
package main

import (
	"context"
	"fmt"
	"log"
	"os"

	"github.com/evento-go/evento"
	"github.com/evento-go/evento/aggregator"
	"github.com/evento-go/evento/executor"
	_ "github.com/evento-go/evento/executor/pebble" // pebble: DSNs
	"github.com/evento-go/evento/subscription"
)

func main() {
	ctx := context.Background()
	dsn := os.Getenv("EVENTO_DSN") // e.g. sqlite:shop.db, postgres://…
	if dsn == "" {
		dsn = "pebble:.evento/quickstart"
	}
	exec, err := executor.Open(ctx, dsn)
	if err != nil {
		log.Fatal(err)
	}
	defer exec.Close()

	// Commit: a new cart with three events, atomically. (CartAppend(id,
	// version) continues an existing one.)
	b := CartCreate().
		Event(CartOpened{Owner: "ada"}).
		Event(ItemAdded{SKU: "book", Qty: 2}).
		Event(ItemAdded{SKU: "pen", Qty: 1})
	if _, err := b.Commit(ctx, exec); err != nil {
		log.Fatal(err)
	}

	// Load: replay (from a snapshot when there is one) into the state.
	var cart Cart
	version, err := aggregator.Load(ctx, exec, b.ID(), &cart)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("cart of %s at version %d: %v\n", cart.Owner, version, cart.Items)

	// Subscribe: a read model fed by the typed handlers it implements.
	rm := &itemsSold{}
	handlers, err := CartHandlersOf(rm)
	if err != nil {
		log.Fatal(err)
	}
	sub := subscription.New("items-sold").HandleSet(handlers)
	if err := sub.CatchUp(ctx, exec); err != nil {
		log.Fatal(err)
	}
	fmt.Printf("items-sold handled %d new item(s)\n", rm.total)
}

// itemsSold handles only ItemAdded: it implements the generated
// ItemAddedHandler interface, which the line below has the compiler check.
// (To handle every event, implement CartHandler and pass it to
// CartHandlers: then a missing method is a compile error.)
type itemsSold struct{ total int }

var _ ItemAddedHandler = (*itemsSold)(nil)

func (r *itemsSold) OnItemAdded(ctx context.Context, e *evento.Event, d *ItemAdded) error {
	r.total += d.Qty
	return nil
}
