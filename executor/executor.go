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
// # Options
//
// Options follow '?' (pebble:/data/ev?durability=normal&max_page_size=500).
// One name means one thing on every backend; a backend that lacks an option
// rejects it. An unknown, malformed, duplicated or inapplicable option is an
// error wrapping ErrInvalidDSN that names it, on every backend.
//
//	option             Pebble  SQLite  PostgreSQL  meaning
//	durability         yes     yes     yes         full (default) | normal | off; see below
//	lock_timeout       -       yes     yes         wait for a lock: 5s, 250ms or ms (SQLite busy_timeout,
//	                                               default 5s; PostgreSQL lock_timeout, default the server's)
//	max_page_size      yes     yes     yes         largest page a Read may ask for (default 1000)
//	default_page_size  yes     yes     yes         page of a Read that sets neither First nor Last (default 20)
//	migrate            yes     yes     yes         true (default) | false: open without DDL, ErrNotMigrated
//	                                               unless the store is at this code's version
//	read_only          yes     yes     yes         true: open read-only and create nothing (no directory,
//	                                               file or schema: ErrNoStore); writes fail with ErrReadOnly;
//	                                               a Pebble store another process holds gives ErrLocked
//	schema             -       -       yes         [a-z_][a-z0-9_]*, at most 63 bytes (default evento)
//	ordering           -       -       yes         xid | lock, for a new schema
//	listen             -       -       yes         false: Notify polls instead of LISTEN
//	poll_interval      -       -       yes         Notify's fallback polling interval (default 250ms)
//
// durability maps to each backend's own setting: on Pebble full syncs each
// commit and normal and off do not (a machine crash may lose the latest
// commits); on SQLite it is PRAGMA synchronous FULL, NORMAL or OFF; on
// PostgreSQL synchronous_commit on, off, off (without the option the
// server's setting applies). PostgreSQL also passes libpq and pool_*
// options through. Deprecated spellings still accepted: Pebble sync=false
// (durability=normal) and max_page; SQLite synchronous (also extra),
// busy_timeout (milliseconds). Giving an old and a new spelling together is
// an error. Loggers are Go options, WithLogger(*slog.Logger) on every
// backend, default slog.Default() (Pebble's own log lines included: info
// at Debug, errors at Error).
//
// Migrations are a separate step when wanted: Migrate(ctx, dsn), or the
// CLI's `evento migrate`, creates or migrates a store; a program opening it
// with migrate=false then runs no DDL (a PostgreSQL schema already current
// is opened without DDL either way). A store newer than the code fails with
// evento.ErrSchemaTooNew with or without the option.
//
// Errors never print a DSN's password: see Redact.
//
// A program that already holds a database handle passes it to the backend
// package's constructor instead (pebble.New, sqlite.New, postgres.New).
//
// # Writing a backend
//
// A backend implements evento.Executor (and, optionally, evento.Importer
// and evento.TxAcknowledger), builds on package executor/storekit — batch
// validation and the routing-key rule, the event cursor and metadata
// codecs, NewPage, the ULID source, the subscriber store's argument checks —
// registers a Driver for its scheme with Register, and runs the conformance
// suite, executor/executortest, unchanged.
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

// Scheme returns the scheme of dsn: the part before the first colon,
// lower-cased. A DSN whose prefix is not a URL scheme (letters, then
// letters, digits, '+', '-' or '.') has none: a libpq key=value string
// ("host=… user=…") or a bare path gives an error wrapping ErrInvalidDSN
// that shows the DSN redacted.
func Scheme(dsn string) (string, error) {
	i := strings.IndexByte(dsn, ':')
	if i <= 0 || !validScheme(dsn[:i]) {
		hint := "want e.g. pebble:<path>, sqlite:<path>, postgres://…"
		if looksLikeKeyValue(dsn) {
			hint = "key=value connection strings are not DSNs here: write it as postgres://user:password@host:port/db?option=value"
		}
		return "", fmt.Errorf("executor: DSN %q has no scheme (%s): %w", Redact(dsn), hint, ErrInvalidDSN)
	}
	return strings.ToLower(dsn[:i]), nil
}

func validScheme(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z':
		case i > 0 && ('0' <= c && c <= '9' || c == '+' || c == '-' || c == '.'):
		default:
			return false
		}
	}
	return s != ""
}

// looksLikeKeyValue reports whether dsn starts like a libpq key=value
// connection string: a word followed by '='.
func looksLikeKeyValue(dsn string) bool {
	s := strings.TrimLeft(dsn, " \t\n")
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '=':
			return i > 0
		case c == '_' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9':
		default:
			return false
		}
	}
	return false
}

// Open opens the executor named by dsn with the driver registered for its
// scheme. An unknown scheme gives an error wrapping ErrUnknownScheme that
// names the scheme and hints at the missing import. On error the returned
// Executor is nil.
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
	x, err := d.Open(ctx, dsn)
	if err != nil {
		// A driver returning a typed nil pointer with its error would
		// otherwise hand the caller a non-nil interface that panics on
		// Close.
		return nil, err
	}
	return x, nil
}

