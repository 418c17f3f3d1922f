package subscription

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/evento-go/evento"
)

func TestVersionedKey(t *testing.T) {
	for _, tc := range []struct {
		key  string
		base string
		v    int
	}{
		{"balances", "balances", 0},
		{"balances@v1", "balances", 1},
		{"balances@v42", "balances", 42},
		{"a@v2@v3", "a@v2", 3},
		{"balances@v2147483647", "balances", MaxVersion},
		// Not the canonical form of a version: version 0 of the key itself.
		{"balances@v0", "balances@v0", 0},
		{"balances@v01", "balances@v01", 0},
		{"balances@v", "balances@v", 0},
		{"balances@v2x", "balances@v2x", 0},
		{"balances@v-2", "balances@v-2", 0},
		{"balances@v2147483648", "balances@v2147483648", 0},
		{"balances@v99999999999", "balances@v99999999999", 0},
		{"@v2", "@v2", 0},
		{"", "", 0},
	} {
		base, v := SplitVersion(tc.key)
		if base != tc.base || v != tc.v {
			t.Errorf("SplitVersion(%q) = %q, %d; want %q, %d", tc.key, base, v, tc.base, tc.v)
		}
		if k := VersionedKey(base, v); k != tc.key {
			t.Errorf("VersionedKey(SplitVersion(%q)) = %q", tc.key, k)
		}
	}
	if TableName("balances", 0) != "balances" || TableName("balances", 2) != "balances_v2" {
		t.Errorf("TableName: %q %q", TableName("balances", 0), TableName("balances", 2))
	}
}

// FuzzSplitVersion checks that every key has one reading and that a
// version of a base reads back as that version.
func FuzzSplitVersion(f *testing.F) {
	f.Add("balances", 2)
	f.Add("a@v1", 7)
	f.Add("x@v01", 0)
	f.Fuzz(func(t *testing.T, key string, v int) {
		base, got := SplitVersion(key)
		if VersionedKey(base, got) != key {
			t.Fatalf("VersionedKey(SplitVersion(%q)) = %q", key, VersionedKey(base, got))
		}
		if got < 0 || got > MaxVersion || (got > 0 && base == "") {
			t.Fatalf("SplitVersion(%q) = %q, %d", key, base, got)
		}
		if key == "" || v <= 0 || v > MaxVersion {
			return
		}
		if b, w := SplitVersion(VersionedKey(key, v)); b != key || w != v {
			t.Fatalf("SplitVersion(VersionedKey(%q, %d)) = %q, %d", key, v, b, w)
		}
	})
}

func TestVersionBuilder(t *testing.T) {
	h := func(context.Context, *evento.Event) error { return nil }
	s := New("balances").HandleAll(aggType, h)
	if s.Key() != "balances" {
		t.Errorf("no version: key %q", s.Key())
	}
	if s.Version(3).Key() != "balances@v3" || s.Version(4).Key() != "balances@v4" || s.Version(0).Key() != "balances" {
		t.Errorf("Version does not replace the version: %q", s.Key())
	}
	if k := New("balances@v2").Version(5).Key(); k != "balances@v5" {
		t.Errorf("a key with a version, versioned again: %q", k)
	}
	if err := s.Validate(); err != nil {
		t.Errorf("valid: %v", err)
	}
	for _, v := range []int{-1, MaxVersion + 1} {
		if err := New("balances").HandleAll(aggType, h).Version(v).Validate(); !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("version %d: %v, want ErrInvalidConfig", v, err)
		}
	}
	// The stored key counts against the key length limit.
	long := strings.Repeat("k", evento.MaxIdentLen-2)
	if err := New(long).HandleAll(aggType, h).Version(2).Validate(); !errors.Is(err, ErrInvalidConfig) {
		t.Errorf("versioned key over the limit: %v, want ErrInvalidConfig", err)
	}
	if v, ok := VersionFrom(context.Background()); ok || v != 0 {
		t.Errorf("VersionFrom outside a handler = %d, %v", v, ok)
	}
	if n := TableNameFrom(context.Background(), "balances"); n != "balances" {
		t.Errorf("TableNameFrom outside a handler = %q", n)
	}
}

