// Command evento is the operator CLI for an evento store: it reads and
// follows events, shows aggregates, subscribers and parked events, resets and
// deletes subscribers, replays and discards parked events, and migrates a
// store's schema.
//
// The store is named by --dsn (anywhere on the line), else the EVENTO_DSN
// environment variable, else the embedded Pebble directory .evento/data in
// the working directory (the same default as the example programs).
//
// Read-only commands (events, aggregate, head, tail, subscribers, parked
// list) open the store read-only: they never create a store, a schema or a
// file, and a missing one is an error. Commands that change something first
// check every flag and argument against the store, then act.
//
// Single-dash long flags (-dsn, -type, -first) are accepted as the double-
// dash ones; `evento help <command>` and `-h` on any command show its flags
// and examples.
//
// # Exit codes
//
//	0  success
//	1  the operation failed (store unreachable, missing, locked, not found…)
//	2  bad usage (unknown command or flag, bad value, missing argument)
//
// # JSON
//
// Every --json output uses one style: camelCase field names, times in
// RFC 3339, durations as Go duration strings ("1.5s"). tail --json prints
// JSON Lines (one event object per line).
//
// # Adding a command
//
// A command lives in its own file that registers a constructor from init:
//
//	func init() { register(newServeCmd) }
//
//	func newServeCmd(a *app) *cobra.Command {
//		return &cobra.Command{Use: "serve", Args: noArgs, RunE: func(cmd *cobra.Command, args []string) error {
//			exec, err := a.openRead(cmd.Context()) // or a.openWrite
//			…
//		}}
//	}
//
// The command reads the store through a (openRead for read-only work,
// openWrite to change it), writes to a.stdout/a.stderr, and returns
// usagef(…) for bad usage (exit 2) or any other error for a failure (exit 1).
// Tests call run(ctx, args, stdin, stdout, stderr) in-process.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/evento-go/evento"
	"github.com/evento-go/evento/executor"
	_ "github.com/evento-go/evento/executor/pebble"
	_ "github.com/evento-go/evento/executor/postgres"
	_ "github.com/evento-go/evento/executor/sqlite"
)

// DefaultDSN is the store used when neither --dsn nor EVENTO_DSN is set.
const DefaultDSN = "pebble:.evento/data"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

// commands holds the constructors of the subcommands, filled by register
// from each command file's init.
var commands []func(*app) *cobra.Command

// register adds a subcommand constructor; call it from init.
func register(c func(*app) *cobra.Command) { commands = append(commands, c) }

// app is what every command shares: its streams and the store's DSN.
type app struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	dsnFlag        string
}

// dsn returns the store's DSN: --dsn, else $EVENTO_DSN, else DefaultDSN.
func (a *app) dsn() string {
	if a.dsnFlag != "" {
		return a.dsnFlag
	}
	if d := os.Getenv("EVENTO_DSN"); d != "" {
		return d
	}
	return DefaultDSN
}

// openRead opens the store read-only: nothing is created, a missing store
// is an error wrapping executor.ErrNoStore, and writes through the returned
// executor fail with executor.ErrReadOnly.
func (a *app) openRead(ctx context.Context) (evento.Executor, error) {
	return a.open(ctx, executor.ReadOnlyDSN(a.dsn()))
}

// openWrite opens the store to change it. The store must exist already
// (checked by a read-only open first), so a mistyped DSN creates nothing.
func (a *app) openWrite(ctx context.Context) (evento.Executor, error) {
	x, err := a.openRead(ctx)
	if err != nil {
		return nil, err
	}
	if err := x.Close(); err != nil {
		return nil, err
	}
	return a.open(ctx, a.dsn())
}

func (a *app) open(ctx context.Context, dsn string) (evento.Executor, error) {
	x, err := executor.Open(ctx, dsn)
	if err != nil {
		return nil, explainOpen(err)
	}
	return x, nil
}

