package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/evento-go/evento"
	"github.com/evento-go/evento/executor/storekit"
	"github.com/evento-go/evento/subscription"
)

func init() {
	register(newSubscribersCmd)
	register(newResetCmd)
}

// subscriberJSON is the JSON shape of a subscriber (camelCase, durations as
// Go duration strings).
type subscriberJSON struct {
	Key            string     `json:"key"`
	Partition      uint32     `json:"partition"`
	Cursor         string     `json:"cursor"`
	Position       string     `json:"position"`
	Selection      string     `json:"selection,omitempty"`
	Pending        uint64     `json:"pending"`
	PendingExact   bool       `json:"pendingExact"`
	AckedAt        *time.Time `json:"ackedAt,omitempty"`
	SinceAck       string     `json:"sinceAck,omitempty"`
	LagTime        string     `json:"lagTime"`
	UpdatedAt      *time.Time `json:"updatedAt,omitempty"`
	Holder         string     `json:"holder,omitempty"`
	Token          uint64     `json:"token"`
	LeaseExpiresAt *time.Time `json:"leaseExpiresAt,omitempty"`
	Parked         int        `json:"parked"`
	LastError      string     `json:"lastError,omitempty"`
}

func optTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

func toSubscriberJSON(s subscription.SubscriberStatus) subscriberJSON {
	j := subscriberJSON{
		Key: s.Key, Partition: s.Partition, Cursor: s.Cursor, Position: s.Position.String(),
		Pending: s.Pending, PendingExact: s.PendingExact, AckedAt: optTime(s.AckedAt),
		LagTime: s.Lag.Time.String(), UpdatedAt: optTime(s.UpdatedAt), Holder: s.Holder, Token: s.Token,
		LeaseExpiresAt: optTime(s.LeaseExpiresAt), Parked: s.Parked, LastError: s.LastError,
	}
	if s.Selection != nil {
		j.Selection = s.Selection.String()
	}
	if !s.AckedAt.IsZero() {
		j.SinceAck = s.SinceAck.Round(time.Millisecond).String()
	}
	return j
}

func newSubscribersCmd(a *app) *cobra.Command {
	var asJSON bool
	var keys []string
	cmd := &cobra.Command{
		Use:   "subscribers",
		Short: "List subscribers: cursor, pending events (computed now), last ack, lease, parked, last error",
		Example: `  evento subscribers
  evento subscribers --key balances --json
  evento subscribers delete --key old-projection --yes`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			exec, err := a.openRead(ctx)
			if err != nil {
				return err
			}
			defer exec.Close()
			if err := checkKeys(ctx, exec, keys); err != nil {
				return err
			}
			subs, err := subscription.Status(ctx, exec, keys...)
			if err != nil {
				return err
			}
			if asJSON {
				rows := make([]subscriberJSON, len(subs))
				for i, s := range subs {
					rows[i] = toSubscriberJSON(s)
				}
				return json.NewEncoder(a.stdout).Encode(rows)
			}
			tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "KEY\tPARTITION\tCURSOR\tPENDING\tLAST ACK\tUPDATED\tHOLDER\tTOKEN\tLEASE EXPIRES\tPARKED\tLAST ERROR")
			for _, s := range subs {
				pos := "start"
				if s.Cursor != "" {
					pos = s.Position.String()
				}
				pending := fmt.Sprintf("%d", s.Pending)
				if !s.PendingExact {
					pending = "~" + pending
				}
				acked := "never"
				if !s.AckedAt.IsZero() {
					acked = s.SinceAck.Round(time.Millisecond).String() + " ago"
				}
				fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%s\t%s\t%d\t%s\t%d\t%s\n", s.Key, s.Partition, pos, pending, acked,
					stamp(s.UpdatedAt), s.Holder, s.Token, stamp(s.LeaseExpiresAt), s.Parked, s.LastError)
			}
			return tw.Flush()
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print a JSON array of subscribers")
	cmd.Flags().StringArrayVar(&keys, "key", nil, "only this subscription key (repeatable)")
	cmd.AddCommand(newSubscribersDeleteCmd(a))
	return cmd
}

