package testfile

//evento:aggregate bank/Loan
type Loan struct{ N int }

type Closed struct{}

func (a *Account) ApplyClosed(*Closed) { a.Open = false }

func (a *Account) apply() {}
