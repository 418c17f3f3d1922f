package evhttp

import (
	"encoding/json"
	"fmt"
	"net/http"
	"reflect"
	"time"

	"github.com/evento-go/evento"
	"github.com/evento-go/evento/eventtype"
)

// Event is the JSON view of an evento.Event. Data is the payload as JSON:
// decoded through the Go type registered for the event in package eventtype
// (so its field names and json tags apply), else the msgpack payload as
// generic JSON. Positions are left out: Cursor is the only handle on an
// event's place in the log.
type Event struct {
	ID            string          `json:"id"`
	AggregateType string          `json:"aggregateType"`
	AggregateID   string          `json:"aggregateId"`
	Version       uint64          `json:"version"`
	Name          string          `json:"name"`
	RoutingKey    string          `json:"routingKey"`
	Timestamp     time.Time       `json:"timestamp"`
	Metadata      Metadata        `json:"metadata"`
	Cursor        string          `json:"cursor"`
	Data          json.RawMessage `json:"data"`
	// DataError says why Data is null although the event has a payload
	// (it is not msgpack). It is omitted otherwise.
	DataError string `json:"dataError,omitempty"`
}

// Metadata is the JSON view of evento.Metadata; empty fields are omitted.
type Metadata struct {
	CorrelationID string            `json:"correlationId,omitempty"`
	CausationID   string            `json:"causationId,omitempty"`
	Actor         string            `json:"actor,omitempty"`
	Extra         map[string]string `json:"extra,omitempty"`
}

// Connection is the JSON view of a page of events in the Relay connection
// shape: {"edges":[{"cursor","node"}],"pageInfo":{…}}.
type Connection struct {
	Edges    []Edge   `json:"edges"`
	PageInfo PageInfo `json:"pageInfo"`
}

// Edge is one event of a Connection with its cursor.
type Edge struct {
	Cursor string `json:"cursor"`
	Node   Event  `json:"node"`
}

// PageInfo is the Relay page info of a Connection. The cursors are empty
// on an empty page.
type PageInfo struct {
	HasNextPage     bool   `json:"hasNextPage"`
	HasPreviousPage bool   `json:"hasPreviousPage"`
	StartCursor     string `json:"startCursor"`
	EndCursor       string `json:"endCursor"`
}

// NewEvent returns the JSON view of e. It never fails: a payload that does
// not decode through its registered type is rendered as generic JSON, and
// one that is not msgpack at all leaves Data null and says why in DataError.
func NewEvent(e *evento.Event) Event {
	v := Event{
		ID:            e.ID.String(),
		AggregateType: e.AggregateType,
		AggregateID:   e.AggregateID,
		Version:       e.Version,
		Name:          e.Name,
		RoutingKey:    e.RoutingKey,
		Timestamp:     e.Timestamp,
		Metadata: Metadata{
			CorrelationID: e.Metadata.CorrelationID,
			CausationID:   e.Metadata.CausationID,
			Actor:         e.Metadata.Actor,
			Extra:         e.Metadata.Extra,
		},
		Cursor: e.Cursor(),
	}
	v.Data, v.DataError = renderData(e)
	return v
}

// NewConnection returns the JSON view of a page: one call turns what
// Executor.Read returned into what an HTTP handler writes.
func NewConnection(p evento.Page) Connection {
	c := Connection{
		Edges: make([]Edge, len(p.Events)),
		PageInfo: PageInfo{
			HasNextPage:     p.PageInfo.HasNextPage,
			HasPreviousPage: p.PageInfo.HasPreviousPage,
			StartCursor:     p.PageInfo.StartCursor,
			EndCursor:       p.PageInfo.EndCursor,
		},
	}
	for i := range p.Events {
		n := NewEvent(&p.Events[i])
		c.Edges[i] = Edge{Cursor: n.Cursor, Node: n}
	}
	return c
}

// WritePage writes the result of a read: the page as a JSON Connection with
// status 200, or, when err is not nil, the error as application/problem+json
// with the status Status gives. A handler that pages events is then
//
//	args, err := cursor.FromValues(r.URL.Query(), 0)
//	if err != nil {
//		evhttp.WriteError(w, r, err)
//		return
//	}
//	page, err := exec.Read(r.Context(), evento.ByType("bank/Account").Page(args))
//	evhttp.WritePage(w, r, page, err)
func WritePage(w http.ResponseWriter, r *http.Request, p evento.Page, err error) {
	if err != nil {
		WriteError(w, r, err)
		return
	}
	WriteJSON(w, http.StatusOK, NewConnection(p))
}

// WriteJSON writes v as JSON with the given status.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		writeProblem(w, Problem{Type: "about:blank", Title: "internal error", Status: http.StatusInternalServerError, Code: "internal"})
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}

// renderData renders an event's payload as JSON.
func renderData(e *evento.Event) (json.RawMessage, string) {
	if len(e.Data) == 0 {
		return json.RawMessage("null"), ""
	}
	if v, ok := eventtype.New(e.AggregateType, e.Name); ok {
		if err := e.Decode(v); err == nil {
			if b, err := json.Marshal(v); err == nil {
				return b, ""
			}
		}
	}
	var generic any
	if err := evento.Unmarshal(e.Data, &generic); err != nil {
		return json.RawMessage("null"), fmt.Sprintf("payload of %d bytes is not msgpack", len(e.Data))
	}
	b, err := json.Marshal(jsonable(generic, 0))
	if err != nil {
		return json.RawMessage("null"), fmt.Sprintf("payload of %d bytes has no JSON form", len(e.Data))
	}
	return b, ""
}

// maxDepth bounds the recursion of jsonable on hostile payloads.
const maxDepth = 64

// jsonable turns a generically decoded msgpack value into one encoding/json
// accepts: maps with non-string keys get their keys formatted, and values
// JSON has no form for (NaN, ±Inf, types msgpack extensions decode to)
// become strings.
func jsonable(v any, depth int) any {
	if depth > maxDepth {
		return "…"
	}
	switch x := v.(type) {
	case nil, bool, string, []byte, time.Time,
		int, int8, int16, int32, int64, uint, uint8, uint16, uint32, uint64:
		return x
	case float32:
		return jsonable(float64(x), depth)
	case float64:
		if x != x || x > 1.7976931348623157e308 || x < -1.7976931348623157e308 {
			return fmt.Sprint(x)
		}
		return x
	case []any:
		out := make([]any, len(x))
		for i := range x {
			out[i] = jsonable(x[i], depth+1)
		}
		return out
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = jsonable(e, depth+1)
		}
		return out
	case map[any]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[fmt.Sprint(k)] = jsonable(e, depth+1)
		}
		return out
	}
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.Slice, reflect.Array:
		out := make([]any, rv.Len())
		for i := range out {
			out[i] = jsonable(rv.Index(i).Interface(), depth+1)
		}
		return out
	case reflect.Map:
		out := make(map[string]any, rv.Len())
		it := rv.MapRange()
		for it.Next() {
			out[fmt.Sprint(it.Key().Interface())] = jsonable(it.Value().Interface(), depth+1)
		}
		return out
	}
	return fmt.Sprint(v)
}
