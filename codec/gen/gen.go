// Package gen is the support library of the code that evento-gen
// (github.com/evento-go/evento/cmd/evento-gen) generates: the msgpack
// decoding helpers that every generated file would otherwise repeat.
//
// It is not meant for direct use. Its API is stable, because generated code
// that is checked into other modules calls it: names are only ever added,
// and the behaviour of existing ones does not change.
//
// HandlersOf builds the handler set of the events whose per-event handler
// interface a value implements: the code behind the generated
// <Aggregate>HandlersOf constructors.
//
// The helpers keep generated decoders free of allocations for map keys: Key
// reads a key into a buffer the caller owns, typically an array on the
// generated decoder's stack, and never hands that buffer to an io.Reader
// (which would move it to the heap).
package gen

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strings"

	"github.com/evento-go/evento"
	"github.com/evento-go/evento/subscription"
	"github.com/vmihailenco/msgpack/v5"
	"github.com/vmihailenco/msgpack/v5/msgpcode"
)

// MaxPrealloc is the largest number of elements that Cap lets a decoder
// preallocate for a length read from untrusted input.
const MaxPrealloc = 1024

// ErrNoByteReader is returned by Key when the decoder's reader is neither a
// *bytes.Reader, a *bufio.Reader nor an io.ByteReader. Decoders made by
// msgpack.NewDecoder and msgpack.GetDecoder never have such a reader.
var ErrNoByteReader = errors.New("gen: msgpack decoder has no io.ByteReader")

// DecodeData decodes e.Data into v with e.Decode. Empty data leaves v as it
// is (the zero value, in generated code) and is not an error. The error of
// e.Decode is returned unchanged: it already names the event.
func DecodeData(e *evento.Event, v any) error {
	if len(e.Data) == 0 {
		return nil
	}
	return e.Decode(v)
}

// Handler returns a subscription handler (the underlying type of
// subscription.HandlerFunc) that decodes e.Data into a new T with DecodeData
// and passes it to f. A decoding error is returned without calling f.
func Handler[T any](f func(ctx context.Context, e *evento.Event, data *T) error) func(context.Context, *evento.Event) error {
	return func(ctx context.Context, e *evento.Event) error {
		var data T
		if err := DecodeData(e, &data); err != nil {
			return err
		}
		return f(ctx, e, &data)
	}
}

// HandlerSpec describes the typed handler of one event of an aggregate, for
// HandlersOf. Generated code declares one per event.
type HandlerSpec struct {
	// Event is the stored event name.
	Event string
	// Method is the name of the handler method, On<Go name of the event>.
	Method string
	// Data is a nil pointer to the event's payload type, such as
	// (*MoneyDeposited)(nil): handler methods take that pointer type.
	Data any
	// Bind returns h's handler of the event, or nil when h does not
	// implement the event's handler interface.
	Bind func(h any) subscription.HandlerFunc
}

// HandlersOf returns the handler set of aggregateType made of the handlers
// that h implements among specs: a read model implements the methods of
// the events it handles and no others.
//
// Since a value with a misspelt method would silently handle nothing, h
// must implement at least one of the handlers, and HandlersOf refuses an
// exported method that is meant as a handler but matches none: a method
// named after an event's handler with another signature, a method with a
// handler's signature for one of the events under another name, and a
// handler method that only *T has when h is a T. The error lists every
// problem and wraps subscription.ErrInvalidConfig.
func HandlersOf(aggregateType string, h any, specs []HandlerSpec) (subscription.HandlerSet, error) {
	set := subscription.HandlerSet{AggregateType: aggregateType, Handlers: map[string]subscription.HandlerFunc{}}
	if h == nil {
		return set, fmt.Errorf("evento: handlers of %s from a nil value: %w", aggregateType, subscription.ErrInvalidConfig)
	}
	t := reflect.TypeOf(h)
	byMethod := make(map[string]*HandlerSpec, len(specs))
	byData := make(map[reflect.Type]*HandlerSpec, len(specs))
	for i := range specs {
		s := &specs[i]
		byMethod[s.Method] = s
		byData[reflect.TypeOf(s.Data)] = s
		if f := s.Bind(h); f != nil {
			set.Handlers[s.Event] = f
		}
	}
	var problems []string
	methods := t
	if t.Kind() != reflect.Pointer && t.Kind() != reflect.Interface {
		methods = reflect.PointerTo(t) // pointer methods, to explain a value passed by copy
	}
	for i := 0; i < methods.NumMethod(); i++ {
		m := methods.Method(i)
		if s := byMethod[m.Name]; s != nil {
			if set.Handlers[s.Event] != nil {
				continue
			}
			if _, onValue := t.MethodByName(m.Name); !onValue && methods != t && m.Type == handlerType(methods, s) {
				problems = append(problems, fmt.Sprintf("%s has a pointer receiver, so %v does not implement it: pass a %v", m.Name, t, methods))
				continue
			}
			problems = append(problems, fmt.Sprintf("%s is %s, want %s", m.Name, signature(m.Type), signature(handlerType(methods, s))))
			continue
		}
		if m.Type.NumIn() == 4 && m.Type.NumOut() == 1 {
			if s := byData[m.Type.In(3)]; s != nil && set.Handlers[s.Event] == nil && m.Type == handlerType(methods, s) {
				problems = append(problems, fmt.Sprintf("%s has the signature of the handler of %s, which is named %s", m.Name, s.Event, s.Method))
			}
		}
	}
	if len(problems) > 0 {
		return set, fmt.Errorf("evento: handlers of %s from %v: %s: %w", aggregateType, t, strings.Join(problems, "; "), subscription.ErrInvalidConfig)
	}
	if len(set.Handlers) == 0 {
		names := make([]string, len(specs))
		for i, s := range specs {
			names[i] = s.Method
		}
		return set, fmt.Errorf("evento: %v handles no event of %s: it has none of the methods %s: %w", t, aggregateType, strings.Join(names, ", "), subscription.ErrInvalidConfig)
	}
	return set, nil
}

