package gentest

import (
	"bufio"
	"bytes"
	"io"
	"math"
	"math/rand"
	"reflect"
	"testing"
	"time"

	"github.com/evento-go/evento/cmd/evento-gen/testdata/src/bank"
	"github.com/evento-go/evento/cmd/evento-gen/testdata/src/codec"
	"github.com/vmihailenco/msgpack/v5"
)

// The reflective twins: same underlying struct, none of the generated
// methods, so msgpack encodes and decodes them by reflection. (Nested event
// or plain struct fields keep their own types; plain structs have no
// methods, so they go through reflection too.)
type (
	rScalars        codec.Scalars
	rCollections    codec.Collections
	rFallbacks      codec.Fallbacks
	rOmitEmpty      codec.OmitEmpty
	rTransfer       codec.Transfer
	rMoneyDeposited bank.MoneyDeposited
	rAccountOpened  bank.AccountOpened
)

// pair is a generated event type and its reflective twin.
type pair struct {
	name string
	gen  func() any // new(*Event)
	ref  func(gen any) any
}

var pairs = []pair{
	{"Scalars", func() any { return new(codec.Scalars) }, func(v any) any { return (*rScalars)(v.(*codec.Scalars)) }},
	{"Collections", func() any { return new(codec.Collections) }, func(v any) any { return (*rCollections)(v.(*codec.Collections)) }},
	{"Fallbacks", func() any { return new(codec.Fallbacks) }, func(v any) any { return (*rFallbacks)(v.(*codec.Fallbacks)) }},
	{"OmitEmpty", func() any { return new(codec.OmitEmpty) }, func(v any) any { return (*rOmitEmpty)(v.(*codec.OmitEmpty)) }},
	{"Transfer", func() any { return new(codec.Transfer) }, func(v any) any { return (*rTransfer)(v.(*codec.Transfer)) }},
	{"MoneyDeposited", func() any { return new(bank.MoneyDeposited) }, func(v any) any { return (*rMoneyDeposited)(v.(*bank.MoneyDeposited)) }},
	{"AccountOpened", func() any { return new(bank.AccountOpened) }, func(v any) any { return (*rAccountOpened)(v.(*bank.AccountOpened)) }},
}

// filler makes random values. With maxMap <= 1 maps have at most one
// entry, so that map iteration order cannot make encodings differ.
type filler struct {
	r      *rand.Rand
	maxMap int
	short  bool // strings and byte slices of at most 40 bytes
}

var timeType = reflect.TypeOf(time.Time{})

func (f *filler) fill(v reflect.Value, depth int) {
	if !v.CanSet() {
		return
	}
	r := f.r
	if v.Type() == timeType {
		switch r.Intn(4) {
		case 0: // zero
		case 1: // before 1970 or far future: the 12-byte form
			v.Set(reflect.ValueOf(time.Unix(r.Int63n(1<<40)-(1<<39), r.Int63n(1e9))))
		case 2: // whole seconds: the 4-byte form
			v.Set(reflect.ValueOf(time.Unix(r.Int63n(1<<32), 0)))
		default:
			v.Set(reflect.ValueOf(time.Unix(r.Int63n(1<<34), r.Int63n(1e9))))
		}
		return
	}
	switch v.Kind() {
	case reflect.Bool:
		v.SetBool(r.Intn(2) == 1)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		v.SetInt(f.int())
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		v.SetUint(uint64(f.int()))
	case reflect.Float32, reflect.Float64:
		switch r.Intn(4) {
		case 0:
			v.SetFloat(0)
		case 1:
			v.SetFloat(math.Inf(1 - 2*r.Intn(2)))
		default:
			v.SetFloat(r.NormFloat64() * 1e6)
		}
	case reflect.String:
		v.SetString(f.str())
	case reflect.Slice:
		if r.Intn(5) == 0 || depth > 3 {
			v.SetZero()
			return
		}
		n := r.Intn(4)
		if v.Type().Elem().Kind() == reflect.Uint8 && r.Intn(3) == 0 && !f.short {
			n = 200 + r.Intn(200) // bin8 and bin16
		}
		s := reflect.MakeSlice(v.Type(), n, n)
		for i := 0; i < n; i++ {
			f.fill(s.Index(i), depth+1)
		}
		v.Set(s)
	case reflect.Array:
		for i := 0; i < v.Len(); i++ {
			f.fill(v.Index(i), depth+1)
		}
	case reflect.Map:
		if r.Intn(5) == 0 || depth > 3 {
			v.SetZero()
			return
		}
		m := reflect.MakeMap(v.Type())
		for i, n := 0, r.Intn(f.maxMap+1); i < n; i++ {
			k := reflect.New(v.Type().Key()).Elem()
			f.fill(k, depth+1)
			e := reflect.New(v.Type().Elem()).Elem()
			f.fill(e, depth+1)
			m.SetMapIndex(k, e)
		}
		v.Set(m)
	case reflect.Pointer:
		if r.Intn(3) == 0 || depth > 3 {
			v.SetZero()
			return
		}
		p := reflect.New(v.Type().Elem())
		f.fill(p.Elem(), depth+1)
		v.Set(p)
	case reflect.Struct:
		for i := 0; i < v.NumField(); i++ {
			if r.Intn(6) != 0 { // leave some fields zero for omitempty
				f.fill(v.Field(i), depth+1)
			}
		}
	case reflect.Interface:
		switch r.Intn(5) {
		case 0:
			v.SetZero()
		case 1:
			v.Set(reflect.ValueOf(f.int()))
		case 2:
			v.Set(reflect.ValueOf(f.str()))
		case 3:
			v.Set(reflect.ValueOf(r.Intn(2) == 0))
		default:
			v.Set(reflect.ValueOf([]any{f.str(), int8(r.Intn(100))}))
		}
	}
}