// TestVersionInHandler checks that a versioned subscription stores its
// state under its versioned key and that handlers see their version.
func TestVersionInHandler(t *testing.T) {
	exec := newPebble(t)
	newWriter(exec).writeN(t, 3, "a")
	seen := map[string]bool{}
	for _, v := range []int{0, 2} {
		sub := New("vh").Version(v).Logger(quiet).HandleAll(aggType, func(ctx context.Context, e *evento.Event) error {
			got, ok := VersionFrom(ctx)
			info, _ := InfoFrom(ctx)
			if !ok || got != v || info.Key != VersionedKey("vh", v) || TableNameFrom(ctx, "t") != TableName("t", v) {
				t.Errorf("version %d's handler: VersionFrom %d, %v; key %q; table %q", v, got, ok, info.Key, TableNameFrom(ctx, "t"))
			}
			return nil
		})
		if err := sub.CatchUp(context.Background(), exec); err != nil {
			t.Fatal(err)
		}
	}
	subs, err := exec.Subscribers(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range subs {
		seen[s.Key] = s.Cursor != ""
	}
	if !seen["vh"] || !seen["vh@v2"] || len(seen) != 2 {
		t.Errorf("subscribers with a cursor: %v, want vh and vh@v2", seen)
	}
}

func TestProgressRate(t *testing.T) {
	var p Progress
	t0 := time.Unix(1000, 0)
	p.observe(1000, true, 0, t0)
	if p.Rate != 0 || p.ETA != 0 {
		t.Errorf("first check: rate %v eta %v, want unknown", p.Rate, p.ETA)
	}
	p.observe(800, true, 0, t0.Add(time.Second)) // 200/s
	if p.Rate != 200 || p.ETA != 4*time.Second {
		t.Errorf("second check: rate %v eta %v, want 200/s and 4s", p.Rate, p.ETA)
	}
	p.observe(700, true, 0, t0.Add(2*time.Second)) // 100/s, smoothed to 150/s
	if p.Rate != 150 || p.Pending != 700 {
		t.Errorf("third check: rate %v pending %d, want 150/s and 700", p.Rate, p.Pending)
	}
	for i := 3; i < 60; i++ { // the backlog stops shrinking
		p.observe(700, true, 0, t0.Add(time.Duration(i)*time.Second))
	}
	if p.Rate != 0 || p.ETA != 0 {
		t.Errorf("stalled: rate %v eta %v, want unknown", p.Rate, p.ETA)
	}
}

func TestStartRolloutInvalid(t *testing.T) {
	exec := newPebble(t)
	ctx := context.Background()
	h := func(context.Context, *evento.Event) error { return nil }
	def := func(key string, v int) *Subscription { return New(key).Version(v).HandleAll(aggType, h).Logger(quiet) }
	for name, vs := range map[string][]*Subscription{
		"none":         nil,
		"nil":          {nil},
		"two keys":     {def("a", 1), def("b", 2)},
		"twice":        {def("a", 1), def("a", 1)},
		"invalid":      {def("a", 1), New("a").Version(2)},
		"bad version":  {def("a", 1), def("a", -1)},
		"nil executor": {def("a", 1)},
	} {
		e := evento.Executor(exec)
		if name == "nil executor" {
			e = nil
		}
		if r, err := StartRollout(ctx, e, RolloutConfig{}, vs...); !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("%s: %v, want ErrInvalidConfig", name, err)
			if r != nil {
				_ = r.Stop(ctx)
			}
		}
	}
	// The active version needs a definition to keep serving.
	if err := def("c", 0).CatchUp(ctx, exec); err != nil {
		t.Fatal(err)
	}
	if _, err := StartRollout(ctx, exec, RolloutConfig{Logger: quiet}, def("c", 2)); !errors.Is(err, ErrVersionNotDefined) {
		t.Fatalf("version 2 over a read model built without a version, not defined: %v, want ErrVersionNotDefined", err)
	}
	if err := DropVersion(ctx, exec, "c", 0, nil); err != nil {
		t.Fatal(err)
	}
	r, err := StartRollout(ctx, exec, RolloutConfig{Logger: quiet}, def("c", 2))
	if err != nil {
		t.Fatalf("version 2 once version 0 is dropped: %v", err)
	}
	if r.Active() != 2 {
		t.Errorf("active %d, want 2", r.Active())
	}
	if err := r.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if err := DropVersion(ctx, exec, "c", 2, nil); !errors.Is(err, ErrVersionInUse) {
		t.Errorf("drop the active version: %v, want ErrVersionInUse", err)
	}
	if err := DropVersion(ctx, exec, "c", -1, nil); !errors.Is(err, ErrInvalidConfig) {
		t.Errorf("drop version -1: %v, want ErrInvalidConfig", err)
	}
}
