package evhttp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/evento-go/evento"
	"github.com/evento-go/evento/subscription"
	"github.com/oklog/ulid/v2"
)

// Options configure the handler New returns. The zero value is a read-only
// API and UI.
type Options struct {
	// AllowWrites enables the write actions: replaying and discarding
	// parked events. Without it they are refused with 403.
	AllowWrites bool
	// Subscriptions are the subscriptions whose parked events can be
	// replayed: replay runs a subscription's own handlers, so only a key
	// listed here can be replayed (discarding needs no handlers).
	Subscriptions []*subscription.Subscription
	// Logger receives a line for every 5xx response and every write
	// action. Nil means slog.Default().
	Logger *slog.Logger
	// MaxPageSize is the largest page a request may ask for; <= 0 means
	// cursor.MaxPageSize. The store's own maximum still applies.
	MaxPageSize int
	// UIPageSize is the page size of the UI's event lists when the
	// request sets none; <= 0 means 20.
	UIPageSize int
	// Title names the store in the UI's header; empty means "evento".
	Title string
}

// Handler serves the read API and the admin UI of an executor. It is an
// http.Handler, safe for concurrent use.
//
// Mount it at the root or under a prefix with http.StripPrefix; the UI's
// links follow the prefix:
//
//	mux.Handle("/evento/", http.StripPrefix("/evento", evhttp.New(exec, evhttp.Options{})))
//
// The API, all JSON (errors application/problem+json):
//
//	GET  /api/events?type&id&name&filter&routing&noRouting&first&after&last&before
//	GET  /api/aggregate?type=T&id=I[&first&after&last&before]   404 if it has no events
//	GET  /api/aggregates?type=T[&first=N&after=ID]              aggregate ids of a type
//	GET  /api/subscribers                                       cursor, lease, lag, last error
//	GET  /api/parked?key=K                                      parked events of a key
//	POST /api/parked/replay?key=K                               needs AllowWrites
//	POST /api/parked/discard?key=K&partition=P&id=ID            needs AllowWrites
//
// The UI: / (the event log), /aggregate, /aggregates, /subscribers, /parked.
type Handler struct {
	exec  evento.Executor
	opts  Options
	log   *slog.Logger
	subs  map[string]*subscription.Subscription
	cop   *http.CrossOriginProtection
	ui    *ui
	start time.Time
}

// New returns the API and UI handler for exec. It panics if exec is nil (a
// programming error).
func New(exec evento.Executor, opts Options) *Handler {
	if exec == nil {
		panic("evhttp: New with a nil executor")
	}
	h := &Handler{exec: exec, opts: opts, log: opts.Logger, subs: map[string]*subscription.Subscription{}, cop: http.NewCrossOriginProtection(), start: time.Now()}
	if h.log == nil {
		h.log = slog.Default()
	}
	if h.opts.UIPageSize <= 0 {
		h.opts.UIPageSize = 20
	}
	if h.opts.Title == "" {
		h.opts.Title = "evento"
	}
	for _, s := range opts.Subscriptions {
		if s != nil {
			h.subs[s.Key()] = s
		}
	}
	h.ui = newUI()
	return h
}

// ServeHTTP routes the request to the API or the UI.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p := r.URL.Path
	if p == "" {
		p = "/"
	}
	if strings.HasPrefix(p, "/api/") {
		h.serveAPI(w, r, p)
		return
	}
	h.serveUI(w, r, p)
}

func (h *Handler) serveAPI(w http.ResponseWriter, r *http.Request, p string) {
	var (
		v   any
		err error
	)
	get := r.Method == http.MethodGet || r.Method == http.MethodHead
	switch p {
	case "/api/events":
		if !get {
			err = errMethod
			break
		}
		var page evento.Page
		if page, err = h.readEvents(r.Context(), r.URL.Query(), 0); err == nil {
			v = NewConnection(page)
		}
	case "/api/aggregate":
		if !get {
			err = errMethod
			break
		}
		v, err = h.aggregate(r.Context(), r.URL.Query(), 0)
	case "/api/aggregates":
		if !get {
			err = errMethod
			break
		}
		v, err = h.aggregateIDs(r.Context(), r.URL.Query(), 0)
	case "/api/subscribers":
		if !get {
			err = errMethod
			break
		}
		v, err = h.subscribers(r.Context())
	case "/api/parked":
		if !get {
			err = errMethod
			break
		}
		v, err = h.parked(r.Context(), r.URL.Query())
	case "/api/parked/replay":
		if r.Method != http.MethodPost {
			err = errMethod
			break
		}
		v, err = h.replay(r)
	case "/api/parked/discard":
		if r.Method != http.MethodPost {
			err = errMethod
			break
		}
		if err = h.discard(r); err == nil {
			w.WriteHeader(http.StatusNoContent)
			return
		}
	default:
		err = errNotFoundURL
	}
	if err != nil {
		h.fail(w, r, err)
		return
	}
	WriteJSON(w, http.StatusOK, v)
}

