package ids

import (
	"testing"

	"github.com/oklog/ulid/v2"
)

func TestAbove(t *testing.T) {
	u := func(tail ...byte) ulid.ULID {
		var id ulid.ULID
		copy(id[len(id)-len(tail):], tail)
		return id
	}
	for _, c := range []struct {
		name           string
		id, last, want ulid.ULID
	}{
		{"greater kept", u(5), u(4), u(5)},
		{"equal bumped", u(4), u(4), u(5)},
		{"smaller bumped", u(1), u(4), u(5)},
		{"carry", u(1), u(0x01, 0xff, 0xff), u(0x02, 0x00, 0x00)},
		{"zero last", u(0), u(), u(1)},
	} {
		if got := Above(c.id, c.last); got != c.want {
			t.Errorf("%s: Above(%x, %x) = %x, want %x", c.name, c.id[:], c.last[:], got[:], c.want[:])
		}
	}
}
