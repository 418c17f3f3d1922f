// Package storekit is what an executor implementation needs: the helpers
// every evento storage backend calls so that all of them check, order and
// encode the same way. Application code does not import it; it reads and
// writes through the interfaces of package evento. A third-party backend
// implements evento.Executor with these helpers and proves itself against
// the conformance suite, executor/executortest.
//
// # Writes
//
// [ValidateBatch] checks a batch before it is written and returns one [Span]
// per aggregate; the backend compares each span's Expected with the stored
// version and applies the routing-key rule with [Span.Routing] and
// [SetRouting], all in the one atomic write. An import (evento.Importer)
// also passes [ValidateImport]. [ULIDSource] hands out the event IDs,
// strictly increasing, inside the commit's critical section.
//
// # Reads
//
// [EncodeCursor] and [DecodeCursor] are the event cursor codec
// (Event.Cursor encodes the same bytes); [NewPage] turns the rows of a read
// into an evento.Page with its Relay page info.
//
// # Encoding
//
// [EncodeMetadata] and [DecodeMetadata] are the stored form of
// evento.Metadata.
//
// # Subscriber stores
//
// [CheckClaim], [CheckRenew], [CheckSelection] and [CheckPresence] are the
// subscriber store's input rules, written once so every backend refuses the
// same calls with an error wrapping evento.ErrInvalidSubscriberArgs.
// [WithAckTx] and [AckTxFrom] carry an AcknowledgeTx's transaction in a
// handler's context.
//
// Errors stay evento's: every error these helpers return wraps one of the
// sentinels of package evento (ErrInvalidEvent, ErrRoutingKey,
// ErrInvalidCursor, ErrDecode, ErrInvalidSubscriberArgs), so callers test
// them with errors.Is whichever backend they use.
package storekit
