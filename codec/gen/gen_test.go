package gen_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/evento-go/evento"
	"github.com/evento-go/evento/codec/gen"
	"github.com/vmihailenco/msgpack/v5"
)

// encode returns the msgpack encoding of vs, one after the other.
func encode(t *testing.T, vs ...any) []byte {
	t.Helper()
	var b bytes.Buffer
	enc := msgpack.NewEncoder(&b)
	for _, v := range vs {
		if err := enc.Encode(v); err != nil {
			t.Fatal(err)
		}
	}
	return b.Bytes()
}

// readers returns decoders over data through each kind of reader that
// Key handles: *bytes.Reader, *bufio.Reader and a plain io.Reader, which
// msgpack wraps in its own buffered reader.
func readers(data []byte) map[string]*msgpack.Decoder {
	return map[string]*msgpack.Decoder{
		"bytes":    msgpack.NewDecoder(bytes.NewReader(data)),
		"bufio":    msgpack.NewDecoder(bufio.NewReaderSize(bytes.NewReader(data), 16)),
		"onebyte":  msgpack.NewDecoder(iotest.OneByteReader(bytes.NewReader(data))),
		"strings":  msgpack.NewDecoder(strings.NewReader(string(data))),
		"halfread": msgpack.NewDecoder(iotest.HalfReader(bytes.NewReader(data))),
	}
}

func TestKey(t *testing.T) {
	long := strings.Repeat("k", 200)
	data := encode(t, "Amount", []byte("bin"), "", nil, long, "after", 7)
	for name, dec := range readers(data) {
		t.Run(name, func(t *testing.T) {
			var buf [16]byte
			for _, want := range []string{"Amount", "bin", "", "", "", "after"} {
				got, err := gen.Key(dec, buf[:])
				if err != nil {
					t.Fatalf("Key: %v", err)
				}
				if string(got) != want {
					t.Fatalf("Key = %q, want %q", got, want)
				}
			}
			// The discarded long key left the decoder on the next value.
			if n, err := dec.DecodeInt(); err != nil || n != 7 {
				t.Fatalf("after keys: %d, %v; want 7", n, err)
			}
			if _, err := gen.Key(dec, buf[:]); !errors.Is(err, io.EOF) {
				t.Fatalf("Key at end of input: %v, want io.EOF", err)
			}
		})
	}
}

func TestKeyEmptyBuffer(t *testing.T) {
	dec := msgpack.NewDecoder(bytes.NewReader(encode(t, "abc", true)))
	got, err := gen.Key(dec, nil)
	if err != nil || got != nil {
		t.Fatalf("Key(nil buf) = %q, %v; want nil, nil", got, err)
	}
	if b, err := dec.DecodeBool(); err != nil || !b {
		t.Fatalf("after key: %v, %v; want true", b, err)
	}
}

func TestKeyTruncated(t *testing.T) {
	full := encode(t, "Amount")
	for _, tc := range []struct {
		name string
		cut  int
		want error
	}{
		{"header only", 1, io.EOF},
		{"partial", 3, io.ErrUnexpectedEOF},
	} {
		for name, dec := range readers(full[:tc.cut]) {
			t.Run(tc.name+"/"+name, func(t *testing.T) {
				var buf [16]byte
				if _, err := gen.Key(dec, buf[:]); !errors.Is(err, tc.want) {
					t.Fatalf("Key = %v, want %v", err, tc.want)
				}
			})
		}
	}
	// A truncated key longer than the buffer fails too.
	dec := msgpack.NewDecoder(bytes.NewReader(encode(t, strings.Repeat("x", 100))[:50]))
	var buf [4]byte
	if _, err := gen.Key(dec, buf[:]); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("long truncated Key = %v, want io.ErrUnexpectedEOF", err)
	}
}

func TestKeyNotAString(t *testing.T) {
	dec := msgpack.NewDecoder(bytes.NewReader(encode(t, 42)))
	var buf [16]byte
	if _, err := gen.Key(dec, buf[:]); err == nil {
		t.Fatal("Key of an integer: no error")
	}
}

