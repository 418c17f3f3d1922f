package tags

//evento:aggregate bank/Account
type Account struct{}

type Inner struct{ X int }

type Opened struct {
	A string `msgpack:"a"`
	B string `msgpack:"a"`
	C string `msgpack:",inline"`
	Inner
	D any `msgpack:",omitempty"`
}

func (a *Account) ApplyOpened(*Opened) error { return nil }
