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
//	pebble:<path>                        a directory, relative or absolute
//	pebble::memory:                      in memory, for tests
//	pebble:/data/ev?durability=normal    options after '?'
//
// Options (the table in package executor lists them for every backend):
//
//	durability=full|normal|off   full (default) syncs every commit; normal and
//	                             off do not (a machine crash may lose the
//	                             latest commits; a process crash loses none)
//	max_page_size=<n>            largest page a Read may ask for
//	default_page_size=<n>        page size of a Read that sets no First/Last
//	migrate=true|false           false: open only an existing store already
//	                             at this code's format; error wrapping
//	                             executor.ErrNotMigrated otherwise
//	read_only=true|false         true: open read-only, create nothing
//	                             (executor.ErrNoStore if missing); writes
//	                             fail with executor.ErrReadOnly
//
// sync=true|false and max_page=<n> are deprecated spellings of
// durability=full|normal and max_page_size. An unknown, malformed, duplicated
// or inapplicable option (lock_timeout) gives an error
// wrapping executor.ErrInvalidDSN that names it.
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
	bad := func(format string, a ...any) error {
		return fmt.Errorf("pebble executor: DSN %q: %s: %w", executor.Redact(dsn), fmt.Sprintf(format, a...), executor.ErrInvalidDSN)
	}
	seen := map[string]string{} // canonical name -> spelling used
	for k, vs := range vals {
		v := vs[len(vs)-1]
		canon := k
		switch k {
		case "sync":
			canon = "durability"
		case "max_page":
			canon = "max_page_size"
		}
		if prev, dup := seen[canon]; dup {
			return "", nil, bad("options %s and %s set the same thing", prev, k)
		}
		seen[canon] = k
		switch k {
		case "durability":
			d, err := executor.ParseDurability(v)
			if err != nil {
				return "", nil, bad("option durability=%q: %v", v, err)
			}
			opts = append(opts, WithDurability(d))
		case "sync": // deprecated: durability
			b, err := strconv.ParseBool(v)
			if err != nil {
				return "", nil, bad("option sync=%q is not a boolean (sync is deprecated: use durability=full|normal|off)", v)
			}
			opts = append(opts, WithSync(b))
		case "max_page_size", "max_page": // max_page is deprecated
			n, err := strconv.Atoi(v)
			if err != nil || n <= 0 {
				return "", nil, bad("option %s=%q is not a positive integer", k, v)
			}
			opts = append(opts, WithMaxPageSize(n))
		case "migrate":
			b, err := strconv.ParseBool(v)
			if err != nil {
				return "", nil, bad("option migrate=%q is not a boolean", v)
			}
			opts = append(opts, WithMigrate(b))
		case "read_only":
			b, err := strconv.ParseBool(v)
			if err != nil {
				return "", nil, bad("option read_only=%q is not a boolean", v)
			}
			opts = append(opts, WithReadOnly(b))
		case "default_page_size":
			n, err := strconv.Atoi(v)
			if err != nil || n <= 0 {
				return "", nil, bad("option %s=%q is not a positive integer", k, v)
			}
			opts = append(opts, WithDefaultPageSize(n))
		case "lock_timeout", "busy_timeout", "schema", "ordering":
			return "", nil, bad("option %q does not apply to the pebble backend (pebble options: durability, max_page_size, default_page_size, migrate, read_only)", k)
		default:
			return "", nil, bad("unknown option %q (pebble options: durability, max_page_size, default_page_size, migrate, read_only)", k)
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
	s, err := Open(ctx, path, opts...)
	if err != nil {
		return nil, err
	}
	if s.cfg.readOnly {
		return executor.ReadOnly(s), nil
	}
	return s, nil
}