func newSubscribersDeleteCmd(a *app) *cobra.Command {
	var key string
	var partition uint32
	var yes bool
	cmd := &cobra.Command{
		Use:   "delete",
		Short: "Delete a subscriber (every partition, or one) with its cursor, lease and parked events",
		Long: `delete removes a subscriber's stored state — cursor, lease, recorded selection,
last error and parked events — on every stored partition of the key, or on
--partition. A worker still running loses its lease (its next acknowledgement
fails) and, if it claims again, starts from the beginning of the log: events
are delivered again, never lost. Stop the workers first to retire a
subscription. Asks for confirmation unless --yes.`,
		Example: `  evento subscribers delete --key old-projection
  evento subscribers delete --key balances --partition 3 --yes`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if key == "" {
				return usagef("--key is required")
			}
			ctx := cmd.Context()
			exec, err := a.openWrite(ctx)
			if err != nil {
				return err
			}
			defer exec.Close()
			parts, err := selectPartitions(ctx, exec, key, partition, cmd.Flags().Changed("partition"))
			if err != nil {
				return err
			}
			if err := a.confirm(yes, fmt.Sprintf("Delete subscriber %q partitions %v (cursor, lease, parked events)", key, parts)); err != nil {
				return err
			}
			for _, p := range parts {
				if err := exec.DeleteSubscriber(ctx, key, p); err != nil {
					return fmt.Errorf("delete %s/%d: %w", key, p, err)
				}
			}
			fmt.Fprintf(a.stdout, "subscriber %s deleted, partitions %v\n", key, parts)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&key, "key", "", "subscription key (required; must exist)")
	f.Uint32Var(&partition, "partition", 0, "delete only this stored partition (default: every stored partition)")
	f.BoolVarP(&yes, "yes", "y", false, "do not ask for confirmation")
	return cmd
}

// stamp formats a stored time, "-" for none.
func stamp(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.Format(time.RFC3339)
}

// partitionsOf returns the stored partitions of key, sorted, or a usage
// error naming the keys the store has.
func partitionsOf(ctx context.Context, exec evento.Executor, key string) ([]uint32, error) {
	subs, err := exec.Subscribers(ctx)
	if err != nil {
		return nil, err
	}
	var parts []uint32
	known := map[string]bool{}
	for _, s := range subs {
		known[s.Key] = true
		if s.Key == key {
			parts = append(parts, s.Partition)
		}
	}
	if len(parts) == 0 {
		names := make([]string, 0, len(known))
		for k := range known {
			names = append(names, k)
		}
		slices.Sort(names)
		if len(names) == 0 {
			return nil, usagef("no subscriber %q: the store has no subscribers", key)
		}
		return nil, usagef("no subscriber %q: the store has %s", key, strings.Join(quoteAll(names), ", "))
	}
	slices.Sort(parts)
	return parts, nil
}

func quoteAll(s []string) []string {
	out := make([]string, len(s))
	for i, x := range s {
		out[i] = fmt.Sprintf("%q", x)
	}
	return out
}

// checkKeys refuses keys the store has no subscriber for.
func checkKeys(ctx context.Context, exec evento.Executor, keys []string) error {
	for _, k := range keys {
		if _, err := partitionsOf(ctx, exec, k); err != nil {
			return err
		}
	}
	return nil
}

// selectPartitions returns the partitions an operation on key applies to:
// all stored ones, or the one given, which must be stored.
func selectPartitions(ctx context.Context, exec evento.Executor, key string, partition uint32, one bool) ([]uint32, error) {
	parts, err := partitionsOf(ctx, exec, key)
	if err != nil {
		return nil, err
	}
	if !one {
		return parts, nil
	}
	if !slices.Contains(parts, partition) {
		return nil, usagef("subscriber %q has no partition %d (it has %v)", key, partition, parts)
	}
	return []uint32{partition}, nil
}