// int returns integers of every msgpack width, positive and negative.
func (f *filler) int() int64 {
	bits := []int{0, 4, 7, 8, 15, 16, 31, 32, 63}[f.r.Intn(9)]
	n := f.r.Int63() >> (63 - bits)
	if f.r.Intn(2) == 0 {
		n = -n
	}
	return n
}

func (f *filler) str() string {
	n := []int{0, 5, 31, 32, 255, 256, 70000}[f.r.Intn(7)]
	if f.r.Intn(4) != 0 || f.short {
		n = min(n, 40)
	}
	b := make([]byte, n)
	for i := range b {
		b[i] = "abcdefghé€\x00"[f.r.Intn(13)]
	}
	return string(b)
}

func marshal(t testing.TB, v any) []byte {
	t.Helper()
	b, err := msgpack.Marshal(v)
	if err != nil {
		t.Fatalf("marshal %T: %v", v, err)
	}
	return b
}

// TestCodecMatchesReflection checks, on random values, that each generated
// codec writes the bytes msgpack's reflective codec writes, and that each
// decodes the other's output to the same value.
func TestCodecMatchesReflection(t *testing.T) {
	const rounds = 400
	r := rand.New(rand.NewSource(1))
	for _, p := range pairs {
		t.Run(p.name, func(t *testing.T) {
			for i := 0; i < rounds; i++ {
				f := &filler{r: r, maxMap: 1}
				if i%2 == 1 {
					f.maxMap = 3
				}
				v := p.gen()
				f.fill(reflect.ValueOf(v).Elem(), 0)
				gen := marshal(t, v)
				ref := marshal(t, p.ref(v))
				if f.maxMap <= 1 && !bytes.Equal(gen, ref) {
					t.Fatalf("round %d: encodings differ for %+v\ngenerated  %x\nreflective %x", i, v, gen, ref)
				}
				for _, data := range [][]byte{gen, ref} {
					a, b := p.gen(), p.gen()
					if err := msgpack.Unmarshal(data, a); err != nil {
						t.Fatalf("round %d: generated decode: %v", i, err)
					}
					if err := msgpack.Unmarshal(data, p.ref(b)); err != nil {
						t.Fatalf("round %d: reflective decode: %v", i, err)
					}
					if !reflect.DeepEqual(a, b) {
						t.Fatalf("round %d: decoders disagree on %x\ngenerated  %+v\nreflective %+v", i, data, a, b)
					}
					if f.maxMap <= 1 {
						if again := marshal(t, a); !bytes.Equal(again, ref) {
							t.Fatalf("round %d: re-encoding the decoded value gives %x, want %x", i, again, ref)
						}
					}
				}
			}
		})
	}
}

