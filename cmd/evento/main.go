// Command evento is the operator CLI for an evento store: it reads events,
// shows aggregates, subscribers and parked events, and resets subscribers.
//
// The store is named by -dsn, or the EVENTO_DSN environment variable, and
// defaults to the embedded Pebble directory .evento/data in the working
// directory (the same default as the example programs).
//
// Usage:
//
//	evento [-dsn DSN] events [-type T] [-id ID] [-name N] [-routing K | -no-routing] [-first N] [-after C] [-last N] [-before C] [-json]
//	evento [-dsn DSN] aggregate -type T -id ID [-json]
//	evento [-dsn DSN] head
//	evento [-dsn DSN] subscribers [-json]   (cursor position, pending events computed now, last ack, last update, lease)
//	evento [-dsn DSN] parked -key K [-json]
//	evento [-dsn DSN] reset -key K [-partition P] [-cursor C]   (every partition unless -partition)
//	evento [-dsn DSN] migrate   (create or migrate the store's schema; for stores opened with migrate=false)
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"text/tabwriter"
	"time"

	"github.com/evento-go/evento"
	"github.com/evento-go/evento/cursor"
	"github.com/evento-go/evento/executor"
	_ "github.com/evento-go/evento/executor/pebble"
	_ "github.com/evento-go/evento/executor/postgres"
	_ "github.com/evento-go/evento/executor/sqlite"
	"github.com/evento-go/evento/subscription"
)

// DefaultDSN is the store used when neither -dsn nor EVENTO_DSN is set.
const DefaultDSN = "pebble:.evento/data"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

// run is the CLI without process globals, for tests. It returns the exit
// code: 0 on success, 1 on a failed operation, 2 on bad usage.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	global := flag.NewFlagSet("evento", flag.ContinueOnError)
	global.SetOutput(stderr)
	dsn := global.String("dsn", "", "store DSN (default $EVENTO_DSN, else "+DefaultDSN+")")
	global.Usage = func() {
		fmt.Fprintln(stderr, "usage: evento [-dsn DSN] <events|aggregate|head|subscribers|parked|reset|migrate> [flags]")
		global.PrintDefaults()
	}
	if err := global.Parse(args); err != nil {
		return 2
	}
	if global.NArg() == 0 {
		global.Usage()
		return 2
	}
	if *dsn == "" {
		*dsn = os.Getenv("EVENTO_DSN")
	}
	if *dsn == "" {
		*dsn = DefaultDSN
	}
	cmd, rest := global.Arg(0), global.Args()[1:]
	if cmd == "migrate" {
		if len(rest) > 0 {
			fmt.Fprintln(stderr, "evento migrate takes no arguments")
			return 2
		}
		if err := executor.Migrate(ctx, *dsn); err != nil {
			fmt.Fprintf(stderr, "evento migrate: %v\n", err)
			return 1
		}
		fmt.Fprintf(stdout, "migrated %s\n", executor.Redact(*dsn))
		return 0
	}
	c, ok := commands[cmd]
	if !ok {
		fmt.Fprintf(stderr, "evento: unknown command %q\n", cmd)
		global.Usage()
		return 2
	}
	fs := flag.NewFlagSet("evento "+cmd, flag.ContinueOnError)
	fs.SetOutput(stderr)
	action := c(fs)
	if err := fs.Parse(rest); err != nil {
		return 2
	}
	exec, err := executor.Open(ctx, *dsn)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	defer exec.Close()
	if err := action(ctx, exec, stdout); err != nil {
		fmt.Fprintf(stderr, "evento %s: %v\n", cmd, err)
		if errors.Is(err, errUsage) {
			return 2
		}
		return 1
	}
	return 0
}

var errUsage = errors.New("bad usage")

type action func(ctx context.Context, exec evento.Executor, out io.Writer) error

var commands = map[string]func(fs *flag.FlagSet) action{
	"events":      eventsCmd,
	"aggregate":   aggregateCmd,
	"head":        headCmd,
	"subscribers": subscribersCmd,
	"parked":      parkedCmd,
	"reset":       resetCmd,
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

func printEvents(out io.Writer, events []evento.Event, asJSON bool) error {
	if asJSON {
		rows := make([]eventJSON, len(events))
		for i := range events {
			rows[i] = toJSON(&events[i])
		}
		return json.NewEncoder(out).Encode(rows)
	}
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "POSITION\tTIME\tAGGREGATE\tVERSION\tNAME\tROUTING\tID")
	for _, e := range events {
		fmt.Fprintf(tw, "%s\t%s\t%s/%s\t%d\t%s\t%s\t%s\n", e.Position, e.Timestamp.Format(time.RFC3339Nano),
			e.AggregateType, e.AggregateID, e.Version, e.Name, e.RoutingKey, e.ID)
	}
	return tw.Flush()
}

