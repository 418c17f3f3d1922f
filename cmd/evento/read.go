package main

import (
	"encoding/json"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/evento-go/evento"
	"github.com/evento-go/evento/cursor"
	"github.com/evento-go/evento/executor/storekit"
)

func init() {
	register(newEventsCmd)
	register(newAggregateCmd)
	register(newHeadCmd)
}

// queryFlags are the query shape flags of events and tail.
type queryFlags struct {
	types, ids, names []string
	routing           string
	noRouting         bool
}

func (q *queryFlags) add(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringArrayVar(&q.types, "type", nil, "aggregate type; repeat for an OR of several types")
	f.StringArrayVar(&q.ids, "id", nil, "aggregate id (needs exactly one --type; repeat for several aggregates)")
	f.StringArrayVar(&q.names, "name", nil, "event name (needs exactly one --type; repeat for several names)")
	f.StringVar(&q.routing, "routing", "", "only events with this routing key")
	f.BoolVar(&q.noRouting, "no-routing", false, "only events without a routing key")
}

// query builds the query the flags describe, or a usage error.
func (q *queryFlags) query() (evento.Query, error) {
	var out evento.Query
	switch {
	case len(q.types) == 0 && (len(q.ids) > 0 || len(q.names) > 0):
		return out, usagef("--id and --name need --type")
	case len(q.types) > 1 && (len(q.ids) > 0 || len(q.names) > 0):
		return out, usagef("--id and --name need exactly one --type, got %d", len(q.types))
	case len(q.ids) > 0 && len(q.names) > 0:
		return out, usagef("--id and --name together: give one or the other")
	}
	for _, t := range q.types {
		if t == "" {
			return out, usagef("--type is empty")
		}
		switch {
		case len(q.ids) > 0:
			for _, id := range q.ids {
				out.Filters = append(out.Filters, evento.Filter{AggregateType: t, AggregateID: id})
			}
		case len(q.names) > 0:
			for _, n := range q.names {
				out.Filters = append(out.Filters, evento.Filter{AggregateType: t, Name: n})
			}
		default:
			out.Filters = append(out.Filters, evento.Filter{AggregateType: t})
		}
	}
	switch {
	case q.noRouting && q.routing != "":
		return out, usagef("--routing and --no-routing together")
	case q.noRouting:
		out.Routing = evento.NoRoutingKey()
	case q.routing != "":
		out.Routing = evento.RoutingKey(q.routing)
	}
	return out, nil
}

// checkCursor refuses a cursor that does not decode, as a usage error.
func checkCursor(flag, c string) error {
	if c == "" {
		return nil
	}
	if _, _, err := storekit.DecodeCursor(c); err != nil {
		return usageError{fmt.Errorf("--%s: %w", flag, err)}
	}
	return nil
}

func newEventsCmd(a *app) *cobra.Command {
	var q queryFlags
	var args cursor.Args
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "events",
		Short: "Read one page of events (Relay connection: --first/--after or --last/--before)",
		Example: `  evento events --type bank/Account --first 10
  evento events --type bank/Account --id a1 --id a2
  evento events --type bank/Account --name MoneyDeposited --routing eu --json
  evento events --last 5`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			query, err := q.query()
			if err != nil {
				return err
			}
			if args.First < 0 || args.Last < 0 {
				return usagef("--first and --last must not be negative")
			}
			if err := checkCursor("after", args.After); err != nil {
				return err
			}
			if err := checkCursor("before", args.Before); err != nil {
				return err
			}
			query.Args = args
			ctx := cmd.Context()
			exec, err := a.openRead(ctx)
			if err != nil {
				return err
			}
			defer exec.Close()
			page, err := exec.Read(ctx, query)
			if err != nil {
				return err
			}
			if asJSON {
				conn := cursor.Map(page.Connection(), func(e evento.Event) eventJSON { return toJSON(&e) })
				return json.NewEncoder(a.stdout).Encode(conn)
			}
			if err := printEvents(a.stdout, page.Events); err != nil {
				return err
			}
			pi := page.PageInfo
			fmt.Fprintf(a.stdout, "hasPreviousPage=%v hasNextPage=%v\nstartCursor=%s\nendCursor=%s\n", pi.HasPreviousPage, pi.HasNextPage, pi.StartCursor, pi.EndCursor)
			return nil
		},
	}
	q.add(cmd)
	f := cmd.Flags()
	f.IntVar(&args.First, "first", 0, "page size, reading forward")
	f.StringVar(&args.After, "after", "", "cursor to read forward from")
	f.IntVar(&args.Last, "last", 0, "page size, reading backward")
	f.StringVar(&args.Before, "before", "", "cursor to read backward from")
	f.BoolVar(&asJSON, "json", false, "print the page as a Relay connection in JSON")
	return cmd
}

