package unexported

//evento:aggregate bank/Account
type Account struct{}

type Opened struct {
	Owner string
	note  string
	skip  string `msgpack:"-"`
}

func (a *Account) ApplyOpened(*Opened) error { return nil }