// fail writes err as problem+json and logs the ones that are the server's
// fault.
func (h *Handler) fail(w http.ResponseWriter, r *http.Request, err error) {
	if errors.Is(err, errMethod) {
		if strings.HasPrefix(r.URL.Path, "/api/parked/") {
			w.Header().Set("Allow", http.MethodPost)
		} else {
			w.Header().Set("Allow", "GET, HEAD")
		}
	}
	h.logFailure(r, err)
	WriteError(w, r, err)
}

func (h *Handler) logFailure(r *http.Request, err error) {
	if st, _ := Status(err); st >= 500 && st != 499 {
		h.log.ErrorContext(r.Context(), "evhttp: request failed", slog.String("method", r.Method), slog.String("path", r.URL.Path), slog.Int("status", st), slog.Any("error", err))
	}
}

func (h *Handler) readEvents(ctx context.Context, v url.Values, defaultFirst int) (evento.Page, error) {
	q, err := QueryFromValues(v, h.opts.MaxPageSize)
	if err != nil {
		return evento.Page{}, err
	}
	if q.Args.First == 0 && q.Args.Last == 0 && defaultFirst > 0 {
		if q.Args.Before != "" {
			q.Args.Last = defaultFirst
		} else {
			q.Args.First = defaultFirst
		}
	}
	return h.exec.Read(ctx, q)
}

// Aggregate is the JSON view of one aggregate's history: its current
// version, routing key and a page of its events.
type Aggregate struct {
	AggregateType string     `json:"aggregateType"`
	AggregateID   string     `json:"aggregateId"`
	Version       uint64     `json:"version"`
	Events        Connection `json:"events"`
}

func (h *Handler) aggregate(ctx context.Context, v url.Values, defaultFirst int) (Aggregate, error) {
	typ, id := v.Get("type"), v.Get("id")
	if typ == "" || id == "" {
		return Aggregate{}, withDetail(errBadRequest, "type and id are required")
	}
	rest := url.Values{}
	for k, vs := range v {
		switch k {
		case "type", "id":
			if len(vs) > 1 {
				return Aggregate{}, withDetail(errBadRequest, fmt.Sprintf("parameter %q given %d times", k, len(vs)))
			}
		case "first", "after", "last", "before":
			rest[k] = vs
		default:
			return Aggregate{}, withDetail(errBadRequest, fmt.Sprintf("unknown parameter %q", clip(k)))
		}
	}
	rest.Set("type", typ)
	rest.Set("id", id)
	q, err := QueryFromValues(rest, h.opts.MaxPageSize)
	if err != nil {
		return Aggregate{}, err
	}
	ver, err := h.exec.AggregateVersion(ctx, typ, id)
	if err != nil {
		return Aggregate{}, err
	}
	if ver == 0 {
		return Aggregate{}, withDetail(evento.ErrNotFound, "aggregate has no events")
	}
	if q.Args.First == 0 && q.Args.Last == 0 && defaultFirst > 0 {
		if q.Args.Before != "" {
			q.Args.Last = defaultFirst
		} else {
			q.Args.First = defaultFirst
		}
	}
	page, err := h.exec.Read(ctx, q)
	if err != nil {
		return Aggregate{}, err
	}
	return Aggregate{AggregateType: typ, AggregateID: id, Version: ver, Events: NewConnection(page)}, nil
}

// AggregateIDs is the JSON view of a page of aggregate ids of one type, in
// byte order. Next is the after parameter of the next page, empty on the
// last one.
type AggregateIDs struct {
	AggregateType string   `json:"aggregateType"`
	IDs           []string `json:"ids"`
	Next          string   `json:"next,omitempty"`
}

