package executor_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/evento-go/evento"
	"github.com/evento-go/evento/executor"
)

func TestOpenUnknownScheme(t *testing.T) {
	_, err := executor.Open(context.Background(), "mongo://u:secret@h/db")
	if !errors.Is(err, executor.ErrUnknownScheme) {
		t.Fatalf("err = %v, want ErrUnknownScheme", err)
	}
	msg := err.Error()
	if !strings.Contains(msg, `"mongo"`) || !strings.Contains(msg, "forgotten import") {
		t.Fatalf("message does not name the scheme and hint at the import: %s", msg)
	}
	if strings.Contains(msg, "secret") {
		t.Fatalf("message leaks the password: %s", msg)
	}
}

func TestOpenNoScheme(t *testing.T) {
	for _, dsn := range []string{"", "/var/lib/evento", ":memory:"} {
		if _, err := executor.Open(context.Background(), dsn); !errors.Is(err, executor.ErrInvalidDSN) {
			t.Errorf("Open(%q) = %v, want ErrInvalidDSN", dsn, err)
		}
	}
}

var runs int

func TestRegisterPanics(t *testing.T) {
	mustPanic := func(name string, f func()) {
		t.Helper()
		defer func() {
			if recover() == nil {
				t.Errorf("%s: no panic", name)
			}
		}()
		f()
	}
	d := executor.DriverFunc(func(context.Context, string) (evento.Executor, error) { return nil, errors.New("test driver") })
	// The registry is process-wide, so each run (-count=N) registers a new name.
	runs++
	scheme := fmt.Sprintf("registrytest%d", runs)
	executor.Register(scheme, d)
	mustPanic("duplicate", func() { executor.Register(scheme, d) })
	mustPanic("nil", func() { executor.Register("registrytest2", nil) })
	mustPanic("bad name", func() { executor.Register("a:b", d) })
	found := false
	for _, s := range executor.Schemes() {
		found = found || s == scheme
	}
	if !found {
		t.Fatal("Schemes does not list the registered scheme")
	}
	// The scheme is matched case-insensitively and the whole DSN is passed on.
	if _, err := executor.Open(context.Background(), strings.ToUpper(scheme)+":x"); err == nil || err.Error() != "test driver" {
		t.Fatalf("Open through registered driver: %v", err)
	}
}

func TestRedact(t *testing.T) {
	cases := map[string]string{
		"postgres://u:secret@h:5432/db?sslmode=disable": "secret",
		"postgres://u@h/db?password=secret":             "secret",
		"host=h user=u password=secret dbname=d":        "secret",
		"postgres://u:se%40cret@h/db":                   "se@cret",
	}
	for dsn, pw := range cases {
		got := executor.Redact(dsn)
		if strings.Contains(got, pw) || strings.Contains(got, "se%40cret") {
			t.Errorf("Redact(%q) = %q leaks the password", dsn, got)
		}
	}
	if got := executor.Redact("pebble:/var/lib/x"); got != "pebble:/var/lib/x" {
		t.Errorf("Redact changed a DSN without a password: %q", got)
	}
}
