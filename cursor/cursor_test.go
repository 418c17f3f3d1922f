package cursor_test

import (
	"encoding/json"
	"errors"
	"net/url"
	"strings"
	"testing"

	"github.com/evento-go/evento/cursor"
)

type pos struct {
	_msgpack struct{} `msgpack:",as_array"`
	ID       []byte
	Seq      uint64
}

func TestEncodeDecodeRoundTrip(t *testing.T) {
	in := pos{ID: []byte("0123456789abcdef"), Seq: 42}
	s, err := cursor.Encode(&in)
	if err != nil {
		t.Fatal(err)
	}
	if strings.ContainsAny(s, "+/=") {
		t.Fatalf("cursor %q is not unpadded base64url", s)
	}
	var out pos
	if err := cursor.Decode(s, &out); err != nil {
		t.Fatal(err)
	}
	if string(out.ID) != string(in.ID) || out.Seq != in.Seq {
		t.Fatalf("round trip: got %+v, want %+v", out, in)
	}
}

func TestDecodeRejects(t *testing.T) {
	good, _ := cursor.Encode(&pos{ID: []byte{1}, Seq: 1})
	map1, _ := cursor.Encode(map[string]int{"a": 1})
	for name, s := range map[string]string{
		"empty":        "",
		"not base64":   "!!!",
		"std padding":  "AQ==",
		"truncated":    good[:len(good)-3],
		"trailing":     good + "AA",
		"foreign map":  map1,
		"huge":         strings.Repeat("A", 5000),
		"not msgpack":  cursor.Encoding.EncodeToString([]byte{0xc1}),
		"wrong arity":  cursor.Encoding.EncodeToString([]byte{0x93, 1, 2, 3}),
		"wrong string": cursor.Encoding.EncodeToString([]byte{0xa1, 'x'}),
	} {
		t.Run(name, func(t *testing.T) {
			var out pos
			err := cursor.Decode(s, &out)
			if !errors.Is(err, cursor.ErrInvalidCursor) {
				t.Fatalf("Decode(%q) = %v, want ErrInvalidCursor", s, err)
			}
		})
	}
}

func FuzzDecode(f *testing.F) {
	good, _ := cursor.Encode(&pos{ID: []byte("x"), Seq: 7})
	f.Add(good)
	f.Add("")
	f.Add("kwEC")
	f.Fuzz(func(t *testing.T, s string) {
		var out pos
		err := cursor.Decode(s, &out)
		if err != nil {
			if !errors.Is(err, cursor.ErrInvalidCursor) {
				t.Fatalf("Decode(%q) error %v does not wrap ErrInvalidCursor", s, err)
			}
			return
		}
		// Whatever decodes must re-encode to a cursor that decodes the same.
		again, err := cursor.Encode(&out)
		if err != nil {
			t.Fatal(err)
		}
		var out2 pos
		if err := cursor.Decode(again, &out2); err != nil || string(out2.ID) != string(out.ID) || out2.Seq != out.Seq {
			t.Fatalf("re-encode of %q: %+v vs %+v (%v)", s, out2, out, err)
		}
	})
}

func TestArgsValidate(t *testing.T) {
	cases := []struct {
		name string
		a    cursor.Args
		want error
	}{
		{"zero", cursor.Args{}, nil},
		{"first", cursor.Args{First: 10, After: "x"}, nil},
		{"last", cursor.Args{Last: 10, Before: "x"}, nil},
		{"max", cursor.Args{First: cursor.MaxPageSize}, nil},
		{"too large first", cursor.Args{First: cursor.MaxPageSize + 1}, cursor.ErrPageTooLarge},
		{"too large last", cursor.Args{Last: cursor.MaxPageSize + 1}, cursor.ErrPageTooLarge},
		{"both sizes", cursor.Args{First: 1, Last: 1}, cursor.ErrInvalidArgs},
		{"both cursors", cursor.Args{After: "a", Before: "b"}, cursor.ErrInvalidArgs},
		{"mixed", cursor.Args{First: 1, Before: "b"}, cursor.ErrInvalidArgs},
		{"negative", cursor.Args{First: -1}, cursor.ErrInvalidArgs},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := c.a.Validate(0)
			if c.want == nil && err != nil {
				t.Fatalf("Validate(%+v) = %v, want nil", c.a, err)
			}
			if c.want != nil && !errors.Is(err, c.want) {
				t.Fatalf("Validate(%+v) = %v, want %v", c.a, err, c.want)
			}
		})
	}
	if got := (cursor.Args{}).Limit(0); got != cursor.DefaultPageSize {
		t.Fatalf("default limit = %d, want %d", got, cursor.DefaultPageSize)
	}
	if !(cursor.Args{Before: "x"}).IsBackward() || (cursor.Args{First: 3}).IsBackward() {
		t.Fatal("IsBackward wrong")
	}
}

func TestFromValues(t *testing.T) {
	a, err := cursor.FromValues(url.Values{"first": {"5"}, "after": {"abc"}}, 0)
	if err != nil || a.First != 5 || a.After != "abc" {
		t.Fatalf("got %+v, %v", a, err)
	}
	if back, _ := cursor.FromValues(a.Values(), 0); back != a {
		t.Fatalf("Values round trip: %+v vs %+v", back, a)
	}
	for _, q := range []string{"first=x", "first=5&last=5", "first=100000", "last=-2", "after=a&before=b"} {
		v, _ := url.ParseQuery(q)
		if _, err := cursor.FromValues(v, 0); err == nil {
			t.Errorf("FromValues(%s) accepted", q)
		} else if !errors.Is(err, cursor.ErrInvalidArgs) && !errors.Is(err, cursor.ErrPageTooLarge) {
			t.Errorf("FromValues(%s) = %v, not a typed error", q, err)
		}
	}
}

func TestPageJSONShape(t *testing.T) {
	p := cursor.Page[string]{
		Edges:    []cursor.Edge[string]{{Cursor: "c1", Node: "a"}},
		PageInfo: cursor.PageInfo{HasNextPage: true, StartCursor: "c1", EndCursor: "c1"},
	}
	b, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"edges":[{"cursor":"c1","node":"a"}],"pageInfo":{"hasNextPage":true,"hasPreviousPage":false,"startCursor":"c1","endCursor":"c1"}}`
	if string(b) != want {
		t.Fatalf("JSON\n got %s\nwant %s", b, want)
	}
	m := cursor.Map(p, func(s string) int { return len(s) })
	if m.Edges[0].Node != 1 || m.Edges[0].Cursor != "c1" || m.PageInfo != p.PageInfo {
		t.Fatalf("Map: %+v", m)
	}
	if n := p.Nodes(); len(n) != 1 || n[0] != "a" {
		t.Fatalf("Nodes: %v", n)
	}
}
