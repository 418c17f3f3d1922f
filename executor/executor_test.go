package executor_test

import (
	"context"
	"errors"
	"fmt"
	"net/url"
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
	cases := []struct{ dsn, want string }{
		{"postgres://u:secret@h:5432/db?sslmode=disable", "postgres://u:xxxxx@h:5432/db?sslmode=disable"},
		{"postgres://u@h/db?password=secret", "postgres://u@h/db?password=xxxxx"},
		{"postgres://u:se%40cret@h/db", "postgres://u:xxxxx@h/db"},
		{"postgres://u:se@cret@h/db", "postgres://u:xxxxx@h/db"},
		{"postgres://u:a/b?c@h/db?x=1", "postgres://u:xxxxx@h/db?x=1"},
		{"postgres://u:p@h/db?sslpassword=kp&application_name=my%20app", "postgres://u:xxxxx@h/db?sslpassword=xxxxx&application_name=my%20app"},
		// The password equals other parts of the DSN: only its own place changes.
		{"postgres://evento:1@127.0.0.1:5432/db", "postgres://evento:xxxxx@127.0.0.1:5432/db"},
		{"postgres://u:28P01@h/d?options=28P01", "postgres://u:xxxxx@h/d?options=28P01"},
		{"host=h user=u password=secret dbname=d", "host=h user=u password=xxxxx dbname=d"},
		{"host=h password='a b' dbname=d", "host=h password=xxxxx dbname=d"},
		{"host=h password = 'it\\'s x' sslpassword=k2 options=-csearch_path=a:b", "host=h password = xxxxx sslpassword=xxxxx options=-csearch_path=a:b"},
		{"pebble:/var/lib/x", "pebble:/var/lib/x"},
		{"sqlite:/tmp/a.db?busy_timeout=5s", "sqlite:/tmp/a.db?busy_timeout=5s"},
	}
	for _, c := range cases {
		if got := executor.Redact(c.dsn); got != c.want {
			t.Errorf("Redact(%q)\n got %q\nwant %q", c.dsn, got, c.want)
		}
	}
}

// TestSchemeKeyValue: a libpq key=value string is not read as a scheme (its
// text up to a colon used to be reported as one, password included).
func TestSchemeKeyValue(t *testing.T) {
	dsn := "host=127.0.0.1 user=evento password=s3cr3t options=-csearch_path=a:b"
	_, err := executor.Open(context.Background(), dsn)
	if !errors.Is(err, executor.ErrInvalidDSN) {
		t.Fatalf("Open(key=value) = %v, want ErrInvalidDSN", err)
	}
	if strings.Contains(err.Error(), "s3cr3t") || !strings.Contains(err.Error(), "postgres://") {
		t.Fatalf("error leaks the password or gives no hint: %v", err)
	}
}

// TestOpenErrorNilExecutor: a failed Open returns a nil interface, never a
// typed nil pointer that panics on Close.
func TestOpenErrorNilExecutor(t *testing.T) {
	runs++
	scheme := fmt.Sprintf("nilptrtest%d", runs)
	type fake struct{ evento.Executor }
	executor.Register(scheme, executor.DriverFunc(func(context.Context, string) (evento.Executor, error) {
		var p *fake
		return p, errors.New("cannot open")
	}))
	x, err := executor.Open(context.Background(), scheme+":x")
	if err == nil || x != nil {
		t.Fatalf("Open = %#v, %v; want a nil Executor and the error", x, err)
	}
}

// FuzzRedact: whatever the secrets and the DSN's form, Redact replaces each
// secret exactly where it stands and changes nothing else.
func FuzzRedact(f *testing.F) {
	f.Add("u", "secret", "app", 0)
	f.Add("evento", "1", "x y", 1)
	f.Add("a", "p w'q\\", "", 2)
	f.Add("a", "@:/?#&=", "", 3)
	f.Add("127.0.0.1", "127.0.0.1", "127.0.0.1", 0)
	f.Fuzz(func(t *testing.T, user, pw, app string, form int) {
		if pw == "" {
			return
		}
		// build returns the DSN with the secret encoded by enc, or, for
		// the expected output, with "xxxxx" in its place.
		build := func(redacted bool) string {
			secret := func(enc func(string) string) string {
				if redacted {
					return "xxxxx"
				}
				return enc(pw)
			}
			switch uint(form) % 4 {
			case 0:
				return "postgres://" + url.User(user).String() + ":" + secret(func(p string) string { return url.UserPassword("", p).String()[1:] }) +
					"@h/db?application_name=" + url.QueryEscape(app)
			case 1:
				return "postgres://" + url.User(user).String() + "@h/db?password=" + secret(url.QueryEscape) +
					"&application_name=" + url.QueryEscape(app) + "&sslpassword=" + secret(url.QueryEscape)
			case 2:
				q := func(p string) string {
					return "'" + strings.NewReplacer("\\", "\\\\", "'", "\\'").Replace(p) + "'"
				}
				return "host=h user=" + q(user) + " password=" + secret(q) + " application_name=" + q(app) + " sslpassword=" + secret(q) + " dbname=d"
			default:
				return "sqlite:/tmp/x.db?password=" + secret(url.QueryEscape) + "&app=" + url.QueryEscape(app)
			}
		}
		dsn, want := build(false), build(true)
		if got := executor.Redact(dsn); got != want {
			t.Fatalf("Redact(%q)\n got %q\nwant %q", dsn, got, want)
		}
	})
}

// TestPageSizes pins the page-size rule the backends share.
func TestPageSizes(t *testing.T) {
	for _, c := range []struct {
		def, max int
		set      bool
		want     int
		ok       bool
	}{
		{20, 1000, false, 20, true},
		{20, 10, false, 10, true}, // an unset default shrinks to a smaller maximum
		{20, 10, true, 0, false},  // a given one above it is an error
		{5, 10, true, 5, true},
		{0, 10, true, 0, false},
		{20, 0, false, 0, false},
	} {
		got, err := executor.PageSizes(c.def, c.max, c.set)
		if (err == nil) != c.ok || got != c.want || (err != nil && !errors.Is(err, executor.ErrInvalidDSN)) {
			t.Errorf("PageSizes(%d, %d, %v) = %d, %v; want %d, ok=%v (errors wrap ErrInvalidDSN)", c.def, c.max, c.set, got, err, c.want, c.ok)
		}
	}
}
