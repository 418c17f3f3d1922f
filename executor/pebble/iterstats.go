package pebble

import (
	"sync"

	pdb "github.com/cockroachdb/pebble/v2"
)

// iterStats adds up the Pebble iterator statistics of the Store's read
// paths, for the tests that pin how many keys a read touches: the number
// of internal points an iterator stepped over is deterministic, where the
// time a read takes is not. It is nil outside those tests.
type iterStats struct {
	mu sync.Mutex
	n  iterCount
}

// iterCount is what the iterators of some reads touched.
type iterCount struct {
	points uint64 // internal points iterated over (merged), InternalStats.PointCount
	seeks  uint64 // seeks, First and Last included
	steps  uint64 // Next and Prev calls
}

func (c *iterStats) add(st pdb.IteratorStats) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.n.points += st.InternalStats.PointCount
	c.n.seeks += uint64(st.ForwardSeekCount[pdb.InterfaceCall] + st.ReverseSeekCount[pdb.InterfaceCall])
	c.n.steps += uint64(st.ForwardStepCount[pdb.InterfaceCall] + st.ReverseStepCount[pdb.InterfaceCall])
}

func (c *iterStats) count() iterCount {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n
}

// closeIter closes it, first adding its statistics to the test counter
// when one is set.
func (s *Store) closeIter(it *pdb.Iterator) error {
	if s.iterStats != nil {
		s.iterStats.add(it.Stats())
	}
	return it.Close()
}
