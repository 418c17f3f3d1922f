// Package cursor implements opaque pagination cursors and the Relay
// connection shapes (Args, Page, Edge, PageInfo) used by evento's reads.
//
// A cursor is a base64url string (no padding) with msgpack inside. The one
// encoding, [Encoding], is used in both directions. Callers must treat cursor
// strings as opaque: their content may change between releases, and a cursor
// that does not decode gives an error that wraps [ErrInvalidCursor].
//
// # Pagination
//
// [Args] follows the Relay connection specification: First/After reads
// forward, Last/Before reads backward. Edges are always returned in ascending
// order, whichever the direction. [Args.Validate] enforces the page size
// limits, and [Args.Limit] fills in the default.
//
// This package imports nothing else of evento, so HTTP layers can use it on
// its own.
package cursor

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"

	"github.com/vmihailenco/msgpack/v5"
)

// Encoding is the one base64 encoding used to encode and decode cursors:
// URL-safe alphabet, no padding, so cursors go in query strings unescaped.
var Encoding = base64.RawURLEncoding

// Default page size limits. Executors use these unless configured otherwise.
const (
	// DefaultPageSize is the page size when neither First nor Last is set.
	DefaultPageSize = 20
	// MaxPageSize is the largest page a caller may ask for.
	MaxPageSize = 1000
)

// Errors returned by this package. Callers test them with errors.Is; the
// returned errors carry details in their message.
var (
	// ErrInvalidCursor means a cursor string is malformed, was produced by
	// something else, or does not fit the read it was given to.
	ErrInvalidCursor = errors.New("invalid cursor")
	// ErrPageTooLarge means First or Last is above the maximum page size.
	ErrPageTooLarge = errors.New("page size too large")
	// ErrInvalidArgs means the pagination arguments contradict each other:
	// both directions at once, or a negative size.
	ErrInvalidArgs = errors.New("invalid pagination arguments")
)

// Encode returns the cursor string for v, which is encoded with msgpack.
func Encode(v any) (string, error) {
	b, err := msgpack.Marshal(v)
	if err != nil {
		return "", fmt.Errorf("cursor: encode: %w", err)
	}
	return Encoding.EncodeToString(b), nil
}

// Decode decodes the cursor string s into v. Any failure, including an
// empty string, trailing bytes after the msgpack value, or a msgpack value of
// another shape, gives an error wrapping ErrInvalidCursor. Decode never
// panics on user input.
func Decode(s string, v any) error {
	if s == "" {
		return fmt.Errorf("cursor: empty cursor: %w", ErrInvalidCursor)
	}
	if len(s) > 4096 {
		return fmt.Errorf("cursor: %d bytes is too long: %w", len(s), ErrInvalidCursor)
	}
	b, err := Encoding.DecodeString(s)
	if err != nil {
		return fmt.Errorf("cursor: %q is not base64url: %w", s, ErrInvalidCursor)
	}
	if err := unmarshalStrict(b, v); err != nil {
		return fmt.Errorf("cursor: %q does not decode: %v: %w", s, err, ErrInvalidCursor)
	}
	return nil
}

func unmarshalStrict(b []byte, v any) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("decode panic: %v", r)
		}
	}()
	r := bytes.NewReader(b)
	dec := msgpack.GetDecoder()
	defer msgpack.PutDecoder(dec)
	dec.Reset(r)
	dec.DisallowUnknownFields(true)
	if err := dec.Decode(v); err != nil {
		return err
	}
	if r.Len() != 0 {
		return errors.New("trailing bytes")
	}
	return nil
}

// Args are the Relay connection arguments. The zero value reads forward from
// the start with the default page size.
//
// First/After read forward; Last/Before read backward. Setting First and
// Last together, or After and Before together, is an error. A zero First or
// Last means "not set".
type Args struct {
	First  int    `json:"first,omitempty"`
	After  string `json:"after,omitempty"`
	Last   int    `json:"last,omitempty"`
	Before string `json:"before,omitempty"`
}

