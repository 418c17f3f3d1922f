package snapshot

import "sync"

//evento:aggregate bank/Account
type Account struct {
	Owner  string
	total  int
	Notify chan int
	Items  map[string]Item
	Meta   struct{ seen bool }
	Base
	Log []*Entry
	// index is rebuilt from Items by Index, so it need not survive a snapshot.
	index map[string]int `msgpack:"-"`
	mu    sync.Mutex     `msgpack:"-"`
	Last  *Opened
}

type Base struct{ ID string }

type Item struct {
	Qty   int
	price int
}

type Entry struct{ Note string }

type Opened struct{ Owner string }

func (a *Account) ApplyOpened(e *Opened) { a.Owner = e.Owner }

// Ledger encodes its own snapshots, so evento-gen leaves its fields alone.
//
//evento:aggregate bank/Ledger
type Ledger struct{ n int }

func (l *Ledger) MarshalMsgpack() ([]byte, error) { return nil, nil }
func (l *Ledger) UnmarshalMsgpack([]byte) error   { return nil }

type Posted struct{}

func (l *Ledger) ApplyPosted(*Posted) { l.n++ }
