// Package codec exercises every field type evento-gen's codecs support.
package codec

import (
	"time"

	"github.com/evento-go/evento"
	"github.com/oklog/ulid/v2"
)

// Ledger is an aggregate whose events carry many kinds of fields.
//
//evento:aggregate test/codec.Ledger
type Ledger struct {
	Applied []string
}

// Currency is a named string.
type Currency string

// Cents is a named integer.
type Cents int64

// Tags is a named slice.
type Tags []string

// Money is a plain struct that events contain.
type Money struct {
	Amount   Cents    `msgpack:"amt"`
	Currency Currency `msgpack:"cur,omitempty"`
}

// Party is a plain struct with a nested pointer and omitempty fields.
type Party struct {
	Name    string
	Address *Address `msgpack:",omitempty"`
	Labels  Tags     `msgpack:"labels,omitempty"`
}

// Address is nested two levels deep.
type Address struct {
	Street string
	Zip    uint32 `msgpack:"zip,omitempty"`
}

// Scalars carries every scalar kind.
type Scalars struct {
	B   bool
	I   int
	I8  int8
	I16 int16
	I32 int32
	I64 int64
	U   uint
	U8  uint8
	U16 uint16
	U32 uint32
	U64 uint64
	F32 float32
	F64 float64
	S   string
	Bs  []byte
	T   time.Time
	C   Currency
	N   Cents `msgpack:"cents"`
}

// Collections carries slices, maps and pointers.
type Collections struct {
	Strings  []string
	Ints     []int64
	Nested   [][]int
	Moneys   []Money
	ByName   map[string]int
	Flags    map[string]bool
	Labels   map[string]string
	ByID     map[int32]Money
	Times    []time.Time
	PtrInt   *int
	PtrMoney *Money
	Tags     Tags
	Bytes    [][]byte
}

// Fallbacks carries fields left to msgpack's reflective codec.
type Fallbacks struct {
	ID       ulid.ULID
	Pos      evento.Position
	Meta     evento.Metadata
	Any      any
	Array    [3]int
	Anon     struct{ X, Y int }
	AnyMap   map[string]any
	Duration time.Duration
}

// OmitEmpty carries omitempty fields of every kind.
type OmitEmpty struct {
	B      bool              `msgpack:",omitempty"`
	I      int               `msgpack:",omitempty"`
	F      float64           `msgpack:",omitempty"`
	S      string            `msgpack:",omitempty"`
	Bs     []byte            `msgpack:",omitempty"`
	T      time.Time         `msgpack:",omitempty"`
	M      map[string]string `msgpack:",omitempty"`
	P      *Money            `msgpack:",omitempty"`
	Money  Money             `msgpack:",omitempty"`
	Addr   Address           `msgpack:",omitempty"`
	Pos    evento.Position   `msgpack:",omitempty"`
	Ignore string            `msgpack:"-"`
	hidden int               `msgpack:"-"`
}

// Transfer nests plain structs and another event.
type Transfer struct {
	From   Party
	To     Party
	Amount Money
	Sub    *Scalars `msgpack:"sub,omitempty"`
}

// ApplyScalars applies Scalars.
func (l *Ledger) ApplyScalars(*Scalars) error { l.Applied = append(l.Applied, "Scalars"); return nil }

// ApplyCollections applies Collections.
func (l *Ledger) ApplyCollections(*Collections) error {
	l.Applied = append(l.Applied, "Collections")
	return nil
}

// ApplyFallbacks applies Fallbacks.
func (l *Ledger) ApplyFallbacks(*Fallbacks) error {
	l.Applied = append(l.Applied, "Fallbacks")
	return nil
}

// ApplyOmitEmpty applies OmitEmpty.
func (l *Ledger) ApplyOmitEmpty(*OmitEmpty) error {
	l.Applied = append(l.Applied, "OmitEmpty")
	return nil
}

// ApplyTransfer applies Transfer.
func (l *Ledger) ApplyTransfer(*Transfer) error {
	l.Applied = append(l.Applied, "Transfer")
	return nil
}
