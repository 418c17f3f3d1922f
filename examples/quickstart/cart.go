package main

import "github.com/evento-go/evento"

//go:generate go run github.com/evento-go/evento/cmd/evento-gen

// Cart is the aggregate: plain state, changed only by its Apply methods.
//
//evento:aggregate shop/Cart
type Cart struct {
	Owner string
	Items map[string]int
}

// The events are plain structs; an Apply method on Cart makes each one an
// event of the aggregate.
type CartOpened struct{ Owner string }
type ItemAdded struct {
	SKU string
	Qty int
}
type ItemRemoved struct{ SKU string }

func (c *Cart) ApplyCartOpened(d *CartOpened, e *evento.Event) {
	c.Owner, c.Items = d.Owner, map[string]int{}
}
func (c *Cart) ApplyItemAdded(d *ItemAdded)     { c.Items[d.SKU] += d.Qty }
func (c *Cart) ApplyItemRemoved(d *ItemRemoved) { delete(c.Items, d.SKU) }
