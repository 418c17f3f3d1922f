package storekit

import (
	"fmt"

	"github.com/evento-go/evento"
	"github.com/evento-go/evento/internal/evcursor"
	"github.com/oklog/ulid/v2"
)

// EncodeCursor returns the opaque cursor for the event with the given ID at
// position p: the cursor evento.Event.Cursor returns.
func EncodeCursor(id ulid.ULID, p evento.Position) string {
	return evcursor.Encode(id, p.Tx, p.Seq)
}

// DecodeCursor decodes an event cursor into the event ID and position it
// points at. A malformed or foreign cursor gives an error wrapping
// evento.ErrInvalidCursor; DecodeCursor never panics.
func DecodeCursor(s string) (ulid.ULID, evento.Position, error) {
	id, tx, seq, err := evcursor.Decode(s)
	if err != nil {
		return ulid.ULID{}, evento.Position{}, err
	}
	return id, evento.Position{Tx: tx, Seq: seq}, nil
}

// NewPage builds an evento.Page from rows a backend read. rows are in read
// order (ascending for a forward read, descending for a backward one) and
// may hold one more row than limit, which signals that another page exists
// in the read direction. hasOther says whether a matching event exists on
// the other side of the starting cursor (see evento.Query for the exact
// rule).
//
// NewPage trims the extra row, reverses a backward read into ascending order
// and fills in PageInfo. It takes ownership of rows.
func NewPage(rows []evento.Event, limit int, backward, hasOther bool) evento.Page {
	more := len(rows) > limit
	if more {
		rows = rows[:limit]
	}
	if backward {
		for i, j := 0, len(rows)-1; i < j; i, j = i+1, j-1 {
			rows[i], rows[j] = rows[j], rows[i]
		}
	}
	p := evento.Page{Events: rows}
	if backward {
		p.PageInfo.HasPreviousPage = more
		p.PageInfo.HasNextPage = hasOther
	} else {
		p.PageInfo.HasNextPage = more
		p.PageInfo.HasPreviousPage = hasOther
	}
	if len(rows) > 0 {
		p.PageInfo.StartCursor = rows[0].Cursor()
		p.PageInfo.EndCursor = rows[len(rows)-1].Cursor()
	}
	return p
}

// EncodeMetadata encodes metadata for storage. Empty metadata encodes to nil.
func EncodeMetadata(m evento.Metadata) ([]byte, error) {
	if m.IsZero() {
		return nil, nil
	}
	return evento.Marshal(&m)
}

// DecodeMetadata decodes stored metadata; nil or empty input gives the zero
// Metadata. Bytes that do not decode give an error wrapping evento.ErrDecode.
func DecodeMetadata(b []byte) (evento.Metadata, error) {
	var m evento.Metadata
	if len(b) == 0 {
		return m, nil
	}
	if err := evento.Unmarshal(b, &m); err != nil {
		return evento.Metadata{}, fmt.Errorf("evento: metadata: %w", err)
	}
	return m, nil
}
