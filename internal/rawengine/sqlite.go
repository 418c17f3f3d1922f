package rawengine

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"sync"

	"github.com/evento-go/evento"
	"github.com/evento-go/evento/executor/storekit"
	"github.com/oklog/ulid/v2"
	msqlite "modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// SQLiteSchema is the minimal SQLite table: one row per event, the rowid as
// position and the unique (aggregate_type, aggregate_id, version), which
// also serves aggregate loads.
const SQLiteSchema = `CREATE TABLE IF NOT EXISTS events (
    position       INTEGER PRIMARY KEY,
    id             BLOB    NOT NULL,
    aggregate_type BLOB    NOT NULL,
    aggregate_id   BLOB    NOT NULL,
    version        INTEGER NOT NULL,
    name           BLOB    NOT NULL,
    routing_key    BLOB    NOT NULL,
    data           BLOB,
    metadata       BLOB,
    timestamp      INTEGER NOT NULL,
    UNIQUE (aggregate_type, aggregate_id, version)
)`

const (
	sqliteInsert = `INSERT INTO events (id, aggregate_type, aggregate_id, version, name, routing_key, data, metadata, timestamp) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`
	sqliteCols   = `position, id, aggregate_type, aggregate_id, version, name, routing_key, data, metadata, timestamp`
	sqliteLoad   = `SELECT ` + sqliteCols + ` FROM events WHERE aggregate_type = ? AND aggregate_id = ? ORDER BY version`
	sqliteScan   = `SELECT ` + sqliteCols + ` FROM events WHERE position > ? ORDER BY position LIMIT ?`
)

// SQLite is the minimal event store on modernc.org/sqlite: the table
// [SQLiteSchema] in WAL mode with synchronous=FULL. Appends go through one
// connection under a mutex (SQLite has one writer) as BEGIN, one prepared
// INSERT per event, COMMIT (a single event is one autocommit INSERT); reads
// use a pool of up to four connections.
type SQLite struct {
	db    *sql.DB
	mu    sync.Mutex // guards the write connection
	wconn *sql.Conn
	ins   *sql.Stmt
	load  *sql.Stmt
	scan  *sql.Stmt
	ulids *storekit.ULIDSource
}

// OpenSQLite opens (creating if needed) the database file at path with the
// minimal schema.
func OpenSQLite(ctx context.Context, path string) (*SQLite, error) {
	u := url.URL{Scheme: "file", Opaque: (&url.URL{Path: path}).EscapedPath(),
		RawQuery: "_pragma=busy_timeout(5000)&_pragma=journal_mode(WAL)&_pragma=synchronous(FULL)"}
	db, err := sql.Open("sqlite", u.String())
	if err != nil {
		return nil, fmt.Errorf("rawengine: sqlite open %q: %w", path, err)
	}
	db.SetMaxOpenConns(4)
	db.SetMaxIdleConns(4)
	s := &SQLite{db: db, ulids: storekit.NewULIDSource()}
	if err := s.init(ctx); err != nil {
		s.Close()
		return nil, fmt.Errorf("rawengine: sqlite open %q: %w", path, err)
	}
	return s, nil
}

func (s *SQLite) init(ctx context.Context) error {
	var err error
	if s.wconn, err = s.db.Conn(ctx); err != nil {
		return err
	}
	if _, err = s.wconn.ExecContext(ctx, SQLiteSchema); err != nil {
		return err
	}
	if s.ins, err = s.wconn.PrepareContext(ctx, sqliteInsert); err != nil {
		return err
	}
	if s.load, err = s.db.PrepareContext(ctx, sqliteLoad); err != nil {
		return err
	}
	s.scan, err = s.db.PrepareContext(ctx, sqliteScan)
	return err
}

// DB returns the underlying handle.
func (s *SQLite) DB() *sql.DB { return s.db }

