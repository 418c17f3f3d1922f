package names

//evento:aggregate bank/Account
type Account struct{ Balance int64 }

type Deposited struct{ Amount int64 }

func (a *Account) ApplyDeposited(d *Deposited) { a.Balance += d.Amount }

// DepositedHandler is a user's type with a generated name.
type DepositedHandler struct{}

// AccountAppend is a user's function with a generated name.
func AccountAppend() {}
