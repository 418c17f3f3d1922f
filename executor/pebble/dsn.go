package pebble

import (
	"context"
	"fmt"
	"net/url"
	"strconv"
	"strings"

	"github.com/evento-go/evento"
	"github.com/evento-go/evento/executor"
)

func init() {
	executor.Register("pebble", executor.DriverFunc(openDSN))
}

// memoryPath is the DSN path of the in-memory form: pebble::memory:.
const memoryPath = ":memory:"

// ParseDSN parses a pebble DSN into a path (":memory:" for the in-memory
// form) and options.
//
//	pebble:<path>                 a directory, relative or absolute
//	pebble::memory:               in memory, for tests
//	pebble:/data/ev?sync=false    options after '?'
//
// Options: sync=true|false (default true), max_page=<n>. An unknown or bad
// option gives an error wrapping executor.ErrInvalidDSN that names it.
func ParseDSN(dsn string) (path string, opts []Option, err error) {
	i := strings.IndexByte(dsn, ':')
	if i < 0 || !strings.EqualFold(dsn[:i], "pebble") {
		return "", nil, fmt.Errorf("pebble executor: DSN %q is not a pebble: DSN: %w", executor.Redact(dsn), executor.ErrInvalidDSN)
	}
	rest := dsn[i+1:]
	if strings.HasPrefix(rest, "//") {
		// Accept pebble:///abs/path and pebble://rel as well.
		rest = rest[2:]
	}
	path, query, _ := strings.Cut(rest, "?")
	if path == "" {
		return "", nil, fmt.Errorf("pebble executor: DSN %q has no path (want pebble:<dir> or pebble::memory:): %w", executor.Redact(dsn), executor.ErrInvalidDSN)
	}
	vals, err := url.ParseQuery(query)
	if err != nil {
		return "", nil, fmt.Errorf("pebble executor: DSN %q options: %v: %w", executor.Redact(dsn), err, executor.ErrInvalidDSN)
	}
	for k, vs := range vals {
		v := vs[len(vs)-1]
		switch k {
		case "sync":
			b, err := strconv.ParseBool(v)
			if err != nil {
				return "", nil, fmt.Errorf("pebble executor: DSN %q: option sync=%q is not a boolean: %w", executor.Redact(dsn), v, executor.ErrInvalidDSN)
			}
			opts = append(opts, WithSync(b))
		case "max_page":
			n, err := strconv.Atoi(v)
			if err != nil || n <= 0 {
				return "", nil, fmt.Errorf("pebble executor: DSN %q: option max_page=%q is not a positive integer: %w", executor.Redact(dsn), v, executor.ErrInvalidDSN)
			}
			opts = append(opts, WithMaxPageSize(n))
		default:
			return "", nil, fmt.Errorf("pebble executor: DSN %q: unknown option %q (known: sync, max_page): %w", executor.Redact(dsn), k, executor.ErrInvalidDSN)
		}
	}
	return path, opts, nil
}

func openDSN(ctx context.Context, dsn string) (evento.Executor, error) {
	path, opts, err := ParseDSN(dsn)
	if err != nil {
		return nil, err
	}
	if path == memoryPath {
		return OpenMemory(ctx, opts...)
	}
	return Open(ctx, path, opts...)
}
