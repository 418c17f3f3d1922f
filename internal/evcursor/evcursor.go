// Package evcursor encodes and decodes evento's event cursors: an event's
// ULID and its position (two integers) inside an opaque cursor string. The
// root package (Event.Cursor) and executor/storekit (EncodeCursor,
// DecodeCursor) share it; it imports neither.
package evcursor

import (
	"fmt"
	"strings"

	"github.com/evento-go/evento/cursor"
	"github.com/oklog/ulid/v2"
)

// version tags evento's event cursors; a cursor without it is foreign.
const version = 1

type eventCursor struct {
	_msgpack struct{} `msgpack:",as_array"`
	V        uint8
	ID       []byte
	Tx       uint64
	Seq      uint64
}

// Encode returns the opaque cursor for the event with the given ID at
// position (tx, seq).
func Encode(id ulid.ULID, tx, seq uint64) string {
	s, err := cursor.Encode(&eventCursor{V: version, ID: id[:], Tx: tx, Seq: seq})
	if err != nil {
		// Encoding a fixed struct of integers and bytes cannot fail.
		panic(err)
	}
	return s
}

// Decode decodes an event cursor into the event ID and position it points
// at. A malformed or foreign cursor gives an error wrapping
// cursor.ErrInvalidCursor; Decode never panics.
func Decode(s string) (id ulid.ULID, tx, seq uint64, err error) {
	var c eventCursor
	if err := cursor.Decode(s, &c); err != nil {
		return ulid.ULID{}, 0, 0, fmt.Errorf("evento: %w", err)
	}
	if c.V != version || len(c.ID) != len(ulid.ULID{}) || (c.Tx == 0 && c.Seq == 0) {
		return ulid.ULID{}, 0, 0, fmt.Errorf("evento: cursor %q is not an evento event cursor: %w", truncate(s), cursor.ErrInvalidCursor)
	}
	copy(id[:], c.ID)
	return id, c.Tx, c.Seq, nil
}

func truncate(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return strings.ToValidUTF8(s, "?")
}
