package evhttp

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"

	"github.com/evento-go/evento"
	"github.com/evento-go/evento/executor"
	"github.com/evento-go/evento/subscription"
)

// Problem is an RFC 9457 problem details object, written as
// application/problem+json. Title is the stable, client-safe message of
// the kind of error (it never depends on the backend); Detail, when set,
// names the offending parameter. Code is a stable machine-readable name of
// the kind (an extension member).
type Problem struct {
	Type     string `json:"type"`
	Title    string `json:"title"`
	Status   int    `json:"status"`
	Detail   string `json:"detail,omitempty"`
	Instance string `json:"instance,omitempty"`
	Code     string `json:"code"`
}

// kind is one row of the error table.
type kind struct {
	err    error
	status int
	code   string
	title  string
}

// kinds maps evento's sentinel errors to HTTP, most specific first.
var kinds = []kind{
	{evento.ErrInvalidCursor, http.StatusBadRequest, "invalid_cursor", "invalid cursor"},
	{evento.ErrPageTooLarge, http.StatusBadRequest, "page_too_large", "page size over the maximum"},
	{evento.ErrInvalidArgs, http.StatusBadRequest, "invalid_pagination", "invalid pagination arguments"},
	{evento.ErrInvalidQuery, http.StatusBadRequest, "invalid_query", "invalid query"},
	{evento.ErrInvalidEvent, http.StatusBadRequest, "invalid_event", "invalid event"},
	{evento.ErrInvalidSubscriberArgs, http.StatusBadRequest, "invalid_subscriber_args", "invalid subscriber arguments"},
	{errBadRequest, http.StatusBadRequest, "bad_request", "bad request"},
	{evento.ErrNotFound, http.StatusNotFound, "not_found", "not found"},
	{evento.ErrVersionConflict, http.StatusConflict, "version_conflict", "version conflict"},
	{evento.ErrRoutingKey, http.StatusConflict, "routing_key_conflict", "routing key differs from the aggregate's"},
	{evento.ErrLeaseHeld, http.StatusConflict, "lease_held", "lease held by another worker"},
	{evento.ErrLeaseLost, http.StatusConflict, "lease_lost", "lease lost"},
	{subscription.ErrNotTransactional, http.StatusConflict, "replay_unsupported", "replay is not supported for this subscription; reset its subscriber instead"},
	{errForbidden, http.StatusForbidden, "writes_disabled", "writes are disabled"},
	{errCrossOrigin, http.StatusForbidden, "cross_origin", "cross-origin request refused"},
	{errNoReplayer, http.StatusNotFound, "no_subscription", "no subscription with this key is registered for replay"},
	{errMethod, http.StatusMethodNotAllowed, "method_not_allowed", "method not allowed"},
	{evento.ErrClosed, http.StatusServiceUnavailable, "store_closed", "store closed"},
	{executor.ErrNotMigrated, http.StatusServiceUnavailable, "store_not_migrated", "store schema is not migrated"},
	{evento.ErrSchemaTooNew, http.StatusServiceUnavailable, "store_too_new", "store schema is newer than this program"},
	{context.DeadlineExceeded, http.StatusGatewayTimeout, "timeout", "timed out"},
	{context.Canceled, 499, "canceled", "request canceled"},
	{evento.ErrDecode, http.StatusInternalServerError, "decode_failed", "stored data does not decode"},
}

var (
	errBadRequest  = errors.New("evhttp: bad request")
	errForbidden   = errors.New("evhttp: writes are disabled (Options.AllowWrites)")
	errCrossOrigin = errors.New("evhttp: cross-origin request refused")
	errNoReplayer  = errors.New("evhttp: no subscription registered for replay")
	errMethod      = errors.New("evhttp: method not allowed")
	errNotFoundURL = errors.New("evhttp: no such page")
)

// Status maps an error from evento (or from this package) to its HTTP
// status and a client-safe message that does not depend on the backend:
//
//	invalid cursor, page size, pagination arguments, query, event   400
//	unknown aggregate, subscriber or parked event (ErrNotFound)     404
//	version conflict, routing key conflict, lease held or lost      409
//	store closed, not migrated, schema too new                      503
//	deadline exceeded                                               504
//	canceled (client gone)                                          499
//	anything else                                                   500 "internal error"
//
// A nil error gives 200 and "OK". Applications that write their own handlers
// call it instead of testing each sentinel; the message never includes the
// error's own text, which may name tables, files or DSNs.
func Status(err error) (int, string) {
	k := classify(err)
	return k.status, k.title
}

func classify(err error) kind {
	if err == nil {
		return kind{status: http.StatusOK, code: "ok", title: "OK"}
	}
	if errors.Is(err, errNotFoundURL) {
		return kind{status: http.StatusNotFound, code: "not_found", title: "not found"}
	}
	for _, k := range kinds {
		if errors.Is(err, k.err) {
			return k
		}
	}
	return kind{status: http.StatusInternalServerError, code: "internal", title: "internal error"}
}

// ProblemFor returns the problem details for err: the status, the stable
// title and code from Status, and instance set to the request's path (as
// the client sent it, before any http.StripPrefix).
// Detail is left empty: the error's text is not client-safe.
func ProblemFor(r *http.Request, err error) Problem {
	k := classify(err)
	p := Problem{Type: "about:blank", Title: k.title, Status: k.status, Code: k.code}
	if r != nil && r.URL != nil {
		p.Instance = basePath(r) + r.URL.Path
	}
	return p
}

// WriteError writes err as application/problem+json with the status
// Status gives. The error's own text is not written (see Status).
func WriteError(w http.ResponseWriter, r *http.Request, err error) {
	p := ProblemFor(r, err)
	var d *detailError
	if errors.As(err, &d) {
		p.Detail = d.detail
	}
	writeProblem(w, p)
}

func writeProblem(w http.ResponseWriter, p Problem) {
	b, _ := json.Marshal(p) // a struct of strings and an int always encodes
	w.Header().Set("Content-Type", "application/problem+json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(p.Status)
	_, _ = w.Write(append(b, '\n'))
}

// detailError carries a client-safe detail written by this package (a
// parameter name and what is wrong with it) around a classified cause.
type detailError struct {
	detail string
	cause  error
}

func (e *detailError) Error() string { return "evhttp: " + e.detail + ": " + e.cause.Error() }
func (e *detailError) Unwrap() error { return e.cause }

// withDetail wraps cause with a client-safe detail.
func withDetail(cause error, detail string) error { return &detailError{detail: detail, cause: cause} }
