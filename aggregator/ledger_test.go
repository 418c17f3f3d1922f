package aggregator_test

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"time"

	"github.com/evento-go/evento"
	"github.com/evento-go/evento/aggregator"
)

const ledgerType = "test/Ledger"

// ledger is a test aggregate whose state has the shapes a snapshot must
// restore exactly: maps (of scalars, slices and pointers), slices of
// structs, nested structs, nil and non-nil pointers, and time values. Its
// times come from event payloads, which decode the way snapshots do (see
// the snapshot package doc on time locations).
//
// No two fields share a pointer: a snapshot restores pointers as copies.
type ledger struct {
	Owner    string
	Opened   time.Time
	Balances map[string]int64
	Entries  []entry
	Tags     map[string][]string
	ByRef    map[string]*entry
	Last     *entry
	Limits   *limits
	Closed   bool
	N        uint64

	applied int // ApplyEvent calls on this value; not in snapshots
}

type entry struct {
	Ref      string
	Currency string
	Amount   int64
	At       time.Time
	Meta     map[string]string
}

type limits struct {
	Daily int64
	Until time.Time
	Notes []string
}

// Posted records an entry.
type Posted struct {
	Ref      string
	Currency string
	Amount   int64
	At       time.Time
	Meta     map[string]string
}

// Tagged sets (or, with no values, clears to an empty list) a tag.
type Tagged struct {
	Key    string
	Values []string
}

// LimitSet sets the limits; a zero Daily clears them (nil pointer).
type LimitSet struct {
	Daily int64
	Until time.Time
	Notes []string
}

// Reopened renames the owner and sets the opening time.
type Reopened struct {
	Owner string
	At    time.Time
}

// Purged empties a currency's balance and drops its entries.
type Purged struct{ Currency string }

func (Posted) EventName() string            { return "Posted" }
func (Tagged) EventName() string            { return "Tagged" }
func (LimitSet) EventName() string          { return "LimitSet" }
func (Reopened) EventName() string          { return "Reopened" }
func (Purged) EventName() string            { return "Purged" }
func (Posted) EventAggregateType() string   { return ledgerType }
func (Tagged) EventAggregateType() string   { return ledgerType }
func (LimitSet) EventAggregateType() string { return ledgerType }
func (Reopened) EventAggregateType() string { return ledgerType }
func (Purged) EventAggregateType() string   { return ledgerType }

func newLedger() *ledger { return &ledger{} }

func (*ledger) AggregateType() string    { return ledgerType }
func (*ledger) SnapshotRevision() string { return "l1" }

func (l *ledger) ApplyEvent(e *evento.Event) error {
	switch e.Name {
	case "Posted":
		var d Posted
		if err := e.Decode(&d); err != nil {
			return err
		}
		if l.Balances == nil {
			l.Balances = map[string]int64{}
		}
		l.Balances[d.Currency] += d.Amount
		en := entry{Ref: d.Ref, Currency: d.Currency, Amount: d.Amount, At: d.At, Meta: d.Meta}
		l.Entries = append(l.Entries, en)
		if l.ByRef == nil {
			l.ByRef = map[string]*entry{}
		}
		c := en
		c.Meta = maps.Clone(en.Meta)
		l.ByRef[d.Ref] = &c
		last := en
		last.Meta = maps.Clone(en.Meta)
		l.Last = &last
	case "Tagged":
		var d Tagged
		if err := e.Decode(&d); err != nil {
			return err
		}
		if l.Tags == nil {
			l.Tags = map[string][]string{}
		}
		l.Tags[d.Key] = append([]string{}, d.Values...)
	case "LimitSet":
		var d LimitSet
		if err := e.Decode(&d); err != nil {
			return err
		}
		if d.Daily == 0 {
			l.Limits = nil
		} else {
			l.Limits = &limits{Daily: d.Daily, Until: d.Until, Notes: d.Notes}
		}
	case "Reopened":
		var d Reopened
		if err := e.Decode(&d); err != nil {
			return err
		}
		l.Owner, l.Opened, l.Closed = d.Owner, d.At, false
	case "Purged":
		var d Purged
		if err := e.Decode(&d); err != nil {
			return err
		}
		delete(l.Balances, d.Currency) // may leave an empty, non-nil map
		kept := l.Entries[:0:0]
		for _, en := range l.Entries {
			if en.Currency != d.Currency {
				kept = append(kept, en)
			}
		}
		l.Entries = kept // may be empty, non-nil
		for ref, en := range l.ByRef {
			if en.Currency == d.Currency {
				delete(l.ByRef, ref)
			}
		}
		if l.Last != nil && l.Last.Currency == d.Currency {
			l.Last = nil
		}
		l.Closed = len(l.Balances) == 0
	default:
		return fmt.Errorf("ledger: %q: %w", e.Name, aggregator.ErrUnknownEvent)
	}
	l.N = e.Version
	l.applied++
	return nil
}

// state is the ledger without its bookkeeping, for comparisons.
func (l *ledger) state() ledger { s := *l; s.applied = 0; return s }

// randomLedgerEvent draws a ledger event; times have random nanoseconds
// and some are zero.
func randomLedgerEvent(rng *rand.Rand) aggregator.EventData {
	at := func() time.Time {
		if rng.IntN(5) == 0 {
			return time.Time{}
		}
		return time.Unix(1_600_000_000+rng.Int64N(100_000_000), rng.Int64N(1e9))
	}
	cur := []string{"EUR", "USD", "JPY"}[rng.IntN(3)]
	switch rng.IntN(8) {
	case 0, 1, 2:
		var meta map[string]string
		switch rng.IntN(3) {
		case 1:
			meta = map[string]string{}
		case 2:
			meta = map[string]string{"by": string(rune('a' + rng.IntN(26))), "ch": "web"}
		}
		return Posted{Ref: fmt.Sprintf("r%d", rng.IntN(30)), Currency: cur, Amount: rng.Int64N(2000) - 1000, At: at(), Meta: meta}
	case 3:
		vals := make([]string, rng.IntN(3))
		for i := range vals {
			vals[i] = string(rune('a' + rng.IntN(26)))
		}
		return Tagged{Key: []string{"k1", "k2"}[rng.IntN(2)], Values: vals}
	case 4:
		var notes []string
		if rng.IntN(2) == 0 {
			notes = []string{"n", fmt.Sprint(rng.IntN(9))}
		}
		return LimitSet{Daily: rng.Int64N(3) * 100, Until: at(), Notes: notes}
	case 5:
		return Reopened{Owner: string(rune('A' + rng.IntN(26))), At: at()}
	default:
		return Purged{Currency: cur}
	}
}