// Redact returns dsn with every secret replaced by "xxxxx", for error
// messages and logs. Secrets are the URL userinfo password
// (postgres://u:p@h), and the value of every option whose name is secret
// (password, sslpassword, or any name containing "password", "secret" or
// "token"), in the URL query and in libpq key=value strings, quoted values
// included. Each secret is replaced where it stands and nowhere else: the
// rest of the DSN is returned byte for byte, so a password that happens to
// equal another part of the DSN does not garble it.
func Redact(dsn string) string {
	var spans [][2]int // byte ranges to replace, in order
	if i := strings.Index(dsn, "://"); i >= 0 && validScheme(dsn[:i]) {
		spans = urlSecrets(dsn, i+3)
	} else if looksLikeKeyValue(dsn) {
		spans = keyValueSecrets(dsn)
	} else if q := strings.IndexByte(dsn, '?'); q >= 0 {
		// pebble:/path?opt=…, sqlite:/path?…: options only.
		spans = querySecrets(dsn, q+1, len(dsn))
	}
	if len(spans) == 0 {
		return dsn
	}
	var b strings.Builder
	last := 0
	for _, sp := range spans {
		b.WriteString(dsn[last:sp[0]])
		b.WriteString("xxxxx")
		last = sp[1]
	}
	b.WriteString(dsn[last:])
	return b.String()
}

// secretKey reports whether an option name names a secret.
func secretKey(k string) bool {
	k = strings.ToLower(k)
	return strings.Contains(k, "password") || strings.Contains(k, "secret") || strings.Contains(k, "token")
}

// urlSecrets finds the userinfo password and the secret query values of a
// URL DSN whose authority starts at start.
func urlSecrets(dsn string, start int) [][2]int {
	var spans [][2]int
	end := len(dsn)
	if i := strings.IndexAny(dsn[start:], "/?#"); i >= 0 {
		end = start + i
	}
	// The userinfo ends at the last '@' of the authority (a password may
	// hold an unescaped '@' that url.Parse refuses).
	if at := strings.LastIndexByte(dsn[start:end], '@'); at >= 0 {
		if c := strings.IndexByte(dsn[start:start+at], ':'); c >= 0 && c+1 < at {
			spans = append(spans, [2]int{start + c + 1, start + at})
		}
	}
	// A password with an unescaped '/', '?' or '#' ends the authority early:
	// when the authority has no '@', take the last '@' of the rest (this may
	// redact too much of a malformed DSN, never too little).
	if len(spans) == 0 && !strings.Contains(dsn[start:end], "@") {
		rest := dsn[start:]
		if at := strings.LastIndexByte(rest, '@'); at >= 0 {
			if c := strings.IndexByte(rest[:at], ':'); c >= 0 && c+1 < at {
				spans = append(spans, [2]int{start + c + 1, start + at})
				end = start + at
			}
		}
	}
	if q := strings.IndexByte(dsn[end:], '?'); q >= 0 {
		qEnd := len(dsn)
		if h := strings.IndexByte(dsn[end+q:], '#'); h >= 0 {
			qEnd = end + q + h
		}
		spans = append(spans, querySecrets(dsn, end+q+1, qEnd)...)
	}
	return spans
}

// querySecrets finds the secret values of a URL query dsn[start:end].
func querySecrets(dsn string, start, end int) [][2]int {
	var spans [][2]int
	for i := start; i < end; {
		j := strings.IndexByte(dsn[i:end], '&')
		if j < 0 {
			j = end - i
		}
		kv := dsn[i : i+j]
		if eq := strings.IndexByte(kv, '='); eq >= 0 {
			k, err := url.QueryUnescape(kv[:eq])
			if err != nil {
				k = kv[:eq]
			}
			if secretKey(k) && eq+1 < len(kv) {
				spans = append(spans, [2]int{i + eq + 1, i + j})
			}
		}
		i += j + 1
	}
	return spans
}

// keyValueSecrets finds the secret values of a libpq key=value string:
// pairs separated by whitespace, "key = value" with optional spaces around
// '=', values either bare (up to whitespace, backslash escapes) or single-
// quoted (backslash escapes, up to the closing quote).
func keyValueSecrets(dsn string) [][2]int {
	var spans [][2]int
	isSpace := func(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v' }
	i, n := 0, len(dsn)
	for i < n {
		for i < n && isSpace(dsn[i]) {
			i++
		}
		ks := i
		for i < n && dsn[i] != '=' && !isSpace(dsn[i]) {
			i++
		}
		key := dsn[ks:i]
		for i < n && isSpace(dsn[i]) {
			i++
		}
		if i >= n || dsn[i] != '=' {
			// Not key=value: treat the rest conservatively as secret
			// if a secret key was named, else skip the word.
			if secretKey(key) {
				spans = append(spans, [2]int{ks, n})
				return spans
			}
			continue
		}
		i++ // '='
		for i < n && isSpace(dsn[i]) {
			i++
		}
		vs := i
		if i < n && dsn[i] == '\'' {
			i++
			for i < n && dsn[i] != '\'' {
				if dsn[i] == '\\' && i+1 < n {
					i++
				}
				i++
			}
			if i < n {
				i++ // closing quote
			}
		} else {
			for i < n && !isSpace(dsn[i]) {
				if dsn[i] == '\\' && i+1 < n {
					i++
				}
				i++
			}
		}
		if secretKey(key) && i > vs {
			spans = append(spans, [2]int{vs, i})
		}
	}
	return spans
}
