// Package evhttp serves an evento store over HTTP: a JSON view of events and
// pages, a read API with RFC 9457 problem details, and a server-rendered
// admin UI.
//
// # The JSON view
//
// NewEvent and NewConnection turn an evento.Event and an evento.Page into
// documented JSON shapes (camelCase, data as JSON through the event's
// registered Go type, cursors but no internal positions); WritePage writes
// a page or an error in one call from any handler, and Status maps any
// evento error to an HTTP status and a client-safe message.
//
// An event renders as
//
//	{"id":"01J…","aggregateType":"bank/Account","aggregateId":"01J…","version":2,
//	 "name":"MoneyDeposited","routingKey":"","timestamp":"2025-01-02T03:04:05.123456Z",
//	 "metadata":{"actor":"ada"},"cursor":"…","data":{"Amount":50000}}
//
// and a page as a Relay connection,
//
//	{"edges":[{"cursor":"…","node":{…}}],
//	 "pageInfo":{"hasNextPage":true,"hasPreviousPage":false,"startCursor":"…","endCursor":"…"}}
//
// # The API and the UI
//
// New returns a Handler that serves both; see Handler for the routes. Errors
// are application/problem+json with a stable "title" and "code": 400 for bad
// cursors, pagination arguments and queries, 404 for an unknown aggregate,
// 403 for a write action without Options.AllowWrites or from another origin,
// 503 when the store is closed, 500 otherwise.
//
// The UI is plain HTML rendered on the server with html/template and one
// embedded stylesheet: it works without JavaScript and fetches nothing from
// the network. Its write actions (replay and discard parked events) are
// POST forms refused unless Options.AllowWrites is set, and refused from
// other origins (net/http's CrossOriginProtection).
package evhttp