func eventsCmd(fs *flag.FlagSet) action {
	typ := fs.String("type", "", "aggregate type")
	id := fs.String("id", "", "aggregate id (needs -type)")
	name := fs.String("name", "", "event name (needs -type)")
	routing := fs.String("routing", "", "only events with this routing key")
	noRouting := fs.Bool("no-routing", false, "only events without a routing key")
	first := fs.Int("first", 0, "page size, reading forward")
	after := fs.String("after", "", "cursor to read forward from")
	last := fs.Int("last", 0, "page size, reading backward")
	before := fs.String("before", "", "cursor to read backward from")
	asJSON := fs.Bool("json", false, "print a Relay connection as JSON")
	return func(ctx context.Context, exec evento.Executor, out io.Writer) error {
		q := evento.Query{Args: cursor.Args{First: *first, After: *after, Last: *last, Before: *before}}
		if *typ != "" {
			q.Filters = []evento.Filter{{AggregateType: *typ, AggregateID: *id, Name: *name}}
		} else if *id != "" || *name != "" {
			return fmt.Errorf("-id and -name need -type: %w", errUsage)
		}
		switch {
		case *noRouting && *routing != "":
			return fmt.Errorf("-routing and -no-routing together: %w", errUsage)
		case *noRouting:
			q.Routing = evento.NoRoutingKey()
		case *routing != "":
			q.Routing = evento.RoutingKey(*routing)
		}
		page, err := exec.Read(ctx, q)
		if err != nil {
			return err
		}
		if *asJSON {
			conn := cursor.Map(page.Connection(), func(e evento.Event) eventJSON { return toJSON(&e) })
			return json.NewEncoder(out).Encode(conn)
		}
		if err := printEvents(out, page.Events, false); err != nil {
			return err
		}
		pi := page.PageInfo
		fmt.Fprintf(out, "hasPreviousPage=%v hasNextPage=%v\nstartCursor=%s\nendCursor=%s\n", pi.HasPreviousPage, pi.HasNextPage, pi.StartCursor, pi.EndCursor)
		return nil
	}
}

func aggregateCmd(fs *flag.FlagSet) action {
	typ := fs.String("type", "", "aggregate type (required)")
	id := fs.String("id", "", "aggregate id (required)")
	asJSON := fs.Bool("json", false, "print JSON")
	return func(ctx context.Context, exec evento.Executor, out io.Writer) error {
		if *typ == "" || *id == "" {
			return fmt.Errorf("-type and -id are required: %w", errUsage)
		}
		events, err := exec.ReadAggregate(ctx, *typ, *id, 0, 0)
		if err != nil {
			return err
		}
		if len(events) == 0 {
			return fmt.Errorf("aggregate %s/%q: %w", *typ, *id, evento.ErrNotFound)
		}
		return printEvents(out, events, *asJSON)
	}
}

func headCmd(fs *flag.FlagSet) action {
	return func(ctx context.Context, exec evento.Executor, out io.Writer) error {
		p, err := exec.Head(ctx)
		if err != nil {
			return err
		}
		fmt.Fprintln(out, p)
		return nil
	}
}

func subscribersCmd(fs *flag.FlagSet) action {
	asJSON := fs.Bool("json", false, "print JSON")
	return func(ctx context.Context, exec evento.Executor, out io.Writer) error {
		subs, err := subscription.Status(ctx, exec)
		if err != nil {
			return err
		}
		if *asJSON {
			return json.NewEncoder(out).Encode(subs)
		}
		tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
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
	}
}

// stamp formats a stored time, "-" for none.
func stamp(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.Format(time.RFC3339)
}

func parkedCmd(fs *flag.FlagSet) action {
	key := fs.String("key", "", "subscription key (required)")
	asJSON := fs.Bool("json", false, "print JSON")
	return func(ctx context.Context, exec evento.Executor, out io.Writer) error {
		if *key == "" {
			return fmt.Errorf("-key is required: %w", errUsage)
		}
		parked, err := exec.ParkedEvents(ctx, *key)
		if err != nil {
			return err
		}
		if *asJSON {
			return json.NewEncoder(out).Encode(parked)
		}
		tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "PARTITION\tEVENT\tAGGREGATE\tNAME\tATTEMPTS\tPARKED AT\tERROR")
		for _, p := range parked {
			fmt.Fprintf(tw, "%d\t%s\t%s/%s v%d\t%s\t%d\t%s\t%s\n", p.Partition, p.Event.ID, p.Event.AggregateType,
				p.Event.AggregateID, p.Event.Version, p.Event.Name, p.Attempts, p.ParkedAt.Format(time.RFC3339), p.Error)
		}
		return tw.Flush()
	}
}

func resetCmd(fs *flag.FlagSet) action {
	key := fs.String("key", "", "subscription key (required)")
	partition := fs.Uint("partition", 0, "reset only this partition (default: every stored partition of the key)")
	cur := fs.String("cursor", "", "new cursor (empty: from the start)")
	return func(ctx context.Context, exec evento.Executor, out io.Writer) error {
		if *key == "" {
			return fmt.Errorf("-key is required: %w", errUsage)
		}
		if *cur != "" {
			if _, _, err := evento.DecodeCursor(*cur); err != nil {
				return err
			}
		}
		one := false
		fs.Visit(func(f *flag.Flag) { one = one || f.Name == "partition" })
		if one {
			if err := exec.ResetSubscriber(ctx, *key, uint32(*partition), *cur); err != nil {
				return err
			}
			fmt.Fprintf(out, "subscriber %s/%d reset (cursor, lease and stored selection)\n", *key, *partition)
			return nil
		}
		// Every partition: a changed selection (types, routing, partition
		// count) is stored on each, and a worker is refused until all agree.
		if err := subscription.Reset(ctx, exec, *key, *cur); err != nil {
			return err
		}
		fmt.Fprintf(out, "subscriber %s reset, every partition (cursor, lease and stored selection)\n", *key)
		return nil
	}
}
