package dupname

//evento:aggregate bank/Account
type Account struct{}

//evento:event Opened
type Created struct{}

type Opened struct{}

func (a *Account) ApplyCreated(*Created) error { return nil }
func (a *Account) ApplyOpened(*Opened) error   { return nil }
