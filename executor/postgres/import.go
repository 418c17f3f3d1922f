package postgres

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/evento-go/evento"
	"github.com/evento-go/evento/executor/storekit"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

var _ evento.Importer = (*Store)(nil)

// importSQL inserts events with their IDs and timestamps under the
// ordering lock Write takes (lockCTE), with the transaction value Write
// uses, so imported events take their place in the global order exactly
// as written ones do. Versions and routing keys are checked by the
// statement before it, in the same transaction (see Import).
func (q *queries) importSQL() string {
	with, from := q.lockCTE("")
	return with + `
INSERT INTO ` + q.ev + ` (tx, id, aggregate_type, aggregate_id, version, name, routing_key, data, metadata, ts)
SELECT ` + q.txValue + `, u.id, u.t, u.i, u.v, u.n, u.r, u.d, u.m, u.ts
FROM ` + from + `, unnest($1::bytea[], $2::bytea[], $3::bytea[], $4::bigint[], $5::bytea[], $6::bytea[], $7::bytea[], $8::bytea[], $9::timestamptz[])
	WITH ORDINALITY AS u(id, t, i, v, n, r, d, m, ts, ord)
ORDER BY u.ord
RETURNING tx, seq`
}

// Import appends events keeping their IDs and timestamps (see
// evento.Importer).
//
// It runs one READ COMMITTED transaction of two statements: the first
// reads each aggregate's current version and routing key (the query a
// conflicting Write reports with) and refuses the batch if one does not
// continue; the second takes Write's ordering lock and inserts. An
// aggregate's event committed by another writer in between makes the
// insert fail on the unique (type, id, version) key, reported as a
// *evento.VersionConflictError. A predecessor the first statement saw had
// committed before this transaction's id is assigned (at the insert), so
// it sorts before the imported events, as with Write.
func (s *Store) Import(ctx context.Context, events []evento.Event) error {
	if err := s.check(); err != nil {
		return err
	}
	spans, err := storekit.ValidateBatch(events)
	if err != nil {
		return err
	}
	if err := storekit.ValidateImport(events); err != nil {
		return err
	}
	n := len(events)
	a := batchArrays{
		types: make([][]byte, n), aggIDs: make([][]byte, n), names: make([][]byte, n), routing: make([][]byte, n),
		data: make([][]byte, n), meta: make([][]byte, n), versions: make([]int64, n),
	}
	idCol, tsCol := make([][]byte, n), make([]time.Time, n)
	for i := range events {
		e := &events[i]
		if e.Version > math.MaxInt64 {
			return &evento.InvalidEventError{Index: i, Reason: fmt.Sprintf("version %d is above PostgreSQL's bigint range", e.Version)}
		}
		m, err := storekit.EncodeMetadata(e.Metadata)
		if err != nil {
			return &evento.InvalidEventError{Index: i, Reason: "metadata: " + err.Error()}
		}
		a.types[i], a.aggIDs[i], a.names[i] = []byte(e.AggregateType), []byte(e.AggregateID), []byte(e.Name)
		a.data[i], a.meta[i], a.versions[i] = e.Data, m, int64(e.Version)
		idCol[i], tsCol[i] = e.ID[:], e.Timestamp
	}
	spanT, spanI := make([][]byte, len(spans)), make([][]byte, len(spans))
	for i, sp := range spans {
		spanT[i], spanI[i] = []byte(sp.Type), []byte(sp.ID)
	}

	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return s.wrap("import", err)
	}
	defer conn.Release()
	// A failed statement leaves the transaction open: end it before the
	// connection goes back to the pool.
	rollback := func() {
		if conn.Conn().PgConn().TxStatus() != 'I' {
			if _, err := conn.Exec(context.WithoutCancel(ctx), "ROLLBACK"); err != nil {
				conn.Conn().PgConn().Close(context.Background()) // the pool drops a closed connection
			}
		}
	}

	b := &pgx.Batch{}
	b.Queue(beginWrite)
	b.Queue(s.q.versions, spanT, spanI)
	actual, keys, err := s.scanVersions(conn.SendBatch(ctx, b), len(spans))
	if err != nil {
		rollback()
		return s.wrap("import: read versions", err)
	}
	for i := range spans {
		sp := &spans[i]
		if actual[i] != sp.Expected {
			rollback()
			return &evento.VersionConflictError{AggregateType: sp.Type, AggregateID: sp.ID, Expected: sp.Expected, Actual: actual[i]}
		}
		key, err := sp.Routing(keys[i])
		if err != nil {
			rollback()
			return err
		}
		if key != sp.RoutingKey {
			storekit.SetRouting(events, sp, key)
		}
	}
	for i := range events {
		a.routing[i] = []byte(events[i].RoutingKey)
	}

	b = &pgx.Batch{}
	b.Queue(s.q.importSQL(), idCol, a.types, a.aggIDs, a.versions, a.names, a.routing, a.data, a.meta, tsCol)
	b.Queue("COMMIT")
	br := conn.SendBatch(ctx, b)
	pos := make([]evento.Position, 0, n)
	rows, err := br.Query()
	if err == nil {
		var tx uint64
		var seq int64
		_, err = pgx.ForEachRow(rows, []any{&tx, &seq}, func() error {
			pos = append(pos, evento.Position{Tx: tx, Seq: uint64(seq)})
			return nil
		})
	}
	if err == nil {
		_, err = br.Exec() // COMMIT
	}
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	if err == nil && len(pos) != n {
		err = fmt.Errorf("inserted %d of %d events", len(pos), n)
	}
	if err != nil {
		rollback()
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) && pgErr.Code == "23505" {
			return s.importConflict(ctx, spans, spanT, spanI, err)
		}
		return s.wrap("import", err)
	}
	for i := range events {
		events[i].Position = pos[i]
	}
	s.notifier.committed()
	return nil
}

// scanVersions reads the results of a batch of one BEGIN and the versions
// query: each span's current version and routing key. It closes br.
func (s *Store) scanVersions(br pgx.BatchResults, spans int) (actual []uint64, keys []string, err error) {
	if _, err = br.Exec(); err == nil {
		var rows pgx.Rows
		if rows, err = br.Query(); err == nil {
			var v int64
			var k []byte
			_, err = pgx.ForEachRow(rows, []any{&v, &k}, func() error {
				actual, keys = append(actual, uint64(v)), append(keys, string(k))
				return nil
			})
		}
	}
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	if err == nil && len(actual) != spans {
		err = fmt.Errorf("%d versions for %d aggregates", len(actual), spans)
	}
	return actual, keys, err
}

// importConflict reports the aggregate whose version another writer took
// while an import ran: it reads the versions again, in a transaction of
// their own.
func (s *Store) importConflict(ctx context.Context, spans []storekit.Span, spanT, spanI [][]byte, cause error) error {
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return s.wrap("import: read versions after conflict", err)
	}
	defer conn.Release()
	b := &pgx.Batch{}
	b.Queue(beginRead)
	b.Queue(s.q.versions, spanT, spanI)
	b.Queue("COMMIT")
	actual, _, err := s.scanVersions(conn.SendBatch(ctx, b), len(spans))
	if err != nil {
		return s.wrap("import: read versions after conflict", err)
	}
	for i := range spans {
		if sp := &spans[i]; actual[i] != sp.Expected {
			return &evento.VersionConflictError{AggregateType: sp.Type, AggregateID: sp.ID, Expected: sp.Expected, Actual: actual[i]}
		}
	}
	return s.wrap("import", cause)
}
