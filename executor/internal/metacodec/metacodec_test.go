package metacodec

import (
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/evento-go/evento"
	"github.com/evento-go/evento/executor/storekit"
)

func TestFastMetadataMatchesDecodeMetadata(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	str := func() string {
		switch r.IntN(5) {
		case 0:
			return ""
		case 1:
			return strings.Repeat("é", r.IntN(200))
		case 2:
			return strings.Repeat("x", 65536+r.IntN(10))
		}
		return strings.Repeat("k", r.IntN(40))
	}
	for i := range 500 {
		m := evento.Metadata{CorrelationID: str(), CausationID: str(), Actor: str()}
		if r.IntN(2) == 0 {
			m.Extra = map[string]string{}
			for range r.IntN(20) {
				m.Extra[str()] = str()
			}
		}
		b, err := storekit.EncodeMetadata(m)
		if err != nil {
			t.Fatal(err)
		}
		want, err := storekit.DecodeMetadata(b)
		if err != nil {
			t.Fatal(err)
		}
		got, ok := fastMeta(b)
		if len(b) > 0 && !ok {
			t.Fatalf("case %d: fast path refused %x", i, b[:min(len(b), 32)])
		}
		if len(b) > 0 && !got.Equal(want) {
			t.Fatalf("case %d: fast path %+v, DecodeMetadata %+v", i, got, want)
		}
		// Truncated input never panics and never disagrees silently.
		if len(b) > 1 {
			cut := b[:r.IntN(len(b)-1)+1]
			if got, ok := fastMeta(cut); ok {
				if want, err := storekit.DecodeMetadata(cut); err != nil || !got.Equal(want) {
					t.Fatalf("case %d: truncated input accepted as %+v", i, got)
				}
			}
		}
	}
	// Unknown shapes go to the fallback.
	if _, ok := fastMeta([]byte{0x81, 0xa1, 'q', 0xa0}); ok {
		t.Error("unknown key accepted by the fast path")
	}
	if _, err := Decode([]byte{0xc1}); err == nil {
		t.Error("garbage metadata decoded")
	}
}
