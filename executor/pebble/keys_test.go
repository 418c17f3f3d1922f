package pebble

import (
	"bytes"
	"math/rand/v2"
	"strings"
	"testing"
	"testing/quick"
)

func TestStringEncodingRoundTrip(t *testing.T) {
	for _, s := range []string{"", "a", "\x00", "\x00\x00", "a\x00b", "\x00\x01", "\xff", "\"'é\u2603", strings.Repeat("\x00", 5)} {
		enc := appendString(nil, s)
		got, rest, ok := decodeString(append(enc, 'X'))
		if !ok || got != s || string(rest) != "X" {
			t.Errorf("decodeString(appendString(%q)) = %q, %q, %v", s, got, rest, ok)
		}
	}
	if _, _, ok := decodeString([]byte("abc")); ok {
		t.Error("decodeString of an unterminated string succeeded")
	}
	if _, _, ok := decodeString([]byte{'a', 0, 7}); ok {
		t.Error("decodeString of a bad escape succeeded")
	}
}

// randString favours the bytes that matter to the escaping.
func randString(r *rand.Rand) string {
	n := r.IntN(6)
	b := make([]byte, n)
	alphabet := []byte{0x00, 0x01, 0xFF, 'a', 'b', 0xFE}
	for i := range b {
		b[i] = alphabet[r.IntN(len(alphabet))]
	}
	return string(b)
}

func TestStringEncodingOrderAndPrefixFree(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for range 20000 {
		a, b := randString(r), randString(r)
		ea, eb := appendString(nil, a), appendString(nil, b)
		if got, want := bytes.Compare(ea, eb), strings.Compare(a, b); got != want {
			t.Fatalf("order of %q, %q: encoded %d, strings %d", a, b, got, want)
		}
		if a != b && (bytes.HasPrefix(ea, eb) || bytes.HasPrefix(eb, ea)) {
			t.Fatalf("encodings of %q and %q are prefixes of one another", a, b)
		}
		// Composite keys (two strings) never collide and keep tuple order.
		c, d := randString(r), randString(r)
		k1 := appendString(appendString(nil, a), c)
		k2 := appendString(appendString(nil, b), d)
		want := strings.Compare(a, b)
		if want == 0 {
			want = strings.Compare(c, d)
		}
		if got := bytes.Compare(k1, k2); got != want {
			t.Fatalf("tuple order (%q,%q) vs (%q,%q): got %d want %d", a, c, b, d, got, want)
		}
	}
	f := func(a, b string) bool {
		return bytes.Compare(appendString(nil, a), appendString(nil, b)) == strings.Compare(a, b)
	}
	if err := quick.Check(f, nil); err != nil {
		t.Error(err)
	}
}

func TestPrefixEnd(t *testing.T) {
	for _, tc := range []struct{ in, want []byte }{
		{[]byte{1, 2}, []byte{1, 3}},
		{[]byte{1, 0xFF}, []byte{2}},
		{[]byte{0xFF, 0xFF}, nil},
	} {
		if got := prefixEnd(tc.in); !bytes.Equal(got, tc.want) {
			t.Errorf("prefixEnd(%x) = %x, want %x", tc.in, got, tc.want)
		}
	}
	// Every key under an escaped prefix sorts below prefixEnd, and a
	// longer id sorts at or above it.
	p := aggregatePrefix(nil, "T", "a")
	end := prefixEnd(p)
	if bytes.Compare(appendU64(append([]byte(nil), p...), ^uint64(0)), end) >= 0 {
		t.Error("a key under the prefix sorts above prefixEnd")
	}
	for _, other := range []string{"a\x00", "a\x01", "ab", "b"} {
		if bytes.Compare(aggregatePrefix(nil, "T", other), end) < 0 {
			t.Errorf("aggregate %q sorts below prefixEnd of %q", other, "a")
		}
	}
}