func (h *Handler) aggregateIDs(ctx context.Context, v url.Values, defaultFirst int) (AggregateIDs, error) {
	for k, vs := range v {
		if k != "type" && k != "first" && k != "after" {
			return AggregateIDs{}, withDetail(errBadRequest, fmt.Sprintf("unknown parameter %q", clip(k)))
		}
		if len(vs) > 1 {
			return AggregateIDs{}, withDetail(errBadRequest, fmt.Sprintf("parameter %q given %d times", k, len(vs)))
		}
	}
	typ := v.Get("type")
	if typ == "" {
		return AggregateIDs{}, withDetail(errBadRequest, "type is required")
	}
	n := defaultFirst
	if n <= 0 {
		n = 100
	}
	max := h.opts.MaxPageSize
	if max <= 0 {
		max = 1000
	}
	if s := v.Get("first"); s != "" {
		var err error
		n, err = strconv.Atoi(s)
		if err != nil || n <= 0 {
			return AggregateIDs{}, withDetail(evento.ErrInvalidArgs, fmt.Sprintf("first=%q is not a positive number", clip(s)))
		}
		if n > max {
			return AggregateIDs{}, withDetail(evento.ErrPageTooLarge, fmt.Sprintf("first=%d is over the maximum of %d", n, max))
		}
	}
	ids, err := h.exec.AggregateIDs(ctx, typ, v.Get("after"), n+1)
	if err != nil {
		return AggregateIDs{}, err
	}
	out := AggregateIDs{AggregateType: typ, IDs: ids}
	if len(ids) > n {
		out.IDs = ids[:n]
		out.Next = ids[n-1]
	}
	if out.IDs == nil {
		out.IDs = []string{}
	}
	return out, nil
}

// Subscriber is the JSON view of a subscriber: its stored state and its
// lag computed when asked.
type Subscriber struct {
	Key            string     `json:"key"`
	Partition      uint32     `json:"partition"`
	Cursor         string     `json:"cursor"`
	Holder         string     `json:"holder"`
	Token          uint64     `json:"token"`
	LeaseExpiresAt *time.Time `json:"leaseExpiresAt"`
	LeaseLive      bool       `json:"leaseLive"`
	// Pending is the number of events the subscriber still has to process
	// (exact when PendingExact, else an estimate).
	Pending      uint64     `json:"pending"`
	PendingExact bool       `json:"pendingExact"`
	LagSeconds   float64    `json:"lagSeconds"`
	LastError    string     `json:"lastError"`
	Parked       int        `json:"parked"`
	Selection    string     `json:"selection"`
	UpdatedAt    *time.Time `json:"updatedAt"`
	AckedAt      *time.Time `json:"ackedAt"`
}

func timePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

func (h *Handler) subscribers(ctx context.Context) ([]Subscriber, error) {
	st, err := subscription.Status(ctx, h.exec)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	out := make([]Subscriber, len(st))
	for i, s := range st {
		sel := ""
		if s.Selection != nil {
			sel = s.Selection.String()
		}
		out[i] = Subscriber{
			Key: s.Key, Partition: s.Partition, Cursor: s.Cursor, Holder: s.Holder, Token: s.Token,
			LeaseExpiresAt: timePtr(s.LeaseExpiresAt), LeaseLive: s.Holder != "" && s.LeaseExpiresAt.After(now),
			Pending: s.Pending, PendingExact: s.PendingExact, LagSeconds: s.Lag.Time.Seconds(),
			LastError: s.LastError, Parked: s.Parked, Selection: sel,
			UpdatedAt: timePtr(s.UpdatedAt), AckedAt: timePtr(s.AckedAt),
		}
	}
	return out, nil
}

// Parked is the JSON view of a parked event.
type Parked struct {
	Key       string    `json:"key"`
	Partition uint32    `json:"partition"`
	Error     string    `json:"error"`
	Attempts  int       `json:"attempts"`
	ParkedAt  time.Time `json:"parkedAt"`
	Event     Event     `json:"event"`
}

// ParkedList is the JSON view of a key's parked events. Replayable says
// whether replay is possible here (the key's subscription is registered in
// Options.Subscriptions and writes are allowed).
type ParkedList struct {
	Key        string   `json:"key"`
	Replayable bool     `json:"replayable"`
	Writable   bool     `json:"writable"`
	Events     []Parked `json:"events"`
}

