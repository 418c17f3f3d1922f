// Package ids keeps the event IDs an executor assigns strictly increasing
// even when the clock goes back or another writer's ULID source ran ahead.
package ids

import "github.com/oklog/ulid/v2"

// Above returns id if it is greater than last, and otherwise the ULID that
// follows last (last+1, with carry).
func Above(id, last ulid.ULID) ulid.ULID {
	if id.Compare(last) > 0 {
		return id
	}
	id = last
	for i := len(id) - 1; i >= 0; i-- {
		id[i]++
		if id[i] != 0 {
			break
		}
	}
	return id
}
