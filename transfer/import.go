package transfer

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/evento-go/evento"
)

// ImportOptions configures Import. The zero value imports into an empty
// store only.
type ImportOptions struct {
	// Append allows a store that already holds events. Every event must
	// still continue its aggregate's version (an aggregate the store
	// already has from version 1 gives a *evento.VersionConflictError).
	Append bool
	// Resume continues an interrupted import of the same export: the
	// lines up to and including the store's last event (found by its ID)
	// are skipped, and the rest imported. On an empty store it imports
	// everything. It implies Append.
	Resume bool
	// BatchSize is the number of events per evento.Importer call (default
	// 500). A batch also ends before it would exceed BatchBytes of
	// payload.
	BatchSize int
	// BatchBytes bounds a batch's payload bytes (default 4 MiB; a single
	// larger event is a batch of its own).
	BatchBytes int
	// MaxLineSize is the longest line accepted (default 64 MiB).
	MaxLineSize int
	// Progress, if set, is called after each committed batch.
	Progress func(Progress)
}

// ImportResult says what an Import did.
type ImportResult struct {
	// Header is the export's header line.
	Header Header
	// Events is the number of events imported; Skipped the number of
	// event lines Resume skipped.
	Events  int64
	Skipped int64
	// Bytes is the number of input bytes read.
	Bytes int64
}

// Import reads an export (see the package doc) from r and writes its
// events into dst, which must implement evento.Importer, in batches: each
// batch lands whole or not at all, and events keep their IDs and
// timestamps. It holds one batch in memory.
//
// It refuses a store that already holds events with ErrNotEmpty unless
// opts.Append or opts.Resume is set. A malformed line gives a
// *FormatError; input that ends without the trailer gives ErrTruncated; a
// trailer whose count differs from the lines read gives a *FormatError.
// On any error, the batches committed before it stay committed: the
// result counts them, and an Import with Resume continues after them.
func Import(ctx context.Context, dst evento.Executor, r io.Reader, opts ImportOptions) (ImportResult, error) {
	var res ImportResult
	imp, ok := dst.(evento.Importer)
	if !ok {
		return res, fmt.Errorf("%w: %T", ErrNotImporter, dst)
	}
	batchSize, batchBytes, maxLine := opts.BatchSize, opts.BatchBytes, opts.MaxLineSize
	if batchSize <= 0 {
		batchSize = 500
	}
	if batchBytes <= 0 {
		batchBytes = 4 << 20
	}
	if maxLine <= 0 {
		maxLine = 64 << 20
	}

	cr := &countReader{r: r}
	sc := bufio.NewScanner(cr)
	sc.Buffer(make([]byte, 0, min(64<<10, maxLine)), maxLine)
	var lineNo int64
	next := func() ([]byte, error) {
		if !sc.Scan() {
			if err := sc.Err(); err != nil {
				if errors.Is(err, bufio.ErrTooLong) {
					return nil, &FormatError{Line: lineNo + 1, Reason: fmt.Sprintf("line longer than %d bytes (ImportOptions.MaxLineSize)", maxLine)}
				}
				return nil, fmt.Errorf("transfer: import: read line %d: %w", lineNo+1, err)
			}
			return nil, io.EOF
		}
		lineNo++
		return sc.Bytes(), nil
	}

	// Header.
	b, err := next()
	if err == io.EOF {
		return res, &FormatError{Line: 1, Reason: "empty input: no header line"}
	}
	if err != nil {
		return res, err
	}
	if err := json.Unmarshal(b, &res.Header); err != nil {
		return res, &FormatError{Line: 1, Reason: "header: " + err.Error()}
	}
	if res.Header.Format != Format {
		return res, &FormatError{Line: 1, Reason: fmt.Sprintf("format %q, want %q", res.Header.Format, Format)}
	}
	if res.Header.Version < 1 || res.Header.Version > FormatVersion {
		return res, &FormatError{Line: 1, Reason: fmt.Sprintf("format version %d; this code reads 1 to %d", res.Header.Version, FormatVersion)}
	}

	// The destination's state.
	head, err := dst.Head(ctx)
	if err != nil {
		return res, fmt.Errorf("transfer: import: read the destination's head: %w", err)
	}
	var skipTo string // the ID Resume skips up to
	if !head.IsZero() {
		switch {
		case opts.Resume:
			page, err := dst.Read(ctx, evento.All().Last(1, ""))
			if err != nil {
				return res, fmt.Errorf("transfer: import: read the destination's last event: %w", err)
			}
			if len(page.Events) == 1 {
				skipTo = page.Events[0].ID.String()
			}
		case !opts.Append:
			return res, fmt.Errorf("%w (head at %s): import into an empty store, or set Append", ErrNotEmpty, head)
		}
	}

	batch := make([]evento.Event, 0, batchSize)
	typeOf := make(map[string]string, batchSize) // aggregate id -> type in the batch
	var pending int
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		if err := imp.Import(ctx, batch); err != nil {
			return fmt.Errorf("transfer: import: batch of %d events from %s/%s v%d (after %d imported): %w",
				len(batch), batch[0].AggregateType, batch[0].AggregateID, batch[0].Version, res.Events, err)
		}
		res.Events += int64(len(batch))
		clear(batch)
		batch, pending = batch[:0], 0
		clear(typeOf)
		if opts.Progress != nil {
			opts.Progress(Progress{Events: res.Events + res.Skipped, Bytes: res.Bytes})
		}
		return nil
	}
	var lines int64
	var rec record
	for {
		b, err := next()
		res.Bytes = cr.n
		if err == io.EOF {
			if ferr := flush(); ferr != nil {
				return res, ferr
			}
			return res, fmt.Errorf("%w: after line %d", ErrTruncated, lineNo)
		}
		if err != nil {
			return res, errors.Join(err, flush())
		}
		if err := ctx.Err(); err != nil {
			return res, fmt.Errorf("transfer: import: %w", err)
		}
		if err := decodeRecord(b, &rec); err != nil {
			return res, errors.Join(&FormatError{Line: lineNo, Reason: err.Error()}, flush())
		}
		if rec.End {
			if rec.Events != lines {
				return res, errors.Join(&FormatError{Line: lineNo, Reason: fmt.Sprintf("trailer counts %d events, the export has %d", rec.Events, lines)}, flush())
			}
			if err := flush(); err != nil {
				return res, err
			}
			if skipTo != "" {
				return res, fmt.Errorf("%w (event %s)", ErrResume, skipTo)
			}
			if b, err := next(); err != io.EOF {
				if err != nil {
					return res, err
				}
				_ = b
				return res, &FormatError{Line: lineNo, Reason: "a line after the trailer"}
			}
			return res, nil
		}
		lines++
		if skipTo != "" {
			res.Skipped++
			if rec.ID == skipTo {
				skipTo = ""
			}
			continue
		}
		e, err := rec.Line.Event()
		if err != nil {
			return res, errors.Join(&FormatError{Line: lineNo, Reason: err.Error()}, flush())
		}
		if t, ok := typeOf[e.AggregateID]; (ok && t != e.AggregateType) || (len(batch) > 0 && pending+len(e.Data) > batchBytes) {
			// One batch may not hold an aggregate id under two types.
			if err := flush(); err != nil {
				return res, err
			}
		}
		batch = append(batch, e)
		typeOf[e.AggregateID] = e.AggregateType
		pending += len(e.Data)
		if len(batch) >= batchSize {
			if err := flush(); err != nil {
				return res, err
			}
		}
	}
}

// countReader counts the bytes read through it.
type countReader struct {
	r io.Reader
	n int64
}

func (c *countReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}
