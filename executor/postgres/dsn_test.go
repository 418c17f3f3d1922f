package postgres_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/evento-go/evento"
	"github.com/evento-go/evento/executor"
	"github.com/evento-go/evento/executor/postgres"
	"github.com/evento-go/evento/executor/postgres/postgrestest"
)

// TestDSNOptionsReachServer: libpq options in the DSN reach the server as
// written (percent-decoded, '+' a plain character), not re-encoded.
func TestDSNOptionsReachServer(t *testing.T) {
	ctx := context.Background()
	dsn := postgrestest.DSN(t) + "&application_name=my%20app" +
		"&options=-c%20default_transaction_isolation%3Drepeatable%5C%20read%20-c%20search_path%3Da%2Bb"
	s, err := postgres.Open(ctx, dsn)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer s.Close()
	for _, c := range []struct{ setting, want string }{
		{"application_name", "my app"},
		{"default_transaction_isolation", "repeatable read"},
		{"search_path", "a+b"},
	} {
		var got string
		if err := s.Pool().QueryRow(ctx, "SELECT current_setting($1)", c.setting).Scan(&got); err != nil {
			t.Fatal(err)
		}
		if got != c.want {
			t.Errorf("%s = %q, want %q", c.setting, got, c.want)
		}
	}
	// The store works under that default.
	if err := s.Write(ctx, []evento.Event{ev("A", "a", 1), ev("A", "a", 2)}); err != nil {
		t.Fatal(err)
	}
	if v, err := s.AggregateVersion(ctx, "A", "a"); err != nil || v != 2 {
		t.Fatalf("AggregateVersion = %d, %v", v, err)
	}

	// A '+' is a '+', and evento's own options are decoded the same way.
	plus := strings.Replace(postgrestest.DSN(t), "schema=", "application_name=a+b&schema=", 1)
	s2, err := postgres.Open(ctx, plus)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer s2.Close()
	var got string
	if err := s2.Pool().QueryRow(ctx, "SHOW application_name").Scan(&got); err != nil || got != "a+b" {
		t.Fatalf("application_name = %q, %v; want a+b", got, err)
	}

	// A bad escape is an invalid DSN, and its text is not quoted (it may
	// be a password).
	_, err = postgres.Open(ctx, postgrestest.DSN(t)+"&password=se%zzcret")
	if !errors.Is(err, executor.ErrInvalidDSN) || strings.Contains(err.Error(), "zzcret") {
		t.Fatalf("Open with a bad escape = %v", err)
	}
}
