package storekit

import (
	"crypto/rand"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/oklog/ulid/v2"
)

// ULIDSource hands out strictly increasing ULIDs, safe for concurrent use.
// Backends call it inside their commit critical section so that IDs increase
// with commit order. If the clock goes backwards, or more IDs than the
// entropy allows are made in one millisecond, the source keeps increasing
// from the last ID rather than failing.
type ULIDSource struct {
	mu      sync.Mutex
	entropy io.Reader
	last    ulid.ULID
}

// NewULIDSource returns a ULIDSource reading randomness from crypto/rand.
func NewULIDSource() *ULIDSource { return &ULIDSource{entropy: rand.Reader} }

// New returns a ULID greater than every ULID this source returned before,
// with a timestamp of t (or later, to stay monotonic).
func (s *ULIDSource) New(t time.Time) ulid.ULID {
	s.mu.Lock()
	defer s.mu.Unlock()
	ms := ulid.Timestamp(t)
	if last := s.last.Time(); ms <= last && s.last != (ulid.ULID{}) {
		// Same or earlier millisecond: increment the last ID.
		id := s.last
		for i := len(id) - 1; i >= 0; i-- {
			id[i]++
			if id[i] != 0 {
				break
			}
		}
		s.last = id
		return id
	}
	var id ulid.ULID
	if err := id.SetTime(ms); err != nil {
		panic(fmt.Sprintf("evento: ulid time: %v", err)) // only past year 10889
	}
	if _, err := io.ReadFull(s.entropy, id[6:]); err != nil {
		panic(fmt.Sprintf("evento: ulid entropy: %v", err)) // crypto/rand does not fail
	}
	// Leave headroom for increments within the millisecond.
	id[6] &= 0x7f
	s.last = id
	return id
}