var (
	contextType = reflect.TypeFor[context.Context]()
	eventType   = reflect.TypeFor[*evento.Event]()
	errorType   = reflect.TypeFor[error]()
)

// handlerType is the method type (with receiver recv) of s's handler.
func handlerType(recv reflect.Type, s *HandlerSpec) reflect.Type {
	return reflect.FuncOf([]reflect.Type{recv, contextType, eventType, reflect.TypeOf(s.Data)}, []reflect.Type{errorType}, false)
}

// signature renders a method type without its receiver.
func signature(t reflect.Type) string {
	in := make([]reflect.Type, 0, t.NumIn())
	for i := 1; i < t.NumIn(); i++ {
		in = append(in, t.In(i))
	}
	out := make([]reflect.Type, t.NumOut())
	for i := range out {
		out[i] = t.Out(i)
	}
	return reflect.FuncOf(in, out, t.IsVariadic()).String()
}

// StructLen reads the header of an encoded struct: a map of n keys, an
// array of n fields (array is true), or nil (n is -1).
func StructLen(dec *msgpack.Decoder) (n int, array bool, err error) {
	c, err := dec.PeekCode()
	if err != nil {
		return 0, false, err
	}
	if c == msgpcode.Nil {
		return -1, false, dec.DecodeNil()
	}
	if msgpcode.IsFixedArray(c) || c == msgpcode.Array16 || c == msgpcode.Array32 {
		n, err = dec.DecodeArrayLen()
		return n, true, err
	}
	n, err = dec.DecodeMapLen()
	return n, false, err
}

// Key reads a map key (a msgpack string or binary) into buf and returns the
// part of buf that holds it. A nil or empty key returns nil. A key longer
// than buf, which no field of the caller has, is read and discarded, and nil
// returned, so it matches no field; an empty buf is allowed. Truncated input returns io.EOF or io.ErrUnexpectedEOF,
// like io.ReadFull.
//
// Key does not retain buf and does not let it escape, so a stack array of
// the generated decoder stays on the stack.
func Key(dec *msgpack.Decoder, buf []byte) ([]byte, error) {
	n, err := dec.DecodeBytesLen()
	if err != nil || n <= 0 {
		return nil, err
	}
	if n > len(buf) {
		return nil, discard(dec, n)
	}
	return buf[:n], read(dec, buf[:n])
}

// discard reads n bytes from dec's reader and drops them.
func discard(dec *msgpack.Decoder, n int) error {
	var scratch [64]byte
	for n > 0 {
		c := min(n, len(scratch))
		if err := read(dec, scratch[:c]); err != nil {
			return err
		}
		n -= c
	}
	return nil
}

// Cap bounds the capacity that a decoder preallocates for a length n read
// from untrusted input to MaxPrealloc; the slice or map still grows to n.
func Cap(n int) int { return max(0, min(n, MaxPrealloc)) }

// read fills buf from dec's reader, with the errors of io.ReadFull. It reads
// through the reader's concrete type or io.ByteReader, which every decoder's
// reader is, so that buf can stay on the caller's stack: passing it to
// Decoder.ReadFull, which hands it to an io.Reader, would move it to the
// heap.
func read(dec *msgpack.Decoder, buf []byte) error {
	switch r := dec.Buffered().(type) {
	case *bytes.Reader:
		n, _ := r.Read(buf)
		return short(n, len(buf))
	case *bufio.Reader:
		if p, err := r.Peek(len(buf)); err == nil {
			copy(buf, p)
			_, err = r.Discard(len(buf))
			return err
		}
		return readBytes(r, buf)
	case io.ByteReader:
		return readBytes(r, buf)
	}
	return ErrNoByteReader
}

// readBytes fills buf from r one byte at a time.
func readBytes(r io.ByteReader, buf []byte) error {
	for i := range buf {
		c, err := r.ReadByte()
		if err != nil {
			if err == io.EOF {
				return short(i, len(buf))
			}
			return err
		}
		buf[i] = c
	}
	return nil
}

// short is the error of io.ReadFull after n of want bytes.
func short(n, want int) error {
	switch {
	case n == want:
		return nil
	case n == 0:
		return io.EOF
	}
	return io.ErrUnexpectedEOF
}