// Close closes the store.
func (s *SQLite) Close() error {
	var errs []error
	for _, st := range []*sql.Stmt{s.ins, s.load, s.scan} {
		if st != nil {
			errs = append(errs, st.Close())
		}
	}
	if s.wconn != nil {
		errs = append(errs, s.wconn.Close())
	}
	errs = append(errs, s.db.Close())
	return errors.Join(errs...)
}

// Append inserts events in one transaction.
func (s *SQLite) Append(ctx context.Context, events []evento.Event) (err error) {
	if len(events) == 0 {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(events) > 1 {
		if _, err := s.wconn.ExecContext(ctx, "BEGIN"); err != nil {
			return fmt.Errorf("rawengine: sqlite: %w", err)
		}
		defer func() {
			if err != nil {
				s.wconn.ExecContext(context.WithoutCancel(ctx), "ROLLBACK")
			}
		}()
	}
	ts := now()
	for i := range events {
		e := &events[i]
		e.ID = s.ulids.New(ts)
		e.Timestamp = ts
		meta, err := storekit.EncodeMetadata(e.Metadata)
		if err != nil {
			return fmt.Errorf("rawengine: %w", err)
		}
		res, err := s.ins.ExecContext(ctx, e.ID[:], []byte(e.AggregateType), []byte(e.AggregateID), int64(e.Version),
			[]byte(e.Name), []byte(e.RoutingKey), e.Data, meta, ts.UnixMicro())
		if err != nil {
			var se *msqlite.Error
			if errors.As(err, &se) && se.Code() == sqlite3.SQLITE_CONSTRAINT_UNIQUE {
				return conflict(e.AggregateType, e.AggregateID, e.Version)
			}
			return fmt.Errorf("rawengine: sqlite insert: %w", err)
		}
		pos, err := res.LastInsertId()
		if err != nil {
			return fmt.Errorf("rawengine: sqlite: %w", err)
		}
		e.Position = evento.Position{Seq: uint64(pos)}
	}
	if len(events) > 1 {
		if _, err := s.wconn.ExecContext(ctx, "COMMIT"); err != nil {
			return fmt.Errorf("rawengine: sqlite commit: %w", err)
		}
	}
	return nil
}

// Load selects an aggregate's rows through the unique index.
func (s *SQLite) Load(ctx context.Context, typ, id string, dst []evento.Event) ([]evento.Event, error) {
	rows, err := s.load.QueryContext(ctx, []byte(typ), []byte(id))
	if err != nil {
		return dst, fmt.Errorf("rawengine: sqlite load: %w", err)
	}
	return scanSQLite(rows, dst)
}

// Scan selects rows after a position in rowid order.
func (s *SQLite) Scan(ctx context.Context, after uint64, limit int, dst []evento.Event) ([]evento.Event, error) {
	rows, err := s.scan.QueryContext(ctx, int64(after), limit)
	if err != nil {
		return dst, fmt.Errorf("rawengine: sqlite scan: %w", err)
	}
	return scanSQLite(rows, dst)
}

func scanSQLite(rows *sql.Rows, dst []evento.Event) ([]evento.Event, error) {
	defer rows.Close()
	var (
		pos, version, ts           int64
		id, typ, agg, name, rk, md []byte
		data                       []byte
	)
	for rows.Next() {
		data, md = nil, nil
		if err := rows.Scan(&pos, &id, &typ, &agg, &version, &name, &rk, &data, &md, &ts); err != nil {
			return dst, fmt.Errorf("rawengine: sqlite scan: %w", err)
		}
		m, err := storekit.DecodeMetadata(md)
		if err != nil {
			return dst, err
		}
		e := evento.Event{AggregateType: string(typ), AggregateID: string(agg), Version: uint64(version), Name: string(name),
			RoutingKey: string(rk), Data: data, Metadata: m, Timestamp: microTime(ts), Position: evento.Position{Seq: uint64(pos)}}
		if len(id) == len(e.ID) {
			e.ID = ulid.ULID(id)
		}
		dst = append(dst, e)
	}
	if err := rows.Err(); err != nil {
		return dst, fmt.Errorf("rawengine: sqlite: %w", err)
	}
	return dst, nil
}
