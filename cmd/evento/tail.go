package main

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/evento-go/evento"
)

func init() { register(newTailCmd) }

func newTailCmd(a *app) *cobra.Command {
	var q queryFlags
	var from string
	var asJSON bool
	var poll time.Duration
	var page int
	cmd := &cobra.Command{
		Use:   "tail",
		Short: "Follow the log like tail -f, with any query shape, until Ctrl-C",
		Long: `tail prints the events a query matches as they are committed, in global
order, until interrupted (Ctrl-C ends it cleanly, exit 0). It starts after the
last matching event (--from now, the default), at the beginning (--from start)
or after a cursor the store holds. It wakes on the store's notifications
(PostgreSQL LISTEN/NOTIFY; commits of this process on Pebble and SQLite) and
polls every --poll as the fallback, which is how it sees commits of other
processes on SQLite. --json prints JSON Lines: one event object per line, the
same object as events --json's nodes.`,
		Example: `  evento tail
  evento tail --from start --type bank/Account --json
  evento tail --type bank/Account --name MoneyDeposited --routing eu
  evento tail --from <cursor> --poll 200ms`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			query, err := q.query()
			if err != nil {
				return err
			}
			if poll <= 0 {
				return usagef("--poll must be positive, got %s", poll)
			}
			if page <= 0 {
				return usagef("--page must be positive, got %d", page)
			}
			switch from {
			case "now", "start":
			default:
				if err := checkCursor("from", from); err != nil {
					return usageError{fmt.Errorf("--from is now, start or a cursor: %w", err)}
				}
			}
			ctx := cmd.Context()
			exec, err := a.openRead(ctx)
			if err != nil {
				return err
			}
			defer exec.Close()
			after := ""
			switch from {
			case "start":
			case "now":
				last, err := exec.Read(ctx, query.Last(1, ""))
				if err != nil {
					return err
				}
				after = last.PageInfo.EndCursor
			default:
				if err := checkHeldCursor(ctx, exec, from); err != nil {
					return err
				}
				after = from
			}
			return follow(ctx, a, exec, query, after, page, poll, asJSON)
		},
	}
	q.add(cmd)
	f := cmd.Flags()
	f.StringVar(&from, "from", "now", "where to start: now (after the last matching event), start, or a cursor")
	f.BoolVar(&asJSON, "json", false, "print JSON Lines (one event per line)")
	f.DurationVar(&poll, "poll", time.Second, "fallback polling interval when no notification arrives")
	f.IntVar(&page, "page", 100, "events read per page")
	return cmd
}

// follow prints the events of q after the cursor after as they come, until
// ctx is done (then it returns nil).
func follow(ctx context.Context, a *app, exec evento.Executor, q evento.Query, after string, page int, poll time.Duration, asJSON bool) error {
	notify := exec.Notify(ctx)
	timer := time.NewTimer(poll)
	defer timer.Stop()
	enc := json.NewEncoder(a.stdout)
	for {
		for {
			p, err := exec.Read(ctx, q.First(page, after))
			if err != nil {
				if ctx.Err() != nil {
					return nil
				}
				return err
			}
			for i := range p.Events {
				e := &p.Events[i]
				if asJSON {
					if err := enc.Encode(toJSON(e)); err != nil {
						return err
					}
				} else {
					fmt.Fprintf(a.stdout, "%s  %s  %s/%s  v%d  %s", e.Position, e.Timestamp.Format(time.RFC3339Nano), e.AggregateType, e.AggregateID, e.Version, e.Name)
					if e.RoutingKey != "" {
						fmt.Fprintf(a.stdout, "  routing=%s", e.RoutingKey)
					}
					fmt.Fprintf(a.stdout, "  %s\n", e.ID)
				}
			}
			if p.PageInfo.EndCursor != "" {
				after = p.PageInfo.EndCursor
			}
			if !p.PageInfo.HasNextPage {
				break
			}
		}
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
		timer.Reset(poll)
		select {
		case <-ctx.Done():
			return nil
		case _, ok := <-notify:
			if !ok {
				notify = nil // closed with the executor: poll only
			}
		case <-timer.C:
		}
	}
}
