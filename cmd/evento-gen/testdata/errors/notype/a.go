package notype

//evento:aggregate
type Account struct{}
