package pebble

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/evento-go/evento"
	"github.com/oklog/ulid/v2"
)

// Event value layout (the same under the global log key and the aggregate
// key, so both decode with one function):
//
//	[0]      format (eventFormat)
//	[1:9]    position, big-endian
//	[9:25]   ULID
//	varint   timestamp, Unix microseconds
//	uvarint  version
//	uvarint-length-prefixed: type, id, name, routing key, data, metadata
const (
	eventFormat    byte = 1
	valuePosOffset      = 1
	valueIDOffset       = 9
	valueHeaderLen      = 25
)

var errCorrupt = errors.New("pebble executor: corrupt event record")

// appendEvent encodes e (with its ID, Timestamp and Position set) and its
// encoded metadata.
func appendEvent(dst []byte, e *evento.Event, meta []byte) []byte {
	dst = append(dst, eventFormat)
	dst = appendU64(dst, e.Position.Seq)
	dst = append(dst, e.ID[:]...)
	dst = binary.AppendVarint(dst, e.Timestamp.UnixMicro())
	dst = binary.AppendUvarint(dst, e.Version)
	dst = appendBytes(dst, e.AggregateType)
	dst = appendBytes(dst, e.AggregateID)
	dst = appendBytes(dst, e.Name)
	dst = appendBytes(dst, e.RoutingKey)
	dst = appendBytes(dst, e.Data)
	dst = appendBytes(dst, meta)
	return dst
}

func appendBytes[T string | []byte](dst []byte, s T) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(s)))
	return append(dst, s...)
}

// valuePos returns the position stored in an event value.
func valuePos(v []byte) (uint64, bool) {
	if len(v) < valueHeaderLen || v[0] != eventFormat {
		return 0, false
	}
	return binary.BigEndian.Uint64(v[valuePosOffset:]), true
}

// valueID returns the ULID stored in an event value.
func valueID(v []byte) (ulid.ULID, bool) {
	var id ulid.ULID
	if len(v) < valueHeaderLen || v[0] != eventFormat {
		return id, false
	}
	copy(id[:], v[valueIDOffset:valueHeaderLen])
	return id, true
}

// valueRouting returns the routing key stored in an event value, without
// decoding the rest: the committer reads an aggregate's first event for it.
func valueRouting(v []byte) (string, bool) {
	if len(v) < valueHeaderLen || v[0] != eventFormat {
		return "", false
	}
	r := reader{b: v[valueHeaderLen:]}
	r.varint()  // timestamp
	r.uvarint() // version
	r.bytes()   // type
	r.bytes()   // id
	r.bytes()   // name
	rk := r.bytes()
	if r.err {
		return "", false
	}
	return string(rk), true
}

type reader struct {
	b   []byte
	err bool
}

func (r *reader) uvarint() uint64 {
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.err = true
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *reader) varint() int64 {
	v, n := binary.Varint(r.b)
	if n <= 0 {
		r.err = true
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *reader) bytes() []byte {
	n := r.uvarint()
	if r.err || n > uint64(len(r.b)) {
		r.err = true
		return nil
	}
	out := r.b[:n:n]
	r.b = r.b[n:]
	return out
}

func (r *reader) str() string { return string(r.bytes()) }

// decodeEvent decodes an event value into e. It copies everything it keeps:
// v may be reused by the caller afterwards.
func decodeEvent(v []byte, e *evento.Event) error {
	if len(v) < valueHeaderLen || v[0] != eventFormat {
		return fmt.Errorf("%w: bad header (%d bytes)", errCorrupt, len(v))
	}
	e.Position = evento.Position{Seq: binary.BigEndian.Uint64(v[valuePosOffset:])}
	copy(e.ID[:], v[valueIDOffset:valueHeaderLen])
	r := reader{b: v[valueHeaderLen:]}
	e.Timestamp = time.UnixMicro(r.varint()).UTC()
	e.Version = r.uvarint()
	e.AggregateType = r.str()
	e.AggregateID = r.str()
	e.Name = r.str()
	e.RoutingKey = r.str()
	data := r.bytes()
	meta := r.bytes()
	if r.err {
		return fmt.Errorf("%w at position %d", errCorrupt, e.Position.Seq)
	}
	if len(data) > 0 {
		e.Data = append([]byte(nil), data...)
	} else {
		e.Data = nil
	}
	m, err := decodeMeta(meta)
	if err != nil {
		return fmt.Errorf("pebble executor: event at position %d: %w", e.Position.Seq, err)
	}
	e.Metadata = m
	return nil
}