func newAggregateCmd(a *app) *cobra.Command {
	var typ, id string
	var asJSON bool
	cmd := &cobra.Command{
		Use:     "aggregate",
		Short:   "Show one aggregate's events in version order",
		Example: `  evento aggregate --type bank/Account --id a1 --json`,
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if typ == "" || id == "" {
				return usagef("--type and --id are required")
			}
			ctx := cmd.Context()
			exec, err := a.openRead(ctx)
			if err != nil {
				return err
			}
			defer exec.Close()
			events, err := exec.ReadAggregate(ctx, typ, id, 0, 0)
			if err != nil {
				return err
			}
			if len(events) == 0 {
				return fmt.Errorf("aggregate %s/%q: %w", typ, id, evento.ErrNotFound)
			}
			if asJSON {
				rows := make([]eventJSON, len(events))
				for i := range events {
					rows[i] = toJSON(&events[i])
				}
				return json.NewEncoder(a.stdout).Encode(rows)
			}
			return printEvents(a.stdout, events)
		},
	}
	cmd.Flags().StringVar(&typ, "type", "", "aggregate type (required)")
	cmd.Flags().StringVar(&id, "id", "", "aggregate id (required)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print a JSON array of events")
	return cmd
}

func newHeadCmd(a *app) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:     "head",
		Short:   "Print the position of the last committed event (0 for an empty store)",
		Example: `  evento head`,
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			exec, err := a.openRead(ctx)
			if err != nil {
				return err
			}
			defer exec.Close()
			p, err := exec.Head(ctx)
			if err != nil {
				return err
			}
			if asJSON {
				return json.NewEncoder(a.stdout).Encode(map[string]string{"position": p.String()})
			}
			fmt.Fprintln(a.stdout, p)
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, `print {"position": "…"}`)
	return cmd
}

// eventJSON is the JSON shape of an event: data and metadata are shown
// decoded from msgpack where possible.
type eventJSON struct {
	ID            string          `json:"id"`
	Cursor        string          `json:"cursor"`
	Position      string          `json:"position"`
	AggregateType string          `json:"aggregateType"`
	AggregateID   string          `json:"aggregateId"`
	Version       uint64          `json:"version"`
	Name          string          `json:"name"`
	RoutingKey    string          `json:"routingKey,omitempty"`
	Timestamp     time.Time       `json:"timestamp"`
	Metadata      evento.Metadata `json:"metadata"`
	Data          any             `json:"data,omitempty"`
}

func toJSON(e *evento.Event) eventJSON {
	var data any
	if len(e.Data) > 0 {
		if err := evento.Unmarshal(e.Data, &data); err != nil {
			data = fmt.Sprintf("<%d bytes, not msgpack>", len(e.Data))
		}
	}
	return eventJSON{
		ID: e.ID.String(), Cursor: e.Cursor(), Position: e.Position.String(),
		AggregateType: e.AggregateType, AggregateID: e.AggregateID, Version: e.Version,
		Name: e.Name, RoutingKey: e.RoutingKey, Timestamp: e.Timestamp, Metadata: e.Metadata, Data: jsonSafe(data),
	}
}

// jsonSafe converts msgpack's map[any]any into something encoding/json takes.
func jsonSafe(v any) any {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			x[k] = jsonSafe(e)
		}
		return x
	case map[any]any:
		m := make(map[string]any, len(x))
		for k, e := range x {
			m[fmt.Sprint(k)] = jsonSafe(e)
		}
		return m
	case []any:
		for i, e := range x {
			x[i] = jsonSafe(e)
		}
		return x
	}
	return v
}

const eventHeader = "POSITION\tTIME\tAGGREGATE\tVERSION\tNAME\tROUTING\tID"

func eventRow(w io.Writer, e *evento.Event) {
	fmt.Fprintf(w, "%s\t%s\t%s/%s\t%d\t%s\t%s\t%s\n", e.Position, e.Timestamp.Format(time.RFC3339Nano),
		e.AggregateType, e.AggregateID, e.Version, e.Name, e.RoutingKey, e.ID)
}

func printEvents(out io.Writer, events []evento.Event) error {
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, eventHeader)
	for i := range events {
		eventRow(tw, &events[i])
	}
	return tw.Flush()
}
