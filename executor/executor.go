// Package executor opens evento storage backends by DSN through a scheme
// registry, in the style of database/sql.
//
// Backends register themselves in an init function, so a program imports the
// ones it may use for their side effect:
//
//	import (
//		"github.com/evento-go/evento/executor"
//		_ "github.com/evento-go/evento/executor/pebble"
//		_ "github.com/evento-go/evento/executor/postgres"
//	)
//
//	exec, err := executor.Open(ctx, os.Getenv("EVENTO_DSN"))
//
// # DSNs
//
//	pebble:<path>            embedded Pebble directory (the default backend)
//	pebble::memory:          in-memory Pebble, for tests
//	sqlite:<path>            one SQLite file
//	sqlite::memory:          in-memory SQLite, for tests
//	postgres://user:pass@host:5432/db?schema=evento
//	postgresql://…           the same
//
// Errors never print a DSN's password: see Redact.
//
// A program that already holds a database handle passes it to the backend
// package's constructor instead (pebble.New, sqlite.New, postgres.New).
package executor

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"sort"
	"strings"
	"sync"

	"github.com/evento-go/evento"
)

// Driver opens executors for one or more DSN schemes.
type Driver interface {
	// Open opens the executor that dsn names. dsn is the whole DSN,
	// scheme included.
	Open(ctx context.Context, dsn string) (evento.Executor, error)
}

// DriverFunc adapts a function to Driver.
type DriverFunc func(ctx context.Context, dsn string) (evento.Executor, error)

// Open calls f.
func (f DriverFunc) Open(ctx context.Context, dsn string) (evento.Executor, error) {
	return f(ctx, dsn)
}

// ErrUnknownScheme means no driver is registered for a DSN's scheme.
var ErrUnknownScheme = errors.New("executor: unknown scheme")

// ErrInvalidDSN means a DSN is malformed or has a bad option.
var ErrInvalidDSN = errors.New("executor: invalid DSN")

var (
	mu      sync.RWMutex
	drivers = map[string]Driver{}
)

// Register makes a driver available under a scheme (without the colon). It
// panics if d is nil or the scheme is already registered: both are
// programming errors.
func Register(scheme string, d Driver) {
	mu.Lock()
	defer mu.Unlock()
	if d == nil {
		panic("executor: Register driver is nil")
	}
	if scheme == "" || strings.ContainsAny(scheme, ":/") {
		panic(fmt.Sprintf("executor: Register scheme %q is not a bare scheme name", scheme))
	}
	if _, dup := drivers[scheme]; dup {
		panic(fmt.Sprintf("executor: Register called twice for scheme %q", scheme))
	}
	drivers[scheme] = d
}

// Schemes returns the registered schemes, sorted.
func Schemes() []string {
	mu.RLock()
	defer mu.RUnlock()
	out := make([]string, 0, len(drivers))
	for s := range drivers {
		out = append(out, s)
	}
	sort.Strings(out)
	return out
}

// Scheme returns the scheme of dsn: the part before the first colon.
func Scheme(dsn string) (string, error) {
	i := strings.IndexByte(dsn, ':')
	if i <= 0 {
		return "", fmt.Errorf("executor: DSN %q has no scheme (want e.g. pebble:<path>, sqlite:<path>, postgres://…): %w", Redact(dsn), ErrInvalidDSN)
	}
	return strings.ToLower(dsn[:i]), nil
}

// Open opens the executor named by dsn with the driver registered for its
// scheme. An unknown scheme gives an error wrapping ErrUnknownScheme that
// names the scheme and hints at the missing import.
func Open(ctx context.Context, dsn string) (evento.Executor, error) {
	scheme, err := Scheme(dsn)
	if err != nil {
		return nil, err
	}
	mu.RLock()
	d, ok := drivers[scheme]
	mu.RUnlock()
	if !ok {
		return nil, fmt.Errorf("executor: unknown scheme %q in DSN %q (forgotten import of github.com/evento-go/evento/executor/%s? registered: %v): %w",
			scheme, Redact(dsn), scheme, Schemes(), ErrUnknownScheme)
	}
	return d.Open(ctx, dsn)
}

// Redact returns dsn with any password replaced by "xxxxx", for error
// messages and logs. It handles URL userinfo (postgres://u:p@h) and
// password=… key/value options.
func Redact(dsn string) string {
	if u, err := url.Parse(dsn); err == nil && u.User != nil {
		if _, has := u.User.Password(); has {
			u.User = url.UserPassword(u.User.Username(), "xxxxx")
		}
		q := u.Query()
		if q.Has("password") {
			q.Set("password", "xxxxx")
			u.RawQuery = q.Encode()
		}
		return u.String()
	} else if err == nil {
		q := u.Query()
		if q.Has("password") {
			q.Set("password", "xxxxx")
			u.RawQuery = q.Encode()
			return u.String()
		}
	}
	// Unparseable: scrub anything that looks like a password.
	out := dsn
	if i := strings.Index(out, "://"); i >= 0 {
		rest := out[i+3:]
		if at := strings.LastIndexByte(rest, '@'); at >= 0 {
			if c := strings.IndexByte(rest[:at], ':'); c >= 0 {
				out = out[:i+3] + rest[:c+1] + "xxxxx" + rest[at:]
			}
		}
	}
	lower := strings.ToLower(out)
	if i := strings.Index(lower, "password="); i >= 0 {
		j := i + len("password=")
		k := j
		for k < len(out) && out[k] != ' ' && out[k] != '&' {
			k++
		}
		out = out[:j] + "xxxxx" + out[k:]
	}
	return out
}
