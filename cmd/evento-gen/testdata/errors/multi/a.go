package multi

//evento:aggregate bank//Account
type Account struct{ Balance int }

type Opened struct {
	Owner string
	note  string
}

func (a *Account) ApplyOpened(*Opened) {}