func TestKeyAllocs(t *testing.T) {
	const runs = 100
	keys := make([]any, runs+1) // AllocsPerRun calls f once more to warm up
	for i := range keys {
		keys[i] = "Amount"
	}
	dec := msgpack.NewDecoder(bytes.NewReader(encode(t, keys...)))
	allocs := testing.AllocsPerRun(runs, func() {
		var buf [16]byte
		if k, err := gen.Key(dec, buf[:]); err != nil || string(k) != "Amount" {
			t.Fatalf("Key = %q, %v", string(k), err)
		}
	})
	if allocs != 0 {
		t.Fatalf("Key allocates %v times per run, want 0", allocs)
	}
}

func TestStructLen(t *testing.T) {
	data := encode(t, map[string]int{"a": 1, "b": 2}, []int{1, 2, 3}, nil, []int{}, map[string]int{})
	dec := msgpack.NewDecoder(bytes.NewReader(data))
	for _, want := range []struct {
		n     int
		array bool
		skip  int
	}{{2, false, 4}, {3, true, 3}, {-1, false, 0}, {0, true, 0}, {0, false, 0}} {
		n, array, err := gen.StructLen(dec)
		if err != nil || n != want.n || array != want.array {
			t.Fatalf("StructLen = %d, %v, %v; want %d, %v", n, array, err, want.n, want.array)
		}
		for range want.skip {
			if err := dec.Skip(); err != nil {
				t.Fatal(err)
			}
		}
	}
	if _, _, err := gen.StructLen(dec); !errors.Is(err, io.EOF) {
		t.Fatalf("StructLen at end of input: %v, want io.EOF", err)
	}
	dec = msgpack.NewDecoder(bytes.NewReader(encode(t, "not a struct")))
	if _, _, err := gen.StructLen(dec); err == nil {
		t.Fatal("StructLen of a string: no error")
	}
}

func TestCap(t *testing.T) {
	for n, want := range map[int]int{-1: 0, 0: 0, 5: 5, gen.MaxPrealloc: gen.MaxPrealloc, 1 << 30: gen.MaxPrealloc} {
		if got := gen.Cap(n); got != want {
			t.Errorf("Cap(%d) = %d, want %d", n, got, want)
		}
	}
}

func TestDecodeData(t *testing.T) {
	type payload struct{ A int }
	var v payload
	if err := gen.DecodeData(&evento.Event{}, &v); err != nil || v != (payload{}) {
		t.Fatalf("empty data: %+v, %v", v, err)
	}
	if err := gen.DecodeData(&evento.Event{Data: encode(t, payload{A: 3})}, &v); err != nil || v.A != 3 {
		t.Fatalf("DecodeData = %+v, %v; want A=3", v, err)
	}
	err := gen.DecodeData(&evento.Event{Name: "Bad", Data: []byte{0xc1}}, &v)
	if !errors.Is(err, evento.ErrDecode) {
		t.Fatalf("bad data: %v, want evento.ErrDecode", err)
	}
}

func TestHandler(t *testing.T) {
	type payload struct{ A int }
	var got []payload
	h := gen.Handler(func(ctx context.Context, e *evento.Event, d *payload) error {
		got = append(got, *d)
		return nil
	})
	ctx := context.Background()
	if err := h(ctx, &evento.Event{Data: encode(t, payload{A: 3})}); err != nil {
		t.Fatal(err)
	}
	if err := h(ctx, &evento.Event{}); err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].A != 3 || got[1] != (payload{}) {
		t.Fatalf("handled %+v, want [{A:3} {A:0}]", got)
	}
	err := h(ctx, &evento.Event{Name: "Bad", Data: []byte{0xc1}})
	if !errors.Is(err, evento.ErrDecode) || len(got) != 2 {
		t.Fatalf("bad data: %v after %d calls, want evento.ErrDecode and no call", err, len(got))
	}
	sentinel := errors.New("handler failed")
	fail := gen.Handler(func(context.Context, *evento.Event, *payload) error { return sentinel })
	if err := fail(ctx, &evento.Event{}); err != sentinel {
		t.Fatalf("handler error: %v, want %v", err, sentinel)
	}
}
