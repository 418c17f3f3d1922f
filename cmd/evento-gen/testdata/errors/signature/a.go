package signature

//evento:aggregate bank/Account
type Account struct{}

type Opened struct{}
type Closed struct{}
type Moved struct{}

func (a *Account) ApplyOpened(o Opened) error      { return nil }
func (a Account) ApplyClosed(*Closed) error        { return nil }
func (a *Account) ApplyMoved(*Moved) (bool, error) { return false, nil }
func (a *Account) ApplyDiscount(pct int)           {}