// Forward constructs forward Args: the first n items after the cursor after
// ("" for the start).
func Forward(n int, after string) Args { return Args{First: n, After: after} }

// Backward constructs backward Args: the last n items before the cursor
// before ("" for the end).
func Backward(n int, before string) Args { return Args{Last: n, Before: before} }

// IsBackward reports whether the arguments read backward (Last or Before set).
func (a Args) IsBackward() bool { return a.Last > 0 || a.Before != "" }

// Validate checks the arguments against the maximum page size max (<= 0
// means MaxPageSize). Every problem is reported, joined with errors.Join.
func (a Args) Validate(max int) error {
	if max <= 0 {
		max = MaxPageSize
	}
	var errs []error
	if a.First < 0 {
		errs = append(errs, fmt.Errorf("cursor: first=%d is negative: %w", a.First, ErrInvalidArgs))
	}
	if a.Last < 0 {
		errs = append(errs, fmt.Errorf("cursor: last=%d is negative: %w", a.Last, ErrInvalidArgs))
	}
	if a.First > 0 && a.Last > 0 {
		errs = append(errs, fmt.Errorf("cursor: first and last both set: %w", ErrInvalidArgs))
	}
	if a.After != "" && a.Before != "" {
		errs = append(errs, fmt.Errorf("cursor: after and before both set: %w", ErrInvalidArgs))
	}
	if (a.First > 0 && a.Before != "") || (a.Last > 0 && a.After != "") {
		errs = append(errs, fmt.Errorf("cursor: forward and backward arguments mixed: %w", ErrInvalidArgs))
	}
	if a.First > max {
		errs = append(errs, fmt.Errorf("cursor: first=%d exceeds the maximum page size %d: %w", a.First, max, ErrPageTooLarge))
	}
	if a.Last > max {
		errs = append(errs, fmt.Errorf("cursor: last=%d exceeds the maximum page size %d: %w", a.Last, max, ErrPageTooLarge))
	}
	return errors.Join(errs...)
}

// Limit returns the page size to read: First or Last, or def when neither is
// set (def <= 0 means DefaultPageSize).
func (a Args) Limit(def int) int {
	if def <= 0 {
		def = DefaultPageSize
	}
	switch {
	case a.First > 0:
		return a.First
	case a.Last > 0:
		return a.Last
	}
	return def
}

// Edge is one item of a page and the cursor that points at it.
type Edge[T any] struct {
	Cursor string `json:"cursor"`
	Node   T      `json:"node"`
}

// PageInfo says where a page sits, following the Relay connection spec.
// StartCursor and EndCursor are empty when the page is empty.
type PageInfo struct {
	HasNextPage     bool   `json:"hasNextPage"`
	HasPreviousPage bool   `json:"hasPreviousPage"`
	StartCursor     string `json:"startCursor,omitempty"`
	EndCursor       string `json:"endCursor,omitempty"`
}

// Page is a Relay connection: edges in ascending order and their PageInfo.
// Its JSON form is {"edges":[{"cursor","node"}],"pageInfo":{...}}.
type Page[T any] struct {
	Edges    []Edge[T] `json:"edges"`
	PageInfo PageInfo  `json:"pageInfo"`
}

// Nodes returns the nodes of the page in order.
func (p Page[T]) Nodes() []T {
	out := make([]T, len(p.Edges))
	for i, e := range p.Edges {
		out[i] = e.Node
	}
	return out
}

// Map converts a page of T into a page of U, keeping cursors and PageInfo.
func Map[T, U any](p Page[T], f func(T) U) Page[U] {
	out := Page[U]{PageInfo: p.PageInfo, Edges: make([]Edge[U], len(p.Edges))}
	for i, e := range p.Edges {
		out.Edges[i] = Edge[U]{Cursor: e.Cursor, Node: f(e.Node)}
	}
	return out
}
