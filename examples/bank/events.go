package main

// The events of a bank account. Each is a plain struct recorded
// msgpack-encoded; EventName names it in the store and EventAggregateType
// ties it to the Account aggregate, so the commit builder refuses it for
// another aggregate type. evento-gen will generate these two methods.

// AccountOpened opens an account.
type AccountOpened struct {
	Owner string
	// OverdraftLimit is how far below zero the balance may go, in cents.
	OverdraftLimit int64
}

// MoneyDeposited adds money to an account.
type MoneyDeposited struct {
	Amount int64
}

// MoneyWithdrawn takes money out of an account.
type MoneyWithdrawn struct {
	Amount int64
}

// TransferSent records the sending side of a transfer.
type TransferSent struct {
	TransferID string
	To         string
	Amount     int64
}

// TransferReceived records the receiving side of a transfer.
type TransferReceived struct {
	TransferID string
	From       string
	Amount     int64
}

// EventName implements aggregator.EventData.
func (AccountOpened) EventName() string { return "AccountOpened" }

// EventName implements aggregator.EventData.
func (MoneyDeposited) EventName() string { return "MoneyDeposited" }

// EventName implements aggregator.EventData.
func (MoneyWithdrawn) EventName() string { return "MoneyWithdrawn" }

// EventName implements aggregator.EventData.
func (TransferSent) EventName() string { return "TransferSent" }

// EventName implements aggregator.EventData.
func (TransferReceived) EventName() string { return "TransferReceived" }

// EventAggregateType implements aggregator.AggregateEvent.
func (AccountOpened) EventAggregateType() string { return AccountType }

// EventAggregateType implements aggregator.AggregateEvent.
func (MoneyDeposited) EventAggregateType() string { return AccountType }

// EventAggregateType implements aggregator.AggregateEvent.
func (MoneyWithdrawn) EventAggregateType() string { return AccountType }

// EventAggregateType implements aggregator.AggregateEvent.
func (TransferSent) EventAggregateType() string { return AccountType }

// EventAggregateType implements aggregator.AggregateEvent.
func (TransferReceived) EventAggregateType() string { return AccountType }
