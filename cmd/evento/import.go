package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/evento-go/evento/transfer"
)

func init() { register(newImportCmd) }

func newImportCmd(a *app) *cobra.Command {
	var (
		appendMode, resume, quiet bool
		batch                     int
	)
	cmd := &cobra.Command{
		Use:   "import [file]",
		Short: "Import a JSON Lines export into the store (any backend)",
		Long: `import reads an export written by "evento export" from file (default:
standard input) and writes its events into the store --dsn names, creating
the store if it does not exist. Events keep their IDs, versions,
timestamps, metadata and payload bytes, in the same order: an export of one
backend imported into an empty store of another is the portable migration.

A store that already holds events is refused unless --append is given;
appended events must still continue their aggregates' versions. --resume
continues an interrupted import of the same file: it skips the lines up to
the store's last event. Each batch lands whole or not at all. A progress
bar is drawn when standard error is a terminal.`,
		Example: `  evento --dsn pebble:.evento/data export all.jsonl
  evento --dsn 'postgres://u:p@db/app?schema=evento' import all.jsonl
  evento --dsn sqlite:new.db import --resume all.jsonl`,
		Args: maxOneFile,
		RunE: func(cmd *cobra.Command, args []string) error {
			if batch < 0 {
				return usagef("--batch must be positive, got %d", batch)
			}
			var r io.Reader = a.stdin
			var size int64 = -1
			if len(args) == 1 && args[0] != "-" {
				f, err := os.Open(args[0])
				if err != nil {
					return err
				}
				defer f.Close()
				if fi, err := f.Stat(); err == nil && fi.Mode().IsRegular() {
					size = fi.Size()
				}
				r = f
			}
			x, err := a.open(cmd.Context(), a.dsn())
			if err != nil {
				return err
			}
			defer x.Close()
			bar := a.progress(quiet, size, "importing", size >= 0)
			start := time.Now()
			res, err := transfer.Import(cmd.Context(), x, r, transfer.ImportOptions{Append: appendMode, Resume: resume, BatchSize: batch,
				Progress: func(p transfer.Progress) {
					if size >= 0 {
						bar.set(p.Bytes)
					} else {
						bar.set(p.Events)
					}
				}})
			bar.finish()
			if err != nil {
				switch {
				case errors.Is(err, transfer.ErrNotEmpty):
					return fmt.Errorf("%w\n  import into a new store, or give --append to add the events (versions are still checked)", err)
				case res.Events > 0:
					return fmt.Errorf("%w\n  %d events were imported before the error; after fixing it, run the same import with --resume", err, res.Events)
				}
				return err
			}
			if !quiet {
				d := time.Since(start)
				fmt.Fprintf(a.stderr, "imported %d events (%s) in %s%s", res.Events, mb(res.Bytes), d.Round(time.Millisecond), rate(res.Events, res.Bytes, d))
				if res.Skipped > 0 {
					fmt.Fprintf(a.stderr, "; skipped %d already imported", res.Skipped)
				}
				fmt.Fprintln(a.stderr)
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&appendMode, "append", false, "allow a store that already holds events (versions are still checked)")
	cmd.Flags().BoolVar(&resume, "resume", false, "continue an interrupted import of the same file")
	cmd.Flags().IntVar(&batch, "batch", 0, "events per committed batch (default 500)")
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "print nothing but errors")
	return cmd
}
