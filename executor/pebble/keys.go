package pebble

import (
	"encoding/binary"
)

// Key layout. Every key starts with a one-byte tag naming its family;
// strings inside keys are escaped with appendString so that they sort in
// byte order and no string's encoding is a prefix of another's.
//
//	'V'                                     schema version
//	'e' pos                                 event (the global log)
//	'a' type id ver                         event (the aggregate's stream)
//	't' type pos                            index: aggregate type
//	'n' type name pos                       index: aggregate type + event name
//	'r' rk pos                              index: routing key ("" = none)
//	's' rk type pos                         index: routing key + type
//	'm' rk type name pos                    index: routing key + type + name
//	'S' key part                            subscriber record
//	'P' key ulid part                       parked event
//	'Z' type id revision ver                snapshot
//
// pos, ver are 8-byte big-endian, part 4-byte big-endian, so numeric order
// is byte order.
const (
	tagSchema     byte = 'V'
	tagEvent      byte = 'e'
	tagAggregate  byte = 'a'
	tagType       byte = 't'
	tagTypeName   byte = 'n'
	tagRouting    byte = 'r'
	tagRoutType   byte = 's'
	tagRoutName   byte = 'm'
	tagSubscriber byte = 'S'
	tagParked     byte = 'P'
	tagSnapshot   byte = 'Z'
)

// appendString appends s escaped: every 0x00 byte becomes 0x00 0xFF and the
// string ends with 0x00 0x01. The encoding keeps byte order (a < b iff
// enc(a) < enc(b)) and no encoding is a proper prefix of another, so fields
// that follow a string never collide with a longer string.
func appendString(dst []byte, s string) []byte {
	for {
		i := indexByte(s, 0)
		if i < 0 {
			dst = append(dst, s...)
			break
		}
		dst = append(dst, s[:i]...)
		dst = append(dst, 0x00, 0xFF)
		s = s[i+1:]
	}
	return append(dst, 0x00, 0x01)
}

func indexByte(s string, c byte) int {
	for i := 0; i < len(s); i++ {
		if s[i] == c {
			return i
		}
	}
	return -1
}

// decodeString decodes one escaped string from the start of b and returns
// it with the rest of b. ok is false if b holds no complete string.
func decodeString(b []byte) (s string, rest []byte, ok bool) {
	var out []byte
	for i := 0; i < len(b); i++ {
		if b[i] != 0 {
			continue
		}
		if i+1 >= len(b) {
			return "", nil, false
		}
		switch b[i+1] {
		case 0x01:
			if out == nil {
				return string(b[:i]), b[i+2:], true
			}
			out = append(out, b[:i]...)
			return string(out), b[i+2:], true
		case 0xFF:
			out = append(out, b[:i]...)
			out = append(out, 0)
			b = b[i+2:]
			i = -1
		default:
			return "", nil, false
		}
	}
	return "", nil, false
}

func appendU64(dst []byte, v uint64) []byte { return binary.BigEndian.AppendUint64(dst, v) }
func appendU32(dst []byte, v uint32) []byte { return binary.BigEndian.AppendUint32(dst, v) }

// prefixEnd returns the smallest key greater than every key that starts
// with p, or nil if there is none (p is all 0xFF).
func prefixEnd(p []byte) []byte {
	end := append([]byte(nil), p...)
	for i := len(end) - 1; i >= 0; i-- {
		if end[i] != 0xFF {
			end[i]++
			return end[:i+1]
		}
	}
	return nil
}

func eventKey(dst []byte, pos uint64) []byte {
	return appendU64(append(dst, tagEvent), pos)
}

func aggregatePrefix(dst []byte, typ, id string) []byte {
	return appendString(appendString(append(dst, tagAggregate), typ), id)
}

func typePrefix(dst []byte, typ string) []byte {
	return appendString(append(dst, tagType), typ)
}

func typeNamePrefix(dst []byte, typ, name string) []byte {
	return appendString(appendString(append(dst, tagTypeName), typ), name)
}

func routingPrefix(dst []byte, rk string) []byte {
	return appendString(append(dst, tagRouting), rk)
}

func routTypePrefix(dst []byte, rk, typ string) []byte {
	return appendString(appendString(append(dst, tagRoutType), rk), typ)
}

func routNamePrefix(dst []byte, rk, typ, name string) []byte {
	return appendString(appendString(appendString(append(dst, tagRoutName), rk), typ), name)
}

func subscriberKey(dst []byte, key string, part uint32) []byte {
	return appendU32(appendString(append(dst, tagSubscriber), key), part)
}

func parkedPrefix(dst []byte, key string) []byte {
	return appendString(append(dst, tagParked), key)
}

func snapshotPrefix(dst []byte, typ, id, revision string) []byte {
	return appendString(appendString(appendString(append(dst, tagSnapshot), typ), id), revision)
}

func snapshotAggPrefix(dst []byte, typ, id string) []byte {
	return appendString(appendString(append(dst, tagSnapshot), typ), id)
}
