package main

import (
	"bytes"
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/evento-go/evento/executor"
)

// TestCLIMigrate: evento migrate creates a store that then opens with
// migrate=false, which refused it before.
func TestCLIMigrate(t *testing.T) {
	ctx := context.Background()
	for _, dsn := range []string{
		"sqlite:" + filepath.Join(t.TempDir(), "ev.db") + "?migrate=false",
		"pebble:" + filepath.Join(t.TempDir(), "ev") + "?migrate=false",
	} {
		if _, err := executor.Open(ctx, dsn); !errors.Is(err, executor.ErrNotMigrated) {
			t.Fatalf("%s before migrate: err = %v, want ErrNotMigrated", dsn, err)
		}
		var out, errOut bytes.Buffer
		if code := run(ctx, []string{"-dsn", dsn, "migrate"}, nil, &out, &errOut); code != 0 {
			t.Fatalf("%s: exit %d: %s", dsn, code, errOut.String())
		}
		if !strings.HasPrefix(out.String(), "migrated ") {
			t.Errorf("output %q", out.String())
		}
		x, err := executor.Open(ctx, dsn)
		if err != nil {
			t.Fatalf("%s after migrate: %v", dsn, err)
		}
		x.Close()
	}
	var out, errOut bytes.Buffer
	if code := run(ctx, []string{"-dsn", "sqlite::memory:", "migrate", "extra"}, nil, &out, &errOut); code != 2 {
		t.Errorf("migrate with an argument: exit %d, want 2", code)
	}
}
