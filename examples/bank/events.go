package main

// The events of a bank account. Each is a plain struct recorded
// msgpack-encoded. An event is any struct that Account has an Apply method
// for; evento-gen (account_evento.go) gives each one EventName and
// EventAggregateType, so the commit builder refuses it for another
// aggregate type, and fast msgpack codecs.

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
