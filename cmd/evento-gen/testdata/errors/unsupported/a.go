package unsupported

import "fmt"

//evento:aggregate bank/Account
type Account struct{}

type Opened struct {
	C chan int
	F func()
	S fmt.Stringer
	M map[string]complex128
	A any
}

func (a *Account) ApplyOpened(*Opened) error { return nil }