func (h *Handler) parked(ctx context.Context, v url.Values) (ParkedList, error) {
	key := v.Get("key")
	if key == "" {
		return ParkedList{}, withDetail(errBadRequest, "key is required")
	}
	ps, err := h.exec.ParkedEvents(ctx, key)
	if err != nil {
		return ParkedList{}, err
	}
	_, reg := h.subs[key]
	out := ParkedList{Key: key, Writable: h.opts.AllowWrites, Replayable: reg && h.opts.AllowWrites, Events: make([]Parked, len(ps))}
	for i := range ps {
		p := &ps[i]
		out.Events[i] = Parked{Key: p.Key, Partition: p.Partition, Error: p.Error, Attempts: p.Attempts, ParkedAt: p.ParkedAt, Event: NewEvent(&p.Event)}
	}
	return out, nil
}

// checkWrite refuses a write action unless writes are allowed and the
// request is not cross-origin (Sec-Fetch-Site / Origin, so a page on
// another site cannot make a browser post to the UI).
func (h *Handler) checkWrite(r *http.Request) error {
	if !h.opts.AllowWrites {
		return errForbidden
	}
	if err := h.cop.Check(r); err != nil {
		return errCrossOrigin
	}
	return nil
}

// formValue reads a write action's parameter from the query string or a
// form body.
func formValue(r *http.Request, name string) string {
	if err := r.ParseForm(); err != nil {
		return ""
	}
	return r.Form.Get(name)
}

// ReplayResult is the JSON view of a replay: how many parked events were
// handled and deleted, and how many failed again and stay parked (their
// errors are logged and shown on the subscriber).
type ReplayResult struct {
	Key      string `json:"key"`
	Replayed int    `json:"replayed"`
	Failed   int    `json:"failed"`
}

func (h *Handler) replay(r *http.Request) (ReplayResult, error) {
	if err := h.checkWrite(r); err != nil {
		return ReplayResult{}, err
	}
	key := formValue(r, "key")
	if key == "" {
		return ReplayResult{}, withDetail(errBadRequest, "key is required")
	}
	s, ok := h.subs[key]
	if !ok {
		return ReplayResult{}, errNoReplayer
	}
	n, err := s.Replay(r.Context(), h.exec)
	res := ReplayResult{Key: key, Replayed: n}
	if err != nil {
		h.log.WarnContext(r.Context(), "evhttp: replay of parked events failed", slog.String("key", key), slog.Int("replayed", n), slog.Any("error", err))
		// The store's or the subscription's own failures are the
		// request's; a handler failing again leaves its event parked.
		for _, fatal := range []error{subscription.ErrNotTransactional, subscription.ErrInvalidConfig, evento.ErrClosed, context.Canceled, context.DeadlineExceeded} {
			if errors.Is(err, fatal) {
				return ReplayResult{}, err
			}
		}
		res.Failed = 1
		if j, ok := err.(interface{ Unwrap() []error }); ok {
			res.Failed = len(j.Unwrap())
		}
		return res, nil
	}
	h.log.InfoContext(r.Context(), "evhttp: replayed parked events", slog.String("key", key), slog.Int("replayed", n))
	return res, nil
}

func (h *Handler) discard(r *http.Request) error {
	if err := h.checkWrite(r); err != nil {
		return err
	}
	key, ps, ids := formValue(r, "key"), formValue(r, "partition"), formValue(r, "id")
	if key == "" || ids == "" {
		return withDetail(errBadRequest, "key and id are required")
	}
	var part uint64
	if ps != "" {
		var err error
		if part, err = strconv.ParseUint(ps, 10, 32); err != nil {
			return withDetail(errBadRequest, fmt.Sprintf("partition=%q is not a partition number", clip(ps)))
		}
	}
	id, err := ulid.ParseStrict(ids)
	if err != nil {
		return withDetail(errBadRequest, fmt.Sprintf("id=%q is not an event id", clip(ids)))
	}
	if err := h.exec.DeleteParked(r.Context(), key, uint32(part), id); err != nil {
		return err
	}
	h.log.InfoContext(r.Context(), "evhttp: discarded parked event", slog.String("key", key), slog.Uint64("partition", part), slog.String("id", ids))
	return nil
}
