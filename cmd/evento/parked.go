package main

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/oklog/ulid/v2"
	"github.com/spf13/cobra"

	"github.com/evento-go/evento"
	"github.com/evento-go/evento/executor/storekit"
)

func init() { register(newParkedCmd) }

// parkedJSON is the JSON shape of a parked event.
type parkedJSON struct {
	Key       string    `json:"key"`
	Partition uint32    `json:"partition"`
	Event     eventJSON `json:"event"`
	Error     string    `json:"error"`
	Attempts  int       `json:"attempts"`
	ParkedAt  time.Time `json:"parkedAt"`
}

func newParkedCmd(a *app) *cobra.Command {
	var key string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "parked",
		Short: "List a subscription's parked events (dead letters)",
		Example: `  evento parked --key balances
  evento parked --key balances --json`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if key == "" {
				return usagef("--key is required")
			}
			ctx := cmd.Context()
			exec, err := a.openRead(ctx)
			if err != nil {
				return err
			}
			defer exec.Close()
			if _, err := partitionsOf(ctx, exec, key); err != nil {
				return err
			}
			parked, err := exec.ParkedEvents(ctx, key)
			if err != nil {
				return err
			}
			return printParked(a, parked, asJSON)
		},
	}
	cmd.Flags().StringVar(&key, "key", "", "subscription key (required; must exist)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print a JSON array")
	cmd.AddCommand(newParkedActionCmd(a, "replay"), newParkedActionCmd(a, "discard"))
	return cmd
}

// newParkedActionCmd makes parked replay and parked discard.
func newParkedActionCmd(a *app, action string) *cobra.Command {
	var key string
	var ids []string
	var all, yes bool
	cmd := &cobra.Command{
		Use:  action,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if key == "" {
				return usagef("--key is required")
			}
			if all == (len(ids) > 0) {
				return usagef("give --event (one or more) or --all")
			}
			want := map[ulid.ULID]bool{}
			for _, s := range ids {
				id, err := ulid.ParseStrict(s)
				if err != nil {
					return usagef("--event %q is not an event ID (a ULID): %v", s, err)
				}
				want[id] = true
			}
			ctx := cmd.Context()
			exec, err := a.openWrite(ctx)
			if err != nil {
				return err
			}
			defer exec.Close()
			if _, err := partitionsOf(ctx, exec, key); err != nil {
				return err
			}
			parked, err := exec.ParkedEvents(ctx, key)
			if err != nil {
				return err
			}
			var chosen []evento.ParkedEvent
			found := map[ulid.ULID]bool{}
			for _, p := range parked {
				if all || want[p.Event.ID] {
					chosen = append(chosen, p)
					found[p.Event.ID] = true
				}
			}
			for _, s := range ids {
				if id, _ := ulid.ParseStrict(s); !found[id] {
					return usagef("subscriber %q has no parked event %s", key, id)
				}
			}
			if len(chosen) == 0 {
				fmt.Fprintf(a.stdout, "subscriber %s has no parked events\n", key)
				return nil
			}
			if err := a.confirm(yes, fmt.Sprintf("%s %d parked event(s) of %q", strings.ToUpper(action[:1])+action[1:], len(chosen), key)); err != nil {
				return err
			}
			if action == "replay" {
				if err := rewind(ctx, a, exec, key, chosen); err != nil {
					return err
				}
			}
			for _, p := range chosen {
				if err := exec.DeleteParked(ctx, key, p.Partition, p.Event.ID); err != nil {
					return fmt.Errorf("%s parked event %s: %w", action, p.Event.ID, err)
				}
			}
			verb := map[string]string{"replay": "replayed", "discard": "discarded"}[action]
			fmt.Fprintf(a.stdout, "%s %d parked event(s) of %s\n", verb, len(chosen), key)
			return nil
		},
	}
	switch action {
	case "replay":
		cmd.Short = "Deliver parked events again: rewind their partitions to just before the earliest one"
		cmd.Long = `replay hands parked events back to the subscription's workers, which hold the
handlers: each chosen event's partition is rewound (fenced as reset is: a
running worker loses its lease and re-reads, never losing an event) to just
before its earliest chosen event, then the chosen events leave the parked
list. Workers deliver from there again — the parked events and the events
after them (at least once; handlers are idempotent). An event that fails
again is parked again. A partition already behind the event is not moved.`
		cmd.Example = `  evento parked replay --key balances --event 01J9Z3X4Q5R6S7T8V9W0XYZABC
  evento parked replay --key balances --all --yes`
	case "discard":
		cmd.Short = "Drop parked events from the dead-letter list (they are not delivered again)"
		cmd.Example = `  evento parked discard --key balances --event 01J9Z3X4Q5R6S7T8V9W0XYZABC --event 01J9Z3X4Q5R6S7T8V9W0XYZABD
  evento parked discard --key balances --all --yes`
	}
	f := cmd.Flags()
	f.StringVar(&key, "key", "", "subscription key (required; must exist)")
	f.StringArrayVar(&ids, "event", nil, "parked event ID (repeatable)")
	f.BoolVar(&all, "all", false, "every parked event of the key")
	f.BoolVarP(&yes, "yes", "y", false, "do not ask for confirmation")
	return cmd
}

