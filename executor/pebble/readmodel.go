package pebble

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	pdb "github.com/cockroachdb/pebble/v2"
	"github.com/evento-go/evento"
	"github.com/evento-go/evento/executor/storekit"
)

// tagReadModel prefixes the key-value namespaces of subscriptions:
//
//	'R' key userKey -> value
//
// A transactional subscription (subscription.Config.Transactional) writes
// its namespace in the batch that acknowledges its events, so its read
// model moves with its cursor, effectively once.
const tagReadModel byte = 'R'

func readModelPrefix(key string) []byte { return appendString([]byte{tagReadModel}, key) }

// ErrTxDone is returned by a KV used after its transaction ended.
var ErrTxDone = errors.New("pebble executor: read-model transaction is over")

// KV is a subscription's key-value namespace inside the transaction of a
// transactional handler: what it writes lands in the batch that
// acknowledges the handled events, after the lease check, or not at all.
// Reads see the transaction's own writes over the committed namespace.
// Keys are the application's, scoped to the subscription key (partitions
// share one namespace; an aggregate's keys stay in one partition when they
// are derived from its id). A KV is valid only during the handler call.
type KV struct {
	s      *Store
	prefix []byte
	b      *pdb.Batch // indexed; replaced when a savepoint rolls back
}

// KVFrom returns the namespace of the subscription a transactional handler
// runs for on a Pebble executor (subscription.Config.Transactional), or nil
// outside such a handler.
func KVFrom(ctx context.Context) *KV {
	if t, ok := storekit.AckTxFrom(ctx).(*ackTx); ok {
		return t.kv
	}
	return nil
}

func (kv *KV) key(k []byte) []byte { return append(bytes.Clone(kv.prefix), k...) }

// Get returns a copy of the value of k; ok is false when k is absent.
func (kv *KV) Get(k []byte) (value []byte, ok bool, err error) {
	if kv == nil || kv.b == nil {
		return nil, false, ErrTxDone
	}
	if err := kv.s.enter(); err != nil {
		return nil, false, err
	}
	defer kv.s.leave()
	v, closer, err := kv.b.Get(kv.key(k))
	if errors.Is(err, pdb.ErrNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("pebble executor: read model get: %w", err)
	}
	defer closer.Close()
	return bytes.Clone(v), true, nil
}

// Set sets k to value.
func (kv *KV) Set(k, value []byte) error {
	if kv == nil || kv.b == nil {
		return ErrTxDone
	}
	return kv.b.Set(kv.key(k), value, nil)
}

// Delete removes k; an absent k is not an error.
func (kv *KV) Delete(k []byte) error {
	if kv == nil || kv.b == nil {
		return ErrTxDone
	}
	return kv.b.Delete(kv.key(k), nil)
}

// Scan calls fn with every key starting with prefix and its value, in key
// order, as the transaction sees them. key and value are valid only during
// the call. An error from fn stops the scan and is returned.
func (kv *KV) Scan(prefix []byte, fn func(key, value []byte) error) error {
	if kv == nil || kv.b == nil {
		return ErrTxDone
	}
	if err := kv.s.enter(); err != nil {
		return err
	}
	defer kv.s.leave()
	lo := kv.key(prefix)
	it, err := kv.b.NewIter(&pdb.IterOptions{LowerBound: lo, UpperBound: prefixEnd(lo)})
	if err != nil {
		return fmt.Errorf("pebble executor: read model scan: %w", err)
	}
	return scanIter(it, len(kv.prefix), fn)
}

func scanIter(it *pdb.Iterator, strip int, fn func(key, value []byte) error) error {
	for ok := it.First(); ok; ok = it.Next() {
		v, err := it.ValueAndErr()
		if err != nil {
			it.Close()
			return fmt.Errorf("pebble executor: read model scan: %w", err)
		}
		if err := fn(it.Key()[strip:], v); err != nil {
			it.Close()
			return err
		}
	}
	if err := it.Close(); err != nil {
		return fmt.Errorf("pebble executor: read model scan: %w", err)
	}
	return nil
}

// ackTx is the evento.AckTx of an AcknowledgeTx: the subscription's
// namespace over an indexed batch.
type ackTx struct {
	kv *KV
}

// Savepoint runs f; when f fails, the batch is cut back to what it held
// before f, so f's writes are undone (see evento.AckTx).
func (t *ackTx) Savepoint(f func() error) error {
	kv := t.kv
	mark, count := len(kv.b.Repr()), kv.b.Count()
	ferr := f()
	if ferr == nil {
		return nil
	}
	if kv.b.Count() == count {
		return ferr
	}
	repr := bytes.Clone(kv.b.Repr()[:mark])
	binary.LittleEndian.PutUint32(repr[8:12], count) // the batch header: 8-byte seqnum, 4-byte count
	tmp := kv.s.db.NewBatch()
	defer tmp.Close()
	nb := kv.s.db.NewIndexedBatch()
	if err := tmp.SetRepr(repr); err != nil {
		nb.Close()
		return errors.Join(ferr, fmt.Errorf("pebble executor: savepoint: %w", err))
	}
	if err := nb.Apply(tmp, nil); err != nil {
		nb.Close()
		return errors.Join(ferr, fmt.Errorf("pebble executor: savepoint: %w", err))
	}
	kv.b.Close()
	kv.b = nb
	return ferr
}