// checkHeldCursor refuses a cursor that does not decode or points at an
// event the store does not hold.
func checkHeldCursor(ctx context.Context, exec evento.Executor, c string) error {
	if c == "" {
		return nil
	}
	id, _, err := storekit.DecodeCursor(c)
	if err != nil {
		return usageError{fmt.Errorf("--cursor: %w", err)}
	}
	// The event just before the cursor, then the one after that: the
	// cursor's own event if the store holds it.
	prev, err := exec.Read(ctx, evento.All().Last(1, c))
	if err != nil {
		return usageError{fmt.Errorf("--cursor: %w", err)}
	}
	after := ""
	if len(prev.Events) == 1 {
		after = prev.Events[0].Cursor()
	}
	next, err := exec.Read(ctx, evento.All().First(1, after))
	if err != nil {
		return usageError{fmt.Errorf("--cursor: %w", err)}
	}
	if len(next.Events) != 1 || next.Events[0].ID != id {
		return usagef("--cursor: the store holds no event %s (a cursor of another store?)", id)
	}
	return nil
}

// confirm asks on stdin unless yes; a refusal or no answer is an error.
func (a *app) confirm(yes bool, what string) error {
	if yes {
		return nil
	}
	fmt.Fprintf(a.stderr, "%s? [y/N] ", what)
	line, _ := bufio.NewReader(a.stdin).ReadString('\n')
	switch strings.ToLower(strings.TrimSpace(line)) {
	case "y", "yes":
		return nil
	}
	return fmt.Errorf("not confirmed: nothing changed (answer y, or pass --yes)")
}

func newResetCmd(a *app) *cobra.Command {
	var key, cur string
	var partition uint32
	var yes bool
	cmd := &cobra.Command{
		Use:   "reset",
		Short: "Reset a subscriber's cursor (every partition, or one), revoking its lease",
		Long: `reset sets a subscriber's cursor (empty: the start) on every stored partition
of the key, or on --partition. It revokes the lease and bumps the fencing
token: a running worker's next acknowledgement fails, and it re-reads from the
new cursor, so no event is lost. It also clears the stored selection, so a
worker with a changed selection may start. The key, the partition and the
cursor must be ones the store holds.`,
		Example: `  evento reset --key balances --yes
  evento reset --key balances --partition 1 --cursor <cursor> --yes`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if key == "" {
				return usagef("--key is required")
			}
			if err := checkCursor("cursor", cur); err != nil {
				return err
			}
			ctx := cmd.Context()
			one := cmd.Flags().Changed("partition")
			exec, err := a.openWrite(ctx)
			if err != nil {
				return err
			}
			defer exec.Close()
			parts, err := selectPartitions(ctx, exec, key, partition, one)
			if err != nil {
				return err
			}
			if err := checkHeldCursor(ctx, exec, cur); err != nil {
				return err
			}
			to := "the start"
			if cur != "" {
				to = "cursor " + cur
			}
			if err := a.confirm(yes, fmt.Sprintf("Reset subscriber %q partitions %v to %s", key, parts, to)); err != nil {
				return err
			}
			for _, p := range parts {
				if err := exec.ResetSubscriber(ctx, key, p, cur); err != nil {
					return fmt.Errorf("reset %s/%d: %w", key, p, err)
				}
			}
			if one {
				fmt.Fprintf(a.stdout, "subscriber %s/%d reset (cursor, lease and stored selection)\n", key, partition)
			} else {
				fmt.Fprintf(a.stdout, "subscriber %s reset, every partition %v (cursor, lease and stored selection)\n", key, parts)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&key, "key", "", "subscription key (required; must exist)")
	f.Uint32Var(&partition, "partition", 0, "reset only this stored partition (default: every stored partition)")
	f.StringVar(&cur, "cursor", "", "new cursor, an event the store holds (default: the start)")
	f.BoolVarP(&yes, "yes", "y", false, "do not ask for confirmation")
	return cmd
}
