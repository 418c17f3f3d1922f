package subscription

import (
	"context"
	"errors"
	"hash/fnv"
	"strings"
	"testing"
	"time"

	"github.com/evento-go/evento"
)

func TestValidateJoinsEveryProblem(t *testing.T) {
	nop := func(context.Context, *evento.Event) error { return nil }
	s := New("").Handle("", "X", nop).Handle("t", "A", nop).Handle("t", "A", nop).
		ChunkSize(5000).MaxChunkSize(10).Partitions(-1).Lease(time.Second, 2*time.Second).PollInterval(-time.Second).
		Retry(RetryPolicy{Multiplier: 0.5, Jitter: 2, MaxAttempts: -1}).Skip("")
	err := s.Validate()
	if !errors.Is(err, ErrInvalidConfig) {
		t.Fatalf("Validate = %v, want ErrInvalidConfig", err)
	}
	for _, want := range []string{"empty subscription key", "empty aggregate type", "two handlers", "chunk size", "max chunk size 10 is below", "partitions",
		"heartbeat", "poll interval", "multiplier", "jitter", "max attempts", "skip with empty"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("Validate error lacks %q:\n%v", want, err)
		}
	}
	if err := New("k").Validate(); err == nil || !strings.Contains(err.Error(), "no handlers") {
		t.Errorf("a subscription without handlers validated: %v", err)
	}
	if _, err := New("k").Start(context.Background(), nil); !errors.Is(err, ErrInvalidConfig) {
		t.Errorf("Start without handlers = %v, want ErrInvalidConfig", err)
	}
	if err := New("k").Handle("t", "A", nop).Validate(); err != nil {
		t.Errorf("a minimal subscription does not validate: %v", err)
	}
}

func TestDefaults(t *testing.T) {
	c := New("k").Lease(3*time.Second, 0).Config()
	if c.ChunkSize != DefaultChunkSize || c.MaxChunkSize != DefaultMaxChunkSize || c.Partitions != 1 || c.Heartbeat != time.Second || c.ClaimInterval != 750*time.Millisecond ||
		c.PollInterval != DefaultPollInterval || c.Retry != DefaultRetryPolicy() || c.Logger == nil {
		t.Errorf("defaults = %+v", c)
	}
	// A partial retry policy keeps its jitter (none) and fills the rest.
	c = New("k").Retry(RetryPolicy{Initial: time.Millisecond}).Config()
	if c.Retry.Jitter != 0 || c.Retry.MaxAttempts != 5 || c.Retry.Multiplier != 2 || c.Retry.Max != 30*time.Second {
		t.Errorf("partial retry policy = %+v", c.Retry)
	}
}

func TestRetryDelay(t *testing.T) {
	p := RetryPolicy{Initial: 100 * time.Millisecond, Max: time.Second, Multiplier: 2}
	for attempt, want := range map[int]time.Duration{1: 100 * time.Millisecond, 2: 200 * time.Millisecond, 4: 800 * time.Millisecond, 5: time.Second, 100: time.Second} {
		if got := p.Delay(attempt); got != want {
			t.Errorf("Delay(%d) = %v, want %v", attempt, got, want)
		}
	}
}

// TestPartitionOfIsStable pins the partition function: cursors are stored
// per partition, so it must never change.
func TestPartitionOfIsStable(t *testing.T) {
	for _, tc := range []struct {
		id   string
		n    int
		want uint32
	}{
		{"", 7, 2166136261 % 7},
		{"a", 1000, 0xe40c292c % 1000},
		{"acc-42", 16, fnv1a("acc-42") % 16},
		{"0196b1a4-7c1e-7000-8000-000000000001", 5, fnv1a("0196b1a4-7c1e-7000-8000-000000000001") % 5},
		{"anything", 1, 0},
		{"anything", 0, 0},
	} {
		if got := PartitionOf(tc.id, tc.n); got != tc.want {
			t.Errorf("PartitionOf(%q, %d) = %d, want %d", tc.id, tc.n, got, tc.want)
		}
	}
}

// fnv1a is hash/fnv's 32-bit FNV-1a, the reference for PartitionOf.
func fnv1a(s string) uint32 {
	h := fnv.New32a()
	_, _ = h.Write([]byte(s))
	return h.Sum32()
}
