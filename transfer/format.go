package transfer

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/evento-go/evento"
	"github.com/oklog/ulid/v2"
)

// Format is the header's format name; FormatVersion the format version
// this package writes and the newest it reads.
const (
	Format        = "evento-export"
	FormatVersion = 1
)

// Errors. Every error this package returns for one of these causes wraps
// it.
var (
	// ErrFormat means the input is not a valid export: a line that is not
	// JSON, a missing field, an unknown format or a newer version. The
	// concrete error is a *FormatError naming the line.
	ErrFormat = errors.New("transfer: invalid export")
	// ErrTruncated means the input ended without the trailer line: the
	// export was cut short. The events before the end were imported.
	ErrTruncated = errors.New("transfer: export truncated (no trailer line)")
	// ErrNotEmpty means Import was asked to write into a store that holds
	// events, without Append or Resume.
	ErrNotEmpty = errors.New("transfer: destination store is not empty")
	// ErrNotImporter means the destination executor does not implement
	// evento.Importer.
	ErrNotImporter = errors.New("transfer: destination cannot import (no evento.Importer)")
	// ErrResume means Resume did not find the destination's last event in
	// the export: the store holds events of another history.
	ErrResume = errors.New("transfer: cannot resume: the store's last event is not in the export")
)

// FormatError reports an invalid line of an export.
type FormatError struct {
	// Line is the 1-based line number (1 is the header).
	Line int64
	// Reason says what is wrong.
	Reason string
}

// Error names the line and the problem.
func (e *FormatError) Error() string {
	return fmt.Sprintf("transfer: invalid export at line %d: %s", e.Line, e.Reason)
}

// Is makes errors.Is(err, ErrFormat) true.
func (e *FormatError) Is(target error) bool { return target == ErrFormat }

// Header is the first line of an export.
type Header struct {
	Format    string    `json:"format"`
	Version   int       `json:"version"`
	Backend   string    `json:"backend,omitempty"`
	CreatedAt time.Time `json:"createdAt"`
	After     string    `json:"after,omitempty"`
}

// Line is one event line of an export. Its field names are those of the
// JSON view of events (package evhttp), plus Payload.
type Line struct {
	ID            string   `json:"id"`
	AggregateType string   `json:"aggregateType"`
	AggregateID   string   `json:"aggregateId"`
	Version       uint64   `json:"version"`
	Name          string   `json:"name"`
	RoutingKey    string   `json:"routingKey"`
	Timestamp     string   `json:"timestamp"`
	Metadata      Metadata `json:"metadata"`
	Cursor        string   `json:"cursor,omitempty"`
	// Payload is the raw msgpack data, standard base64; empty for none.
	Payload string `json:"payload,omitempty"`
}

// Metadata is the JSON form of evento.Metadata; empty fields are left out.
type Metadata struct {
	CorrelationID string            `json:"correlationId,omitempty"`
	CausationID   string            `json:"causationId,omitempty"`
	Actor         string            `json:"actor,omitempty"`
	Extra         map[string]string `json:"extra,omitempty"`
}

// Trailer is the last line of an export.
type Trailer struct {
	End    bool   `json:"end"`
	Events int64  `json:"events"`
	Cursor string `json:"cursor,omitempty"`
}

// timeLayout is RFC 3339 with exactly six fractional digits: timestamps
// are microseconds, and a fixed width keeps lines comparable.
const timeLayout = "2006-01-02T15:04:05.000000Z07:00"

// NewLine returns the export line of a committed event.
func NewLine(e *evento.Event) Line {
	l := Line{
		ID:            e.ID.String(),
		AggregateType: e.AggregateType,
		AggregateID:   e.AggregateID,
		Version:       e.Version,
		Name:          e.Name,
		RoutingKey:    e.RoutingKey,
		Timestamp:     e.Timestamp.UTC().Format(timeLayout),
		Metadata: Metadata{
			CorrelationID: e.Metadata.CorrelationID,
			CausationID:   e.Metadata.CausationID,
			Actor:         e.Metadata.Actor,
			Extra:         e.Metadata.Extra,
		},
		Cursor: e.Cursor(),
	}
	if len(e.Data) > 0 {
		l.Payload = base64.StdEncoding.EncodeToString(e.Data)
	}
	return l
}

// Event returns the event a line describes, with its ID and timestamp, for
// evento.Importer. Position is left zero.
func (l *Line) Event() (evento.Event, error) {
	if l.ID == "" {
		return evento.Event{}, errors.New("missing id")
	}
	id, err := ulid.ParseStrict(l.ID)
	if err != nil {
		return evento.Event{}, fmt.Errorf("id %q: %v", l.ID, err)
	}
	if l.Timestamp == "" {
		return evento.Event{}, errors.New("missing timestamp")
	}
	ts, err := time.Parse(time.RFC3339Nano, l.Timestamp)
	if err != nil {
		return evento.Event{}, fmt.Errorf("timestamp %q: %v", l.Timestamp, err)
	}
	var data []byte
	if l.Payload != "" {
		if data, err = base64.StdEncoding.DecodeString(l.Payload); err != nil {
			return evento.Event{}, fmt.Errorf("payload: %v", err)
		}
	}
	return evento.Event{
		ID:            id,
		AggregateType: l.AggregateType,
		AggregateID:   l.AggregateID,
		Version:       l.Version,
		Name:          l.Name,
		RoutingKey:    l.RoutingKey,
		Data:          data,
		Metadata: evento.Metadata{
			CorrelationID: l.Metadata.CorrelationID,
			CausationID:   l.Metadata.CausationID,
			Actor:         l.Metadata.Actor,
			Extra:         l.Metadata.Extra,
		},
		Timestamp: ts.UTC(),
	}, nil
}

// record is any line after the header: an event or the trailer.
type record struct {
	Line
	End    bool  `json:"end"`
	Events int64 `json:"events"`
}

func decodeRecord(b []byte, r *record) error {
	*r = record{}
	return json.Unmarshal(b, r)
}
