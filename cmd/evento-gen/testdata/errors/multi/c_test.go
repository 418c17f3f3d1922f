package multi

//evento:aggregate bank/Fake
type Fake struct{}
