package rawengine

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/evento-go/evento"
	"github.com/evento-go/evento/executor/storekit"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/oklog/ulid/v2"
)

// PostgresSchema is the minimal PostgreSQL table (${table} is the quoted,
// schema-qualified name): one row per event, an identity primary key as
// position and the unique (aggregate_type, aggregate_id, version), which
// also serves aggregate loads.
const PostgresSchema = `CREATE TABLE IF NOT EXISTS ${table} (
	seq            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	id             bytea  NOT NULL,
	aggregate_type bytea  NOT NULL,
	aggregate_id   bytea  NOT NULL,
	version        bigint NOT NULL,
	name           bytea  NOT NULL,
	routing_key    bytea  NOT NULL,
	data           bytea,
	metadata       bytea,
	ts             timestamptz NOT NULL,
	UNIQUE (aggregate_type, aggregate_id, version)
)`

// Postgres is the minimal event store on PostgreSQL through pgx: the table
// [PostgresSchema]. One event is one autocommit INSERT … RETURNING seq;
// several are one COPY (one statement, one commit). Positions come from the
// identity column, so concurrent writers can commit out of order.
type Postgres struct {
	pool  *pgxpool.Pool
	owns  bool
	table string
	ulids *storekit.ULIDSource
	ins   string
	load  string
	scan  string
	ident pgx.Identifier
}

// OpenPostgres connects to connString (a pgx connection string; it must not
// carry evento's own options such as schema=) and creates the table
// events_raw in schema (which must exist) if missing.
func OpenPostgres(ctx context.Context, connString, schema string) (*Postgres, error) {
	pool, err := pgxpool.New(ctx, connString)
	if err != nil {
		return nil, fmt.Errorf("rawengine: postgres: %w", err)
	}
	p, err := NewPostgres(ctx, pool, schema)
	if err != nil {
		pool.Close()
		return nil, err
	}
	p.owns = true
	return p, nil
}

// NewPostgres is OpenPostgres over a ready pool, which Close leaves open.
func NewPostgres(ctx context.Context, pool *pgxpool.Pool, schema string) (*Postgres, error) {
	ident := pgx.Identifier{schema, "events_raw"}
	t := ident.Sanitize()
	p := &Postgres{pool: pool, table: t, ident: ident, ulids: storekit.NewULIDSource(),
		ins: `INSERT INTO ` + t + ` (id, aggregate_type, aggregate_id, version, name, routing_key, data, metadata, ts)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING seq`,
		load: `SELECT seq, id, aggregate_type, aggregate_id, version, name, routing_key, data, metadata, ts FROM ` + t + `
WHERE aggregate_type = $1 AND aggregate_id = $2 ORDER BY version`,
		scan: `SELECT seq, id, aggregate_type, aggregate_id, version, name, routing_key, data, metadata, ts FROM ` + t + `
WHERE seq > $1 ORDER BY seq LIMIT $2`,
	}
	if _, err := pool.Exec(ctx, replaceTable(PostgresSchema, t)); err != nil {
		return nil, fmt.Errorf("rawengine: postgres create %s: %w", t, err)
	}
	return p, nil
}

func replaceTable(s, t string) string { return strings.ReplaceAll(s, "${table}", t) }

// Pool returns the underlying pool.
func (p *Postgres) Pool() *pgxpool.Pool { return p.pool }

// Table returns the quoted, schema-qualified table name.
func (p *Postgres) Table() string { return p.table }

// Close closes the pool if OpenPostgres opened it.
func (p *Postgres) Close() error {
	if p.owns {
		p.pool.Close()
	}
	return nil
}

func pgConflict(err error, e *evento.Event) error {
	var pe *pgconn.PgError
	if errors.As(err, &pe) && pe.Code == "23505" {
		return conflict(e.AggregateType, e.AggregateID, e.Version)
	}
	return fmt.Errorf("rawengine: postgres append: %w", err)
}

// Append inserts one event with INSERT, several with one COPY.
func (p *Postgres) Append(ctx context.Context, events []evento.Event) error {
	if len(events) == 0 {
		return nil
	}
	ts := now()
	metas := make([][]byte, len(events))
	for i := range events {
		e := &events[i]
		e.ID = p.ulids.New(ts)
		e.Timestamp = ts
		m, err := storekit.EncodeMetadata(e.Metadata)
		if err != nil {
			return fmt.Errorf("rawengine: %w", err)
		}
		metas[i] = m
	}
	if len(events) == 1 {
		e := &events[0]
		var seq int64
		err := p.pool.QueryRow(ctx, p.ins, e.ID[:], []byte(e.AggregateType), []byte(e.AggregateID), int64(e.Version),
			[]byte(e.Name), []byte(e.RoutingKey), e.Data, metas[0], ts).Scan(&seq)
		if err != nil {
			return pgConflict(err, e)
		}
		e.Position = evento.Position{Seq: uint64(seq)}
		return nil
	}
	_, err := p.pool.CopyFrom(ctx, p.ident,
		[]string{"id", "aggregate_type", "aggregate_id", "version", "name", "routing_key", "data", "metadata", "ts"},
		pgx.CopyFromSlice(len(events), func(i int) ([]any, error) {
			e := &events[i]
			return []any{e.ID[:], []byte(e.AggregateType), []byte(e.AggregateID), int64(e.Version),
				[]byte(e.Name), []byte(e.RoutingKey), e.Data, metas[i], ts}, nil
		}))
	if err != nil {
		return pgConflict(err, &events[0])
	}
	// COPY returns no positions; a program that needs them reads them back
	// or inserts with RETURNING. Positions stay zero here.
	return nil
}

// Load selects an aggregate's rows through the unique index.
func (p *Postgres) Load(ctx context.Context, typ, id string, dst []evento.Event) ([]evento.Event, error) {
	rows, err := p.pool.Query(ctx, p.load, []byte(typ), []byte(id))
	if err != nil {
		return dst, fmt.Errorf("rawengine: postgres load: %w", err)
	}
	return scanPostgres(rows, dst)
}

// Scan selects rows after a position in seq order.
func (p *Postgres) Scan(ctx context.Context, after uint64, limit int, dst []evento.Event) ([]evento.Event, error) {
	rows, err := p.pool.Query(ctx, p.scan, int64(after), limit)
	if err != nil {
		return dst, fmt.Errorf("rawengine: postgres scan: %w", err)
	}
	return scanPostgres(rows, dst)
}

func scanPostgres(rows pgx.Rows, dst []evento.Event) ([]evento.Event, error) {
	defer rows.Close()
	var (
		seq, version               int64
		id, typ, agg, name, rk, md []byte
		data                       []byte
		ts                         time.Time
	)
	for rows.Next() {
		data, md = nil, nil
		if err := rows.Scan(&seq, &id, &typ, &agg, &version, &name, &rk, &data, &md, &ts); err != nil {
			return dst, fmt.Errorf("rawengine: postgres scan: %w", err)
		}
		m, err := storekit.DecodeMetadata(md)
		if err != nil {
			return dst, err
		}
		e := evento.Event{AggregateType: string(typ), AggregateID: string(agg), Version: uint64(version), Name: string(name),
			RoutingKey: string(rk), Data: data, Metadata: m, Timestamp: ts.UTC(), Position: evento.Position{Seq: uint64(seq)}}
		if len(id) == len(e.ID) {
			e.ID = ulid.ULID(id)
		}
		dst = append(dst, e)
	}
	if err := rows.Err(); err != nil {
		return dst, fmt.Errorf("rawengine: postgres: %w", err)
	}
	return dst, nil
}
