package postgres_test

import (
	"context"
	"strings"
	"testing"

	"github.com/evento-go/evento/executor/postgres"
)

// TestOpenErrorsKeepSecrets: Open's errors show the DSN redacted, keep the
// rest of the text intact, and never show a password, whatever the form.
func TestOpenErrorsKeepSecrets(t *testing.T) {
	cases := []struct{ dsn, secret, keep string }{
		// An unreachable server with a password equal to parts of the
		// address: the address stays readable.
		{"postgres://evento:1@127.0.0.1:1/db?sslmode=disable&connect_timeout=2", "", "127.0.0.1"},
		// pgx's parse error quotes the URL; url.Parse's error inside it too.
		{"postgres://u:s3cr%zzet@h/db", "s3cr", "not a postgres:// URL"},
		{"postgres://u:p@h/db?sslpassword=kp-s3cret&sslmode=bogus", "kp-s3cret", "sslmode"},
	}
	for _, c := range cases {
		_, err := postgres.Open(context.Background(), c.dsn)
		if err == nil {
			t.Errorf("Open(%q) succeeded, want an error", c.dsn)
			continue
		}
		msg := err.Error()
		if c.secret != "" && strings.Contains(msg, c.secret) {
			t.Errorf("Open(%q) error leaks %q: %s", c.dsn, c.secret, msg)
		}
		if strings.Contains(msg, "xxxxx27") || !strings.Contains(msg, c.keep) {
			t.Errorf("Open(%q) error is garbled or lost %q: %s", c.dsn, c.keep, msg)
		}
	}
}
