package aggregator_test

import (
	"fmt"

	"github.com/evento-go/evento"
	"github.com/evento-go/evento/aggregator"
)

const counterType = "test/Counter"

// counter is an order-sensitive test aggregate: Hash folds every event's
// version, name and value, so two states are equal only if they saw the
// same events in the same order.
type counter struct {
	ID   string
	Sum  int64
	Hash uint64
	N    uint64
	Name string

	applied int // ApplyEvent calls on this value; not in snapshots
}

func newCounter() *counter { return &counter{} }

// Added adds N to the sum.
type Added struct{ N int64 }

// Multiplied multiplies the sum by By.
type Multiplied struct{ By int64 }

// Renamed sets the name.
type Renamed struct{ Name string }

// foreign belongs to another aggregate type.
type foreign struct{}

func (Added) EventName() string               { return "Added" }
func (Multiplied) EventName() string          { return "Multiplied" }
func (Renamed) EventName() string             { return "Renamed" }
func (foreign) EventName() string             { return "Foreign" }
func (Added) EventAggregateType() string      { return counterType }
func (Multiplied) EventAggregateType() string { return counterType }
func (Renamed) EventAggregateType() string    { return counterType }
func (foreign) EventAggregateType() string    { return "test/Other" }

func (*counter) AggregateType() string    { return counterType }
func (*counter) SnapshotRevision() string { return "r1" }

func (c *counter) ApplyEvent(e *evento.Event) error {
	var v int64
	switch e.Name {
	case "Added":
		var d Added
		if err := e.Decode(&d); err != nil {
			return err
		}
		c.Sum += d.N
		v = d.N
	case "Multiplied":
		var d Multiplied
		if err := e.Decode(&d); err != nil {
			return err
		}
		c.Sum *= d.By
		v = d.By
	case "Renamed":
		var d Renamed
		if err := e.Decode(&d); err != nil {
			return err
		}
		c.Name = d.Name
		v = int64(len(d.Name))
	default:
		return fmt.Errorf("counter: %q: %w", e.Name, aggregator.ErrUnknownEvent)
	}
	c.ID = e.AggregateID
	c.N = e.Version
	c.Hash = (c.Hash^uint64(e.Version))*1099511628211 + uint64(v)*31 + uint64(len(e.Name))
	c.applied++
	return nil
}

// state is the counter without its bookkeeping, for comparisons.
func (c *counter) state() counter { s := *c; s.applied = 0; return s }

// model applies payloads in order to a fresh counter, as a full replay of
// aggregate id would.
func model(id string, data []aggregator.EventData) counter {
	c := newCounter()
	for i, d := range data {
		raw, err := evento.Marshal(d)
		if err != nil {
			panic(err)
		}
		e := evento.Event{AggregateType: counterType, AggregateID: id, Version: uint64(i + 1), Name: d.EventName(), Data: raw}
		if err := c.ApplyEvent(&e); err != nil {
			panic(err)
		}
	}
	return c.state()
}