// explainOpen adds the remedy to the errors an operator meets first.
func explainOpen(err error) error {
	switch {
	case errors.Is(err, executor.ErrLocked):
		return fmt.Errorf("%w\n  another process (the application?) has this Pebble store open; a Pebble store has one process at a time.\n  Use the application's HTTP admin API (evento serve), stop it first, or use SQLite or PostgreSQL for multi-process access", err)
	case errors.Is(err, executor.ErrNoStore):
		return fmt.Errorf("%w\n  check --dsn / EVENTO_DSN; `evento migrate` creates a store", err)
	}
	return err
}

// usageError is bad usage: exit code 2.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

// usagef returns a usage error (exit code 2).
func usagef(format string, args ...any) error {
	return usageError{fmt.Errorf(format, args...)}
}

// noArgs refuses positional arguments as a usage error.
func noArgs(cmd *cobra.Command, args []string) error {
	if len(args) > 0 {
		return usagef("%s takes no arguments, got %q", cmd.CommandPath(), args)
	}
	return nil
}

// run is the CLI without process globals, for tests. It returns the exit
// code: 0 on success, 1 on a failed operation, 2 on bad usage.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	a := &app{stdin: stdin, stdout: stdout, stderr: stderr}
	root := newRoot(a)
	root.SetArgs(normalizeArgs(args))
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	cmd, err := root.ExecuteContextC(ctx)
	if err == nil {
		return 0
	}
	var ue usageError
	if errors.As(err, &ue) {
		fmt.Fprintf(stderr, "evento: %v\n", err)
		if cmd != nil {
			fmt.Fprintf(stderr, "Run '%s --help' for usage.\n", cmd.CommandPath())
		}
		return 2
	}
	name := "evento"
	if cmd != nil {
		name = cmd.CommandPath()
	}
	fmt.Fprintf(stderr, "%s: %v\n", name, err)
	return 1
}

func newRoot(a *app) *cobra.Command {
	root := &cobra.Command{
		Use:   "evento",
		Short: "Operate an evento store: read and follow events, manage subscribers",
		Long: `evento operates an evento store: it reads and follows events, shows
aggregates, subscribers and parked events, resets and deletes subscribers,
replays and discards parked events, and migrates a store's schema.

The store is --dsn (anywhere on the line), else $EVENTO_DSN, else ` + DefaultDSN + `.
Read-only commands open the store read-only and never create anything.

Exit codes: 0 success, 1 the operation failed, 2 bad usage.
JSON output (--json): camelCase fields, RFC 3339 times, durations as Go
duration strings ("1.5s"); tail --json prints JSON Lines.`,
		Example: `  evento --dsn sqlite:bank.db events --type bank/Account --first 10
  EVENTO_DSN=pebble:.evento/data evento tail --from start --json
  evento subscribers --dsn 'postgres://u:p@db/app?schema=evento'
  evento reset --key balances --yes`,
		SilenceUsage:  true,
		SilenceErrors: true,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 {
				return usagef("unknown command %q", args[0])
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			cmd.SetOut(a.stderr)
			_ = cmd.Usage()
			return usagef("missing command")
		},
	}
	root.PersistentFlags().StringVar(&a.dsnFlag, "dsn", "", "store DSN (default $EVENTO_DSN, else "+DefaultDSN+")")
	root.SetFlagErrorFunc(func(cmd *cobra.Command, err error) error { return usageError{err} })
	root.CompletionOptions.DisableDefaultCmd = true
	for _, c := range commands {
		root.AddCommand(c(a))
	}
	return root
}

// normalizeArgs turns single-dash long flags (-dsn x, -first=2) into their
// double-dash form, so the flag package's spelling keeps working. A lone
// dash, negative numbers and everything after "--" are left alone.
func normalizeArgs(args []string) []string {
	out := make([]string, 0, len(args))
	for i, s := range args {
		if s == "--" {
			return append(out, args[i:]...)
		}
		if len(s) > 2 && s[0] == '-' && s[1] != '-' && !strings.ContainsAny(s[1:2], "0123456789.") {
			s = "-" + s
		}
		out = append(out, s)
	}
	return out
}
