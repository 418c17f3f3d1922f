package main

import (
	"context"
	"encoding/json"
	"errors"
	"regexp"
	"strings"
	"testing"

	"github.com/evento-go/evento"
	"github.com/evento-go/evento/executor"
	"github.com/evento-go/evento/subscription"
)

// TestCLISubscribersLagAndReset: subscribers shows the cursor position,
// the pending events computed now (not the lag recorded at the last
// acknowledgement), the last acknowledgement and the last update; reset
// clears the stored selection of every partition so another selection may
// start.
func TestCLISubscribersLagAndReset(t *testing.T) {
	dsn := seed(t)
	ctx := context.Background()
	exec, err := executor.Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	nop := func(context.Context, *evento.Event) error { return nil }
	if err := subscription.New("rm").HandleAll("bank/Account", nop).Partitions(2).CatchUp(ctx, exec); err != nil {
		t.Fatal(err)
	}
	var more []evento.Event
	for v := uint64(1); v <= 5; v++ {
		more = append(more, evento.Event{AggregateType: "bank/Account", AggregateID: "a9", Version: v, Name: "MoneyDeposited", Data: []byte{0x80}})
	}
	if err := exec.Write(ctx, more); err != nil {
		t.Fatal(err)
	}
	if err := exec.Close(); err != nil {
		t.Fatal(err)
	}

	out, _, code := cli(t, "-dsn", dsn, "subscribers")
	if code != 0 {
		t.Fatalf("subscribers: code %d\n%s", code, out)
	}
	for _, col := range []string{"CURSOR", "PENDING", "LAST ACK", "UPDATED"} {
		if !strings.Contains(out, col) {
			t.Errorf("subscribers output has no %s column:\n%s", col, out)
		}
	}
	// a9's partition has 5 pending, the other none; both acknowledged.
	part := subscription.PartitionOf("a9", 2)
	row := regexp.MustCompile(`(?m)^rm\s+` + map[uint32]string{0: "0", 1: "1"}[part] + `\s+(\S+)\s+(\S+)\s+(\S+ ago)\s`)
	m := row.FindStringSubmatch(out)
	if m == nil || m[1] == "start" || m[2] != "5" {
		t.Errorf("subscribers row of rm/%d = %q, want a cursor position, 5 pending (exact) and the last ack:\n%s", part, m, out)
	}
	if !regexp.MustCompile(`(?m)^balances\s+0\s+start\s+\S+\s+never\s`).MatchString(out) {
		t.Errorf("never-acknowledged subscriber balances/0 not shown at the start with no ack:\n%s", out)
	}
	out, _, code = cli(t, "-dsn", dsn, "subscribers", "-json")
	var js []map[string]any
	if code != 0 || json.Unmarshal([]byte(out), &js) != nil || len(js) != 3 {
		t.Fatalf("subscribers -json: code %d\n%s", code, out)
	}
	if sel, _ := js[1]["selection"].(string); !strings.Contains(sel, `"bank/Account"`) || !strings.Contains(sel, "2 partitions") {
		t.Errorf("subscribers -json Selection = %v, want the stored selection", js[1]["selection"])
	}

	// Another selection is refused until reset (every partition).
	wider := func() error {
		exec, err := executor.Open(ctx, dsn)
		if err != nil {
			t.Fatal(err)
		}
		defer exec.Close()
		return subscription.New("rm").HandleAll("bank/Account", nop).CatchUp(ctx, exec)
	}
	if err := wider(); !errors.Is(err, subscription.ErrSelectionChanged) {
		t.Fatalf("CatchUp with 1 partition instead of 2 = %v, want ErrSelectionChanged", err)
	}
	if out, _, code = cli(t, "-dsn", dsn, "reset", "-key", "rm", "-y"); code != 0 || !strings.Contains(out, "every partition") {
		t.Fatalf("reset: code %d\n%s", code, out)
	}
	if err := wider(); err != nil {
		t.Fatalf("CatchUp with the new selection after reset: %v", err)
	}
}
