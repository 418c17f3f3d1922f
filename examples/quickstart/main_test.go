package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/evento-go/evento/aggregator"
	"github.com/evento-go/evento/executor/pebble"
	"github.com/evento-go/evento/subscription"
)

// TestQuickstartFlow runs the quickstart's steps against a fresh store.
func TestQuickstartFlow(t *testing.T) {
	ctx := context.Background()
	exec, err := pebble.Open(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer exec.Close()
	b := CartCreate().
		Event(CartOpened{Owner: "ada"}).
		Event(ItemAdded{SKU: "book", Qty: 2}).
		Event(ItemAdded{SKU: "pen", Qty: 1})
	if v, err := b.Commit(ctx, exec); err != nil || v != 3 {
		t.Fatalf("Commit = %d, %v", v, err)
	}
	var cart Cart
	if v, err := aggregator.Load(ctx, exec, b.ID(), &cart); err != nil || v != 3 || cart.Items["book"] != 2 || cart.Owner != "ada" {
		t.Fatalf("Load = %d, %v, %+v", v, err, cart)
	}
	rm := &itemsSold{}
	handlers, err := CartHandlersOf(rm)
	if err != nil {
		t.Fatal(err)
	}
	if len(handlers.Handlers) != 1 || handlers.Handlers[ItemAddedEventName] == nil {
		t.Fatalf("itemsSold's handler set: %v", handlers.Handlers)
	}
	if err := subscription.New("items-sold").HandleSet(handlers).CatchUp(ctx, exec); err != nil || rm.total != 3 {
		t.Fatalf("CatchUp: total %d, %v", rm.total, err)
	}
	// More items to a cart loaded at version 3: CartAppend carries the type.
	if v, err := CartAppend(b.ID(), 3).Event(ItemRemoved{SKU: "pen"}).Event(ItemAdded{SKU: "ink", Qty: 4}).Commit(ctx, exec); err != nil || v != 5 {
		t.Fatalf("CartAppend commit = %d, %v", v, err)
	}
	if err := subscription.New("items-sold").HandleSet(handlers).CatchUp(ctx, exec); err != nil || rm.total != 7 {
		t.Fatalf("second CatchUp: total %d, %v", rm.total, err)
	}
}

// TestReadmeQuickstartIsThisCode keeps the README's quickstart true: every
// code block in README.md that starts with a "// file: <path>" line must be
// that file, byte for byte.
func TestReadmeQuickstartIsThisCode(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	blocks := strings.Split(string(readme), "```go\n")
	found := 0
	for _, b := range blocks[1:] {
		body, _, _ := strings.Cut(b, "```")
		first, rest, _ := strings.Cut(body, "\n")
		path, ok := strings.CutPrefix(first, "// file: ")
		if !ok {
			continue
		}
		found++
		want, err := os.ReadFile(filepath.Join("../..", path))
		if err != nil {
			t.Fatalf("README names %s: %v", path, err)
		}
		if rest != string(want) {
			t.Errorf("README block for %s differs from the file; paste the file into the README", path)
		}
	}
	if found < 2 {
		t.Fatalf("README has %d file blocks, want the quickstart's cart.go and main.go", found)
	}
}
