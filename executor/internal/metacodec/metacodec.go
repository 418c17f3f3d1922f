// Package metacodec decodes the event metadata that storekit.EncodeMetadata
// writes without reflection, for the backends' read paths.
package metacodec

import (
	"encoding/binary"

	"github.com/evento-go/evento"
	"github.com/evento-go/evento/executor/storekit"
)

// Decode decodes stored metadata. It parses the msgpack map that
// storekit.EncodeMetadata writes without reflection and falls back to
// storekit.DecodeMetadata for anything it does not recognise, so the result
// is always DecodeMetadata's.
func Decode(b []byte) (evento.Metadata, error) {
	if len(b) == 0 {
		return evento.Metadata{}, nil
	}
	if m, ok := fastMeta(b); ok {
		return m, nil
	}
	return storekit.DecodeMetadata(b)
}

func fastMeta(b []byte) (m evento.Metadata, ok bool) {
	n, b, ok := mpMapLen(b)
	if !ok {
		return m, false
	}
	for range n {
		var k string
		if k, b, ok = mpStr(b); !ok {
			return m, false
		}
		switch k {
		case "c":
			m.CorrelationID, b, ok = mpStr(b)
		case "z":
			m.CausationID, b, ok = mpStr(b)
		case "a":
			m.Actor, b, ok = mpStr(b)
		case "x":
			if len(b) > 0 && b[0] == 0xc0 { // nil
				b = b[1:]
				m.Extra = nil
				continue
			}
			var xn int
			if xn, b, ok = mpMapLen(b); !ok || xn > len(b) {
				return m, false
			}
			m.Extra = make(map[string]string, xn)
			for range xn {
				var xk, xv string
				if xk, b, ok = mpStr(b); !ok {
					return m, false
				}
				if xv, b, ok = mpStr(b); !ok {
					return m, false
				}
				m.Extra[xk] = xv
			}
		default:
			return m, false
		}
		if !ok {
			return m, false
		}
	}
	return m, len(b) == 0
}

func mpMapLen(b []byte) (int, []byte, bool) {
	if len(b) == 0 {
		return 0, nil, false
	}
	switch c := b[0]; {
	case c >= 0x80 && c <= 0x8f:
		return int(c & 0x0f), b[1:], true
	case c == 0xde && len(b) >= 3:
		return int(binary.BigEndian.Uint16(b[1:])), b[3:], true
	case c == 0xdf && len(b) >= 5:
		n := binary.BigEndian.Uint32(b[1:])
		if uint64(n) > uint64(len(b)) {
			return 0, nil, false
		}
		return int(n), b[5:], true
	}
	return 0, nil, false
}

func mpStr(b []byte) (string, []byte, bool) {
	if len(b) == 0 {
		return "", nil, false
	}
	var n, h int
	switch c := b[0]; {
	case c >= 0xa0 && c <= 0xbf:
		n, h = int(c&0x1f), 1
	case c == 0xd9 && len(b) >= 2:
		n, h = int(b[1]), 2
	case c == 0xda && len(b) >= 3:
		n, h = int(binary.BigEndian.Uint16(b[1:])), 3
	case c == 0xdb && len(b) >= 5:
		u := binary.BigEndian.Uint32(b[1:])
		if uint64(u) > uint64(len(b)) {
			return "", nil, false
		}
		n, h = int(u), 5
	default:
		return "", nil, false
	}
	if len(b) < h+n {
		return "", nil, false
	}
	return string(b[h : h+n]), b[h+n:], true
}
