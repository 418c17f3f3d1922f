package main

import (
	"bytes"
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/evento-go/evento"
	"github.com/evento-go/evento/executor"
)

func seed(t *testing.T) string {
	t.Helper()
	ctx := context.Background()
	dsn := "pebble:" + filepath.Join(t.TempDir(), "data")
	exec, err := executor.Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	data, _ := evento.Marshal(map[string]any{"amount": 10})
	events := []evento.Event{
		{AggregateType: "bank/Account", AggregateID: "a1", Version: 1, Name: "AccountOpened", Data: data},
		{AggregateType: "bank/Account", AggregateID: "a1", Version: 2, Name: "MoneyDeposited", Data: data},
		// An aggregate's routing key is fixed by its first event.
		{AggregateType: "bank/Account", AggregateID: "a2", Version: 1, Name: "MoneyDeposited", Data: data, RoutingKey: "eu"},
	}
	if err := exec.Write(ctx, events); err != nil {
		t.Fatal(err)
	}
	if _, err := exec.ClaimLease(ctx, "balances", 0, "w1", 60e9); err != nil {
		t.Fatal(err)
	}
	if err := exec.Close(); err != nil {
		t.Fatal(err)
	}
	return dsn
}

func cli(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := run(context.Background(), args, strings.NewReader(""), &out, &errOut)
	return out.String(), errOut.String(), code
}

func TestCLI(t *testing.T) {
	dsn := seed(t)

	out, errOut, code := cli(t, "-dsn", dsn, "events", "-type", "bank/Account", "-first", "2")
	if code != 0 || !strings.Contains(out, "AccountOpened") || !strings.Contains(out, "hasNextPage=true") {
		t.Fatalf("events: code %d\n%s\n%s", code, out, errOut)
	}

	out, _, code = cli(t, "-dsn", dsn, "events", "-routing", "eu", "-json")
	var conn struct {
		Edges []struct {
			Cursor string `json:"cursor"`
			Node   struct {
				Name string         `json:"name"`
				Data map[string]any `json:"data"`
			} `json:"node"`
		} `json:"edges"`
		PageInfo map[string]any `json:"pageInfo"`
	}
	if code != 0 || json.Unmarshal([]byte(out), &conn) != nil || len(conn.Edges) != 1 || conn.Edges[0].Node.Name != "MoneyDeposited" || conn.Edges[0].Node.Data["amount"] == nil {
		t.Fatalf("events -json: code %d: %s", code, out)
	}

	out, _, code = cli(t, "-dsn", dsn, "aggregate", "-type", "bank/Account", "-id", "a1")
	if code != 0 || strings.Count(out, "bank/Account/a1") != 2 {
		t.Fatalf("aggregate: code %d\n%s", code, out)
	}
	if _, errOut, code = cli(t, "-dsn", dsn, "aggregate", "-type", "bank/Account", "-id", "nope"); code != 1 || !strings.Contains(errOut, "not found") {
		t.Fatalf("missing aggregate: code %d %s", code, errOut)
	}

	if out, _, code = cli(t, "-dsn", dsn, "head"); code != 0 || strings.TrimSpace(out) != "3" {
		t.Fatalf("head: code %d %q", code, out)
	}

	if out, _, code = cli(t, "-dsn", dsn, "subscribers"); code != 0 || !strings.Contains(out, "balances") || !strings.Contains(out, "w1") {
		t.Fatalf("subscribers: code %d\n%s", code, out)
	}
	if out, _, code = cli(t, "-dsn", dsn, "reset", "-key", "balances", "--yes"); code != 0 || !strings.Contains(out, "reset") {
		t.Fatalf("reset: code %d\n%s", code, out)
	}
	if out, _, code = cli(t, "-dsn", dsn, "parked", "-key", "balances"); code != 0 || !strings.Contains(out, "PARTITION") {
		t.Fatalf("parked: code %d\n%s", code, out)
	}
}

func TestCLIBadInput(t *testing.T) {
	dsn := seed(t)
	cases := []struct {
		args []string
		code int
		want string
	}{
		{nil, 2, "missing command"},
		{[]string{"-dsn", dsn, "frobnicate"}, 2, "unknown command"},
		{[]string{"-dsn", dsn, "head", "extra"}, 2, "takes no arguments"},
		{[]string{"-dsn", "nosuch://x", "head"}, 1, "unknown scheme"},
		{[]string{"-dsn", dsn, "events", "-after", "garbage"}, 2, "invalid cursor"},
		{[]string{"-dsn", dsn, "events", "-first", "100000"}, 1, "maximum page size"},
		{[]string{"-dsn", dsn, "events", "-id", "x"}, 2, "need --type"},
		{[]string{"-dsn", dsn, "reset", "-key", "balances", "-cursor", "nope"}, 2, "invalid cursor"},
		{[]string{"-dsn", dsn, "parked"}, 2, "-key is required"},
	}
	for _, c := range cases {
		_, errOut, code := cli(t, c.args...)
		if code != c.code || !strings.Contains(errOut, c.want) {
			t.Errorf("evento %v: code %d (want %d), stderr %q (want %q)", c.args, code, c.code, errOut, c.want)
		}
	}
}
