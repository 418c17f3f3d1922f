package transfer

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"time"

	"github.com/evento-go/evento"
	"github.com/evento-go/evento/cursor"
)

// Progress is what a progress callback is told: events and bytes handled
// so far. Bytes counts the export's bytes written (Export) or read
// (Import).
type Progress struct {
	Events int64
	Bytes  int64
}

// ExportOptions configures Export. The zero value exports every event.
type ExportOptions struct {
	// Query selects the events (evento.All() when zero). Its pagination
	// arguments are ignored.
	Query evento.Query
	// After, if set, is a cursor of the source store: the export starts
	// with the event after it (to resume an interrupted export).
	After string
	// PageSize is the number of events read per page (default
	// cursor.MaxPageSize; lower it for a store opened with a smaller
	// max_page_size).
	PageSize int
	// Progress, if set, is called after each page is written.
	Progress func(Progress)
	// Now gives the header's createdAt (default time.Now).
	Now func() time.Time
}

// ExportResult says what an Export wrote.
type ExportResult struct {
	Events int64
	Bytes  int64
	// Cursor is the source cursor of the last event written ("" if none):
	// ExportOptions.After for a resumed export.
	Cursor string
}

// Export writes the events src holds that match opts.Query, in global
// order, to w in the export format (see the package doc), and returns what
// it wrote. It reads one page at a time and holds one page in memory. The
// export ends at the head of the log as the last page found it: events
// committed later are left for a resumed export.
//
// If writing fails or ctx is cancelled, Export returns the error with the
// result so far; Result.Cursor then names the last event whose line was
// handed to w (buffered lines may not have reached it).
func Export(ctx context.Context, src evento.EventStore, w io.Writer, opts ExportOptions) (ExportResult, error) {
	var res ExportResult
	pageSize := opts.PageSize
	if pageSize <= 0 {
		pageSize = cursor.MaxPageSize
	}
	now := time.Now
	if opts.Now != nil {
		now = opts.Now
	}
	cw := &countWriter{w: w}
	bw := bufio.NewWriterSize(cw, 256<<10)
	enc := json.NewEncoder(bw)
	enc.SetEscapeHTML(false)
	h := Header{Format: Format, Version: FormatVersion, CreatedAt: now().UTC().Truncate(time.Microsecond), After: opts.After}
	if c, ok := src.(interface{ Capabilities() evento.Capabilities }); ok {
		h.Backend = c.Capabilities().Name
	}
	if err := enc.Encode(&h); err != nil {
		return res, fmt.Errorf("transfer: export: write header: %w", err)
	}
	after := opts.After
	for {
		if err := ctx.Err(); err != nil {
			return res, fmt.Errorf("transfer: export: %w", err)
		}
		page, err := src.Read(ctx, opts.Query.First(pageSize, after))
		if err != nil {
			return res, fmt.Errorf("transfer: export: read after %q: %w", after, err)
		}
		for i := range page.Events {
			l := NewLine(&page.Events[i])
			if err := enc.Encode(&l); err != nil {
				return res, fmt.Errorf("transfer: export: write event %s: %w", l.ID, err)
			}
			res.Events++
			res.Cursor = l.Cursor
		}
		res.Bytes = cw.n + int64(bw.Buffered())
		if opts.Progress != nil {
			opts.Progress(Progress{Events: res.Events, Bytes: res.Bytes})
		}
		if !page.PageInfo.HasNextPage || len(page.Events) == 0 {
			break
		}
		after = page.PageInfo.EndCursor
	}
	if err := enc.Encode(&Trailer{End: true, Events: res.Events, Cursor: res.Cursor}); err != nil {
		return res, fmt.Errorf("transfer: export: write trailer: %w", err)
	}
	if err := bw.Flush(); err != nil {
		return res, fmt.Errorf("transfer: export: %w", err)
	}
	res.Bytes = cw.n
	return res, nil
}

// countWriter counts the bytes written through it.
type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}