// TestDecodeTolerance checks what the decoders accept beyond their own
// output: keys in any order, unknown keys, nil, array-encoded structs.
func TestDecodeTolerance(t *testing.T) {
	want := bank.MoneyDeposited{Amount: 7, Note: "hi"}
	enc := func(v any) []byte { return marshal(t, v) }
	cases := map[string][]byte{
		"reordered":     enc(map[string]any{"note": "hi", "amount": 7}),
		"unknown keys":  enc(map[string]any{"x": []any{1, "y", map[string]any{"z": nil}}, "amount": int8(7), "note": "hi", "a-very-long-key-that-no-field-has-not-even-close-to-any-field-of-the-package": 1}),
		"array-encoded": enc([]any{7, "hi"}),
	}
	for name, data := range cases {
		var got bank.MoneyDeposited
		if err := msgpack.Unmarshal(data, &got); err != nil || got != want {
			t.Errorf("%s: got %+v, %v", name, got, err)
		}
		var ref rMoneyDeposited
		if err := msgpack.Unmarshal(data, &ref); err != nil || bank.MoneyDeposited(ref) != want {
			t.Errorf("%s: reflective got %+v, %v", name, ref, err)
		}
	}
	got := bank.MoneyDeposited{Amount: 1}
	if err := msgpack.Unmarshal([]byte{0xc0}, &got); err != nil || got != (bank.MoneyDeposited{}) {
		t.Errorf("nil: got %+v, %v", got, err)
	}
	for _, bad := range [][]byte{{}, {0x81}, {0x92, 1}, {0x93, 1, 2, 3}, {0xa1, 'x'}, {0x81, 0xa6, 'a', 'm', 'o', 'u', 'n', 't', 0xa1, 'x'}} {
		var got bank.MoneyDeposited
		if err := msgpack.Unmarshal(bad, &got); err == nil {
			t.Errorf("%x decoded without error", bad)
		}
	}
}

// FuzzDecode checks that hostile input never panics the generated decoders.
func FuzzDecode(f *testing.F) {
	r := rand.New(rand.NewSource(2))
	for _, p := range pairs {
		v := p.gen()
		(&filler{r: r, maxMap: 2}).fill(reflect.ValueOf(v).Elem(), 0)
		f.Add(marshal(f, v))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, p := range pairs {
			_ = msgpack.Unmarshal(data, p.gen())
		}
	})
}

// BenchmarkCodec times the generated and the reflective codec on the same
// values in one run and reports how many times faster the generated one is
// (enc-x, dec-x; above 1 is faster).
func BenchmarkCodec(b *testing.B) {
	r := rand.New(rand.NewSource(3))
	for _, p := range pairs {
		v := p.gen()
		(&filler{r: r, maxMap: 2, short: true}).fill(reflect.ValueOf(v).Elem(), 0)
		b.Run(p.name, func(b *testing.B) {
			var buf bytes.Buffer
			enc := msgpack.NewEncoder(&buf)
			data := marshal(b, v)
			rd := bytes.NewReader(data)
			dec := msgpack.NewDecoder(rd)
			// pair times fn and gn b.N times each, interleaved in chunks
			// so that load from other processes hits both alike.
			pair := func(fn, gn func()) (time.Duration, time.Duration) {
				var tf, tg time.Duration
				const chunks = 20
				for c := 0; c < chunks; c++ {
					n := b.N / chunks
					if c == 0 {
						n += b.N % chunks
					}
					start := time.Now()
					for i := 0; i < n; i++ {
						fn()
					}
					mid := time.Now()
					for i := 0; i < n; i++ {
						gn()
					}
					tf += mid.Sub(start)
					tg += time.Since(mid)
				}
				return tf, tg
			}
			ref := p.ref(v)
			must := func(err error) {
				if err != nil {
					b.Fatal(err)
				}
			}
			b.ReportAllocs()
			b.ResetTimer()
			genEnc, refEnc := pair(func() { buf.Reset(); must(enc.Encode(v)) }, func() { buf.Reset(); must(enc.Encode(ref)) })
			out, outRef := p.gen(), p.ref(p.gen())
			// Decode into a zeroed value each time: msgpack decodes into
			// the existing value of a non-nil any, which it cannot set.
			outV, outRefV := reflect.ValueOf(out).Elem(), reflect.ValueOf(outRef).Elem()
			genDec, refDec := pair(
				func() { outV.SetZero(); rd.Reset(data); dec.Reset(rd); must(dec.Decode(out)) },
				func() { outRefV.SetZero(); rd.Reset(data); dec.Reset(rd); must(dec.Decode(outRef)) })
			n := float64(b.N)
			b.ReportMetric(float64(genEnc.Nanoseconds())/n, "gen-enc-ns/op")
			b.ReportMetric(float64(refEnc.Nanoseconds())/n, "ref-enc-ns/op")
			b.ReportMetric(float64(genDec.Nanoseconds())/n, "gen-dec-ns/op")
			b.ReportMetric(float64(refDec.Nanoseconds())/n, "ref-dec-ns/op")
			b.ReportMetric(float64(refEnc)/float64(genEnc), "enc-x")
			b.ReportMetric(float64(refDec)/float64(genDec), "dec-x")
			b.SetBytes(int64(len(data)))
		})
	}
}

