package multi

//evento:aggregate bank/Loan
type Loan struct {
	Amount int
	total  int
}

//evento:event Lent
//evento:event Loaned
type Lent struct{ Amount int }

func (l *Loan) ApplyLent(e *Lent) { l.Amount += e.Amount; l.total++ }
