package main

import (
	"fmt"
	"io"
	"os"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/evento-go/evento"
	"github.com/evento-go/evento/transfer"
)

func init() { register(newExportCmd) }

func newExportCmd(a *app) *cobra.Command {
	var (
		types    []string
		after    string
		pageSize int
		quiet    bool
	)
	cmd := &cobra.Command{
		Use:   "export [file]",
		Short: "Export events as JSON Lines (the portable format between backends)",
		Long: `export writes the store's events, in global order, to file (default: standard
output) in evento's JSON Lines export format: a header line, one line per
event (id, aggregateType, aggregateId, version, name, routingKey, timestamp,
metadata, cursor and the raw msgpack payload in base64), and a trailer line.
It streams in constant memory. "evento import" reads it into any backend.

--after resumes an interrupted export after a cursor of this store (the
cursor of the last complete line, or the one export printed); import the
second file with --append. A progress bar is drawn when standard error is a
terminal; otherwise only the one-line summary is printed (none with --quiet).`,
		Example: `  evento --dsn pebble:.evento/data export events.jsonl
  evento --dsn sqlite:app.db export --type bank/Account > accounts.jsonl
  evento export --after "$CURSOR" rest.jsonl`,
		Args: maxOneFile,
		RunE: func(cmd *cobra.Command, args []string) error {
			if pageSize < 0 {
				return usagef("--page-size must be positive, got %d", pageSize)
			}
			q := evento.All()
			for _, t := range types {
				q = q.Or(evento.Filter{AggregateType: t})
			}
			x, err := a.openRead(cmd.Context())
			if err != nil {
				return err
			}
			defer x.Close()
			var w io.Writer = a.stdout
			var f *os.File
			if len(args) == 1 && args[0] != "-" {
				if f, err = os.OpenFile(args[0], os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644); err != nil {
					return err
				}
				w = f
			}
			bar := a.progress(quiet, -1, "exporting", false)
			start := time.Now()
			res, err := transfer.Export(cmd.Context(), x, w, transfer.ExportOptions{Query: q, After: after, PageSize: pageSize,
				Progress: func(p transfer.Progress) { bar.set(p.Events) }})
			bar.finish()
			if f != nil {
				if err == nil {
					err = f.Sync()
				}
				if cerr := f.Close(); err == nil {
					err = cerr
				}
			}
			if err != nil {
				if res.Cursor != "" {
					return fmt.Errorf("%w\n  %d events written; resume with: evento export --after %s", err, res.Events, res.Cursor)
				}
				return err
			}
			if !quiet {
				fmt.Fprintf(a.stderr, "exported %d events (%s) in %s%s\n", res.Events, mb(res.Bytes), time.Since(start).Round(time.Millisecond), rate(res.Events, res.Bytes, time.Since(start)))
				if res.Cursor != "" {
					fmt.Fprintf(a.stderr, "last cursor: %s\n", res.Cursor)
				}
			}
			return nil
		},
	}
	cmd.Flags().StringSliceVar(&types, "type", nil, "export only these aggregate types (repeatable)")
	cmd.Flags().StringVar(&after, "after", "", "start after this cursor of the store (resume an export)")
	cmd.Flags().IntVar(&pageSize, "page-size", 0, "events per read (default the maximum page size, 1000)")
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "print nothing but errors")
	return cmd
}

// maxOneFile accepts at most one file argument.
func maxOneFile(cmd *cobra.Command, args []string) error {
	if len(args) > 1 {
		return usagef("%s takes at most one file argument, got %d", cmd.CommandPath(), len(args))
	}
	return nil
}

// progressBar draws progress on a terminal; it is a no-op otherwise.
type progressBar struct {
	bar *progressbar.ProgressBar
}

// progress returns a progress bar on a.stderr when it is a terminal and
// quiet is false: a spinner with a count when total < 0, else a bar to
// total (bytes when inBytes).
func (a *app) progress(quiet bool, total int64, what string, inBytes bool) *progressBar {
	f, ok := a.stderr.(*os.File)
	if quiet || !ok || !term.IsTerminal(int(f.Fd())) {
		return &progressBar{}
	}
	opts := []progressbar.Option{
		progressbar.OptionSetWriter(f),
		progressbar.OptionSetDescription(what),
		progressbar.OptionThrottle(100 * time.Millisecond),
		progressbar.OptionShowCount(),
		progressbar.OptionShowIts(),
		progressbar.OptionSetItsString("events"),
		progressbar.OptionClearOnFinish(),
	}
	if inBytes {
		opts = append(opts, progressbar.OptionShowBytes(true))
	}
	return &progressBar{bar: progressbar.NewOptions64(total, opts...)}
}

func (p *progressBar) set(n int64) {
	if p.bar != nil {
		_ = p.bar.Set64(n)
	}
}

func (p *progressBar) finish() {
	if p.bar != nil {
		_ = p.bar.Finish()
	}
}

// mb formats a byte count in MB.
func mb(n int64) string { return fmt.Sprintf("%.1f MB", float64(n)/1e6) }

// rate formats events/s and MB/s over d.
func rate(events, bytes int64, d time.Duration) string {
	s := d.Seconds()
	if s <= 0 {
		return ""
	}
	return fmt.Sprintf(": %.0f events/s, %.1f MB/s", float64(events)/s, float64(bytes)/1e6/s)
}
