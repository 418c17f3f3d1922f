package main

import (
	"encoding/json"
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/evento-go/evento/backup"
)

func init() {
	register(newBackupCmd)
	register(newRestoreCmd)
	register(newVerifyCmd)
}

func newBackupCmd(a *app) *cobra.Command {
	var quiet bool
	cmd := &cobra.Command{
		Use:   "backup <file>",
		Short: "Back up a Pebble or SQLite store into one checked archive",
		Long: `backup writes a consistent copy of the store (a Pebble checkpoint, or SQLite's
VACUUM INTO) to file as one zstd-compressed tar archive with a manifest
(format version, backend, time, head, event count, each file's SHA-256).
SQLite stores may be backed up while the application writes; a Pebble store
is open by one process at a time, so an application backs up its own store
with the backup package (backup.BackupFile). The file is written under a
temporary name and renamed when complete; an existing file is refused.

PostgreSQL stores are backed up with pg_dump (pg_dump -n <schema>), or
exported with "evento export".`,
		Example: `  evento --dsn sqlite:app.db backup app-$(date +%F).evbak
  evento verify app-2025-01-02.evbak
  evento --dsn sqlite:restored.db restore app-2025-01-02.evbak`,
		Args: exactFile,
		RunE: func(cmd *cobra.Command, args []string) error {
			if _, err := os.Lstat(args[0]); err == nil {
				return fmt.Errorf("%s exists; choose a new file name", args[0])
			}
			x, err := a.openWrite(cmd.Context())
			if err != nil {
				return err
			}
			defer x.Close()
			start := time.Now()
			m, err := backup.BackupFile(cmd.Context(), x, args[0], backup.Options{})
			if err != nil {
				return err
			}
			if !quiet {
				a.summary("backed up", args[0], m, time.Since(start))
			}
			return nil
		},
	}
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "print nothing but errors")
	return cmd
}

func newRestoreCmd(a *app) *cobra.Command {
	var quiet bool
	cmd := &cobra.Command{
		Use:   "restore <file>",
		Short: "Restore a backup archive as the store --dsn names (which must not exist)",
		Long: `restore checks every file of a backup archive against its manifest, opens the
copy as a store, and only then moves it into place as the store --dsn names
(pebble:<dir> or sqlite:<file>, of the archive's backend). The target must
not exist (an empty directory is accepted for Pebble): restore never
overwrites a store.`,
		Example: `  evento --dsn pebble:/var/lib/app/restored restore app.evbak`,
		Args:    exactFile,
		RunE: func(cmd *cobra.Command, args []string) error {
			f, err := os.Open(args[0])
			if err != nil {
				return err
			}
			defer f.Close()
			start := time.Now()
			m, err := backup.Restore(cmd.Context(), f, a.dsn())
			if err != nil {
				return err
			}
			if !quiet {
				a.summary("restored", args[0], m, time.Since(start))
			}
			return nil
		},
	}
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "print nothing but errors")
	return cmd
}

func newVerifyCmd(a *app) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "verify <file>",
		Short: "Check a backup archive: checksums, and that it opens as a store",
		Long: `verify reads a backup archive, checks each file's size and SHA-256 against the
manifest, and opens the copy as a store (in a temporary directory) to check
its head and event count. It prints the manifest; exit code 1 means the
archive is damaged or not a backup. It does not use --dsn.`,
		Example: `  evento verify app.evbak
  evento verify --json app.evbak`,
		Args: exactFile,
		RunE: func(cmd *cobra.Command, args []string) error {
			f, err := os.Open(args[0])
			if err != nil {
				return err
			}
			defer f.Close()
			m, err := backup.Verify(cmd.Context(), f, "")
			if err != nil {
				return err
			}
			if asJSON {
				enc := json.NewEncoder(a.stdout)
				enc.SetIndent("", "  ")
				return enc.Encode(m)
			}
			fmt.Fprintf(a.stdout, "ok: %s: %s store, %d events, head %s, %d files (%s), taken %s\n",
				args[0], m.Backend, m.Events, m.HeadPosition, len(m.Files), mb(m.Bytes()), m.CreatedAt.Format(time.RFC3339))
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the manifest as JSON")
	return cmd
}

// exactFile wants exactly one file argument.
func exactFile(cmd *cobra.Command, args []string) error {
	if len(args) != 1 {
		return usagef("%s takes one file argument, got %d", cmd.CommandPath(), len(args))
	}
	return nil
}

// summary prints what a backup or restore did, with its throughput over
// the store's bytes.
func (a *app) summary(what, file string, m backup.Manifest, d time.Duration) {
	archive := ""
	if fi, err := os.Stat(file); err == nil {
		archive = ", archive " + mb(fi.Size())
	}
	fmt.Fprintf(a.stderr, "%s %d events %s %s (store %s%s) in %s%s\n", what, m.Events, map[bool]string{true: "to", false: "from"}[what == "backed up"], file,
		mb(m.Bytes()), archive, d.Round(time.Millisecond), rate(m.Events, m.Bytes(), d))
}
