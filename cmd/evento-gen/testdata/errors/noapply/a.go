package noapply

//evento:aggregate bank/Account
type Account struct{}

type Opened struct{}

func (a *Account) ApplyOpened(*Opened) error { return nil }

//evento:event
type Closed struct{}