// rewind moves each partition of chosen back to just before its earliest
// chosen event, unless the partition's cursor is there or before already.
func rewind(ctx context.Context, a *app, exec evento.Executor, key string, chosen []evento.ParkedEvent) error {
	earliest := map[uint32]*evento.Event{}
	for i := range chosen {
		p := &chosen[i]
		if e := earliest[p.Partition]; e == nil || p.Event.Position.Less(e.Position) {
			earliest[p.Partition] = &p.Event
		}
	}
	for _, part := range slices.Sorted(maps.Keys(earliest)) {
		e := earliest[part]
		prev, err := exec.Read(ctx, evento.All().Last(1, e.Cursor()))
		if err != nil {
			return fmt.Errorf("replay: the event before %s: %w", e.ID, err)
		}
		target, targetPos := "", evento.Position{}
		if len(prev.Events) == 1 {
			target, targetPos = prev.Events[0].Cursor(), prev.Events[0].Position
		}
		sub, err := exec.Subscriber(ctx, key, part)
		if err != nil {
			return fmt.Errorf("replay: subscriber %s/%d: %w", key, part, err)
		}
		if sub.Cursor == "" {
			continue // at the start: everything is delivered anyway
		}
		if _, pos, err := storekit.DecodeCursor(sub.Cursor); err == nil && pos.Compare(targetPos) <= 0 {
			continue
		}
		if err := exec.ResetSubscriber(ctx, key, part, target); err != nil {
			return fmt.Errorf("replay: rewind %s/%d: %w", key, part, err)
		}
		to := "the start"
		if target != "" {
			to = "position " + targetPos.String()
		}
		fmt.Fprintf(a.stdout, "partition %d rewound to %s\n", part, to)
	}
	return nil
}

func printParked(a *app, parked []evento.ParkedEvent, asJSON bool) error {
	if asJSON {
		rows := make([]parkedJSON, len(parked))
		for i := range parked {
			p := &parked[i]
			rows[i] = parkedJSON{Key: p.Key, Partition: p.Partition, Event: toJSON(&p.Event), Error: p.Error, Attempts: p.Attempts, ParkedAt: p.ParkedAt}
		}
		return json.NewEncoder(a.stdout).Encode(rows)
	}
	tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "PARTITION\tEVENT\tAGGREGATE\tNAME\tATTEMPTS\tPARKED AT\tERROR")
	for _, p := range parked {
		fmt.Fprintf(tw, "%d\t%s\t%s/%s v%d\t%s\t%d\t%s\t%s\n", p.Partition, p.Event.ID, p.Event.AggregateType,
			p.Event.AggregateID, p.Event.Version, p.Event.Name, p.Attempts, p.ParkedAt.Format(time.RFC3339), p.Error)
	}
	return tw.Flush()
}
