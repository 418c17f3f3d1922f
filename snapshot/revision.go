package snapshot

import (
	"crypto/sha256"
	"encoding/hex"
)

// Revisioned is implemented by aggregates that declare a snapshot revision.
// It has the same method as aggregator.Revisioned.
type Revisioned interface {
	SnapshotRevision() string
}

// RevisionOf returns v's snapshot revision, or "" when v does not declare
// one (and must then not be snapshotted).
func RevisionOf(v any) string {
	if r, ok := v.(Revisioned); ok {
		return r.SnapshotRevision()
	}
	return ""
}

// Revision derives a short revision from the parts that define an
// aggregate's logic (its source text, a schema version...): the first 16
// hex digits of their SHA-256. Parts are length-prefixed so that ("ab","c")
// and ("a","bc") differ.
func Revision(parts ...string) string {
	h := sha256.New()
	var n [8]byte
	for _, p := range parts {
		l := uint64(len(p))
		for i := range n {
			n[i] = byte(l >> (8 * i))
		}
		h.Write(n[:])
		h.Write([]byte(p))
	}
	return hex.EncodeToString(h.Sum(nil)[:8])
}