// AcknowledgeTx runs fn with the subscription's key-value namespace over a
// fresh indexed batch, then, under the subscriber mutex, checks l and adds
// the Ack fn returned to the same batch and commits it (see
// evento.TxAcknowledger): the namespace's writes and the cursor land
// together or not at all.
func (s *Store) AcknowledgeTx(ctx context.Context, l evento.Lease, fn func(tx evento.AckTx) (evento.Ack, error)) error {
	// The Store is entered for each step, not across fn: a handler may
	// call the Store (each call enters it again) while Close waits.
	if err := s.enter(); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		s.leave()
		return fmt.Errorf("pebble executor: acknowledge: %w", err)
	}
	kv := &KV{s: s, prefix: readModelPrefix(l.Key), b: s.db.NewIndexedBatch()}
	s.leave()
	defer func() {
		kv.b.Close()
		kv.b = nil
	}()
	a, err := fn(&ackTx{kv: kv})
	if err != nil {
		return err
	}
	parks, err := prepareParks(l, a)
	if err != nil {
		return err
	}
	if err := s.enter(); err != nil {
		return err
	}
	defer s.leave()
	return s.subOpIn(context.WithoutCancel(ctx), "acknowledge", l.Key, l.Partition, kv.b, func(b *pdb.Batch, k []byte, rec *subRecord, found bool, now time.Time) error {
		return s.ackIn(b, k, rec, found, now, l, a, parks)
	})
}

// ReadModel is a read-only view of a subscription's key-value namespace,
// for the application. Every call reads one consistent state: a Get or a
// whole Scan sees each acknowledgement entirely or not at all.
type ReadModel struct {
	s      *Store
	prefix []byte
}

// ReadModel returns the view of subscription key's namespace.
func (s *Store) ReadModel(key string) *ReadModel {
	return &ReadModel{s: s, prefix: readModelPrefix(key)}
}

// Get returns a copy of the value of k; ok is false when k is absent.
func (r *ReadModel) Get(ctx context.Context, k []byte) (value []byte, ok bool, err error) {
	if err := r.s.enter(); err != nil {
		return nil, false, err
	}
	defer r.s.leave()
	if err := ctx.Err(); err != nil {
		return nil, false, fmt.Errorf("pebble executor: read model get: %w", err)
	}
	v, closer, err := r.s.db.Get(append(bytes.Clone(r.prefix), k...))
	if errors.Is(err, pdb.ErrNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("pebble executor: read model get: %w", err)
	}
	defer closer.Close()
	return bytes.Clone(v), true, nil
}

// Scan calls fn with every key starting with prefix and its value, in key
// order, from one point-in-time view. key and value are valid only during
// the call. An error from fn stops the scan and is returned.
func (r *ReadModel) Scan(ctx context.Context, prefix []byte, fn func(key, value []byte) error) error {
	if err := r.s.enter(); err != nil {
		return err
	}
	defer r.s.leave()
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("pebble executor: read model scan: %w", err)
	}
	lo := append(bytes.Clone(r.prefix), prefix...)
	it, err := r.s.db.NewIter(&pdb.IterOptions{LowerBound: lo, UpperBound: prefixEnd(lo)})
	if err != nil {
		return fmt.Errorf("pebble executor: read model scan: %w", err)
	}
	return scanIter(it, len(r.prefix), fn)
}

// Clear deletes the whole namespace, to rebuild the read model from the
// start together with a reset of the subscriber's cursors. Stop the
// subscription's workers first: a transaction in flight would write its
// keys after the clear.
func (r *ReadModel) Clear(ctx context.Context) error {
	if err := r.s.enter(); err != nil {
		return err
	}
	defer r.s.leave()
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("pebble executor: read model clear: %w", err)
	}
	b := r.s.db.NewBatch()
	defer b.Close()
	if err := b.DeleteRange(r.prefix, prefixEnd(r.prefix), nil); err != nil {
		return fmt.Errorf("pebble executor: read model clear: %w", err)
	}
	return r.s.commit(b)
}

// DropReadModel deletes subscription key's whole namespace
// (ReadModel(key).Clear). subscription.DropVersion calls it through
// subscription.ReadModelDropper when it drops a read-model version.
func (s *Store) DropReadModel(ctx context.Context, key string) error {
	return s.ReadModel(key).Clear(ctx)
}
