package shared

//evento:aggregate bank/Account
type Account struct{}

//evento:aggregate bank/Loan
type Loan struct{}

type Opened struct{}

func (a *Account) ApplyOpened(*Opened) error { return nil }
func (l *Loan) ApplyOpened(*Opened) error    { return nil }
