package main

import (
	"encoding/json"
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/evento-go/evento"
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
	return cmd
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
