package pebble

import (
	"context"
	"errors"
	"testing"

	"github.com/evento-go/evento/executor"
)

// TestOpenLockedInProcess: a directory this process already has open gives
// executor.ErrLocked, as one held by another process does (the CLI's test
// covers that case with a real second process), not Pebble's untyped lock
// error.
func TestOpenLockedInProcess(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s, err := Open(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	s2, err := Open(ctx, dir)
	if err == nil {
		s2.Close()
		t.Fatal("second Open of a directory this process holds succeeded")
	}
	if !errors.Is(err, executor.ErrLocked) {
		t.Fatalf("second Open: %v, want executor.ErrLocked", err)
	}
	if _, err := Open(ctx, dir, WithReadOnly(true)); !errors.Is(err, executor.ErrLocked) {
		t.Fatalf("read-only Open of a held directory: %v, want executor.ErrLocked", err)
	}
}
