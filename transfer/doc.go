// Package transfer exports an evento store's events as JSON Lines and
// imports them into another store, of the same backend or another: the
// portable path for migrations between Pebble, SQLite and PostgreSQL, and
// for moving a PostgreSQL store at all (a pg_dump of the schema is the
// other way).
//
// Both directions stream in constant memory: Export pages through the log
// with the store's cursors and writes each event as it reads it; Import
// reads one line at a time and commits batches of a few hundred events.
//
// # Format (version 1)
//
// A file is UTF-8 JSON Lines: one JSON object per line, each line ending
// in "\n". The first line is the header, then one line per event in global
// order, then the trailer:
//
//	{"format":"evento-export","version":1,"backend":"pebble","createdAt":"2025-01-02T03:04:05.123456Z"}
//	{"id":"01J…","aggregateType":"bank/Account","aggregateId":"a-1","version":1,"name":"Opened","routingKey":"eu","timestamp":"2025-01-02T03:04:05.123456Z","metadata":{"correlationId":"c-1"},"cursor":"gqF…","payload":"gaNvd25lcqNib2I="}
//	{"end":true,"events":1,"cursor":"gqF…"}
//
// Header fields: format is always "evento-export"; version is the format
// version (an importer refuses a newer one); backend names the source's
// backend; createdAt is when the export began; after, when present, is the
// source cursor the export started after (a resumed export).
//
// Event fields use the names of the JSON view of events (package evhttp):
// id (the ULID), aggregateType, aggregateId, version, name, routingKey (""
// for none), timestamp (RFC 3339, UTC, microseconds), metadata
// (correlationId, causationId, actor, extra; empty ones left out) and
// cursor (the event's cursor in the source store: only the source accepts
// it, for resuming an export). payload is the raw msgpack data, standard
// base64, left out when the event has none. Import uses the payload bytes
// as they are, so the imported events carry the same bytes; the JSON view's
// decoded data field is not written (it would need the payload types and
// is lossy).
//
// The trailer says how many event lines the file holds and the last one's
// cursor. An import that reaches the end of the input without a trailer
// reports ErrTruncated (the events before it are imported; see Resume).
//
// # Guarantees
//
// Import writes through evento.Importer, which keeps each event's ID and
// timestamp and checks versions and routing keys as Write does. Into an
// empty store, an import reproduces the exported events in the same order
// with the same IDs, versions, timestamps, metadata and payload bytes (the
// positions are the new store's). Import refuses a store that already
// holds events (ErrNotEmpty) unless ImportOptions.Append is set; appended
// events must still continue their aggregates' versions.
//
// # Resuming
//
// An interrupted export is continued with ExportOptions.After set to the
// cursor of the last event line written (ExportResult.Cursor, or the last
// complete line's cursor field), into a second file; import the files in
// order, the second with Append. An interrupted import is continued by
// importing the same file again with ImportOptions.Resume: it skips the
// lines up to and including the store's last event, found by its ID.
package transfer
