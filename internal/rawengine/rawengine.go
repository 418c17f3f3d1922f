// Package rawengine holds minimal hand-written event stores, one per storage
// engine evento supports, for benchmarks to measure evento against.
//
// Each engine stores one row (SQL) or one record (Pebble) per event and
// enforces a unique (aggregate type, aggregate id, version), and nothing
// else: no secondary indexes, no routing keys beyond a column, no ordering
// promise beyond its own sequence, no fencing, no notifications. That is the
// least a program must write to append events with optimistic concurrency,
// load one aggregate and read the log in order, so evento's cost above it
// is what its design costs on the engine (DESIGN.md §5: "the raw engine
// doing the minimal equivalent work").
//
// The engines keep the engines' default durable settings: Pebble commits
// with Sync, SQLite runs WAL with synchronous=FULL, PostgreSQL commits with
// the server's synchronous_commit. What they give up compared with evento:
//
//   - Positions are assigned before commit (Pebble: an atomic counter; SQL:
//     the rowid or an identity column), so concurrent writers may commit
//     out of position order; a reader paging the log can see a gap fill in
//     behind it. evento promises commit order.
//   - Nothing but the whole log and one aggregate can be read: no query by
//     type, name or routing key.
//
// Every engine implements [Engine]:
//
//	e, err := rawengine.OpenPebble(dir, nil)
//	err = e.Append(ctx, events)                  // one durable commit
//	evs, err := e.Load(ctx, "bank/Account", "a1", nil)
//	n, err := rawengine.ScanAll(ctx, e, 1000, func(page []evento.Event) error { … })
//
// Append assigns ID, Timestamp and Position to the events it is given, like
// an evento Write. Load and Scan decode each event into an [evento.Event]
// (strings copied, metadata decoded), the same work an evento read does.
//
// The package is internal: it exists for the benchmarks of evento's
// executor, aggregator and subscription packages.
package rawengine

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/evento-go/evento"
)

// Engine is a minimal event store. Its methods are safe for concurrent use.
type Engine interface {
	// Append writes events in one durable commit. Each aggregate's events
	// must continue its version (Pebble checks contiguity; the SQL engines
	// rely on their unique (type, id, version) constraint); a clash gives an
	// error wrapping evento.ErrVersionConflict and writes nothing. Append
	// sets ID, Timestamp and Position of the given events.
	Append(ctx context.Context, events []evento.Event) error
	// Load appends the events of one aggregate, in version order, to dst
	// and returns the extended slice.
	Load(ctx context.Context, aggregateType, aggregateID string, dst []evento.Event) ([]evento.Event, error)
	// Scan appends up to limit events whose position follows after (a
	// Position.Seq from an earlier Scan, or 0 for the start), in position
	// order, to dst and returns the extended slice.
	Scan(ctx context.Context, after uint64, limit int, dst []evento.Event) ([]evento.Event, error)
	// Close releases the engine's resources.
	Close() error
}

// ScanAll reads the whole log in position order, page events at a time, and
// calls fn with each page (valid until fn returns). It returns the number of
// events read.
func ScanAll(ctx context.Context, e Engine, page int, fn func([]evento.Event) error) (int, error) {
	if page <= 0 {
		return 0, fmt.Errorf("rawengine: page size %d, want > 0", page)
	}
	var (
		buf   []evento.Event
		after uint64
		n     int
		err   error
	)
	for {
		buf, err = e.Scan(ctx, after, page, buf[:0])
		if err != nil {
			return n, err
		}
		n += len(buf)
		if len(buf) > 0 {
			after = buf[len(buf)-1].Position.Seq
			if fn != nil {
				if err := fn(buf); err != nil {
					return n, err
				}
			}
		}
		if len(buf) < page {
			return n, nil
		}
	}
}

// ErrClosed is returned by an engine's methods after Close.
var ErrClosed = errors.New("rawengine: closed")

// conflict is the error for a version that clashes with a stored one.
func conflict(typ, id string, version uint64) error {
	return fmt.Errorf("rawengine: %s/%s version %d: %w", typ, id, version, evento.ErrVersionConflict)
}

// now is the commit time, truncated to microseconds like evento's.
func now() time.Time { return time.Now().UTC().Truncate(time.Microsecond) }

// microTime is the UTC time of a count of microseconds since the epoch.
func microTime(us int64) time.Time { return time.UnixMicro(us).UTC() }
