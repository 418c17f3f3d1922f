package multi

// evento:aggregate bank/Card
type Card struct{ N int }

//evento:aggregate bank/Fee
var fee = 1

//evento:agregate bank/Fee
type Fee struct{}