// byteScanner is an io.ByteScanner that is neither a *bytes.Reader nor a
// *bufio.Reader, so that the generated decoders read keys byte by byte.
type byteScanner struct{ r *bytes.Reader }

func (s *byteScanner) Read(p []byte) (int, error) { return s.r.Read(p) }
func (s *byteScanner) ReadByte() (byte, error)    { return s.r.ReadByte() }
func (s *byteScanner) UnreadByte() error          { return s.r.UnreadByte() }

// onlyReader hides every method but Read: msgpack wraps it in a bufio.Reader.
type onlyReader struct{ r *bytes.Reader }

func (o onlyReader) Read(p []byte) (int, error) { return o.r.Read(p) }

// TestDecodeReaders checks that the generated decoders read keys alike
// through each kind of reader a msgpack.Decoder may hold, including long
// unknown keys and truncated input.
func TestDecodeReaders(t *testing.T) {
	readers := map[string]func([]byte) io.Reader{
		"bytes":       func(b []byte) io.Reader { return bytes.NewReader(b) },
		"bufio":       func(b []byte) io.Reader { return onlyReader{bytes.NewReader(b)} },
		"bufio-16":    func(b []byte) io.Reader { return bufio.NewReaderSize(bytes.NewReader(b), 16) },
		"byteScanner": func(b []byte) io.Reader { return &byteScanner{bytes.NewReader(b)} },
	}
	long := marshal(t, map[string]any{"amount": 7, "a-very-long-key-that-no-field-has-not-even-close-to-any-field-of-the-package": "x", "note": "hi"})
	r := rand.New(rand.NewSource(2))
	for name, open := range readers {
		t.Run(name, func(t *testing.T) {
			var got bank.MoneyDeposited
			if err := msgpack.NewDecoder(open(long)).Decode(&got); err != nil || got != (bank.MoneyDeposited{Amount: 7, Note: "hi"}) {
				t.Errorf("long key: got %+v, %v", got, err)
			}
			for _, p := range pairs {
				for i := 0; i < 4; i++ {
					v := p.gen()
					(&filler{r: r, maxMap: 1, short: true}).fill(reflect.ValueOf(v).Elem(), 0)
					data := marshal(t, v)
					a, b := p.gen(), p.gen()
					if err := msgpack.NewDecoder(open(data)).Decode(a); err != nil {
						t.Fatalf("%s: generated decode: %v", p.name, err)
					}
					if err := msgpack.Unmarshal(data, p.ref(b)); err != nil {
						t.Fatalf("%s: reflective decode: %v", p.name, err)
					}
					if !reflect.DeepEqual(a, b) {
						t.Fatalf("%s: decoders disagree on %x\ngenerated  %+v\nreflective %+v", p.name, data, a, b)
					}
					for n := 0; n < len(data); n++ {
						if err := msgpack.NewDecoder(open(data[:n])).Decode(p.gen()); err == nil {
							t.Fatalf("%s: %x, truncated to %d bytes, decoded without error", p.name, data, n)
						}
					}
				}
			}
		})
	}
}
