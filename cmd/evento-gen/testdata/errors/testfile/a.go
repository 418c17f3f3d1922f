package testfile

//evento:aggregate bank/Account
type Account struct{ Open bool }

type Opened struct{}

func (a *Account) ApplyOpened(*Opened) { a.Open = true }
