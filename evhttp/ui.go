package evhttp

import (
	"bytes"
	"embed"
	"encoding/json"
	"html/template"
	"io/fs"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/evento-go/evento/eventtype"
)

//go:embed ui/*.html ui/style.css
var uiFS embed.FS

type ui struct {
	pages map[string]*template.Template
	css   []byte
}

func newUI() *ui {
	funcs := template.FuncMap{
		"short": func(s string) string {
			if len(s) > 12 {
				return s[:12] + "…"
			}
			return s
		},
		"ts": func(t time.Time) string {
			if t.IsZero() {
				return ""
			}
			return t.UTC().Format("2006-01-02 15:04:05.000000Z")
		},
		"tsp": func(t *time.Time) string {
			if t == nil {
				return ""
			}
			return t.UTC().Format("2006-01-02 15:04:05Z")
		},
		"pretty": func(b json.RawMessage) string {
			var out bytes.Buffer
			if json.Indent(&out, b, "", "  ") != nil {
				return string(b)
			}
			return out.String()
		},
		"compact": func(b json.RawMessage) string {
			s := string(b)
			if len(s) > 120 {
				return s[:120] + "…"
			}
			return s
		},
	}
	layout := template.Must(template.New("layout.html").Funcs(funcs).ParseFS(uiFS, "ui/layout.html"))
	pages := map[string]*template.Template{}
	names, _ := fs.Glob(uiFS, "ui/*.html")
	for _, n := range names {
		base := strings.TrimPrefix(n, "ui/")
		if base == "layout.html" {
			continue
		}
		pages[strings.TrimSuffix(base, ".html")] = template.Must(template.Must(layout.Clone()).ParseFS(uiFS, n))
	}
	css, _ := uiFS.ReadFile("ui/style.css")
	return &ui{pages: pages, css: css}
}

// basePath is the prefix the handler is mounted under: the part of the
// request's original path that http.StripPrefix removed.
func basePath(r *http.Request) string {
	orig := r.RequestURI
	if i := strings.IndexByte(orig, '?'); i >= 0 {
		orig = orig[:i]
	}
	if u, err := url.Parse(orig); err == nil && u.Path != "" {
		orig = u.EscapedPath()
	}
	if b, ok := strings.CutSuffix(orig, r.URL.EscapedPath()); ok && strings.HasPrefix(b, "/") {
		return b
	}
	return ""
}

// view is what every page template gets.
type view struct {
	Title   string
	Base    string
	Nav     string
	Writes  bool
	Flash   string
	Data    any
	Status  int
	Problem Problem
}

func (h *Handler) render(w http.ResponseWriter, r *http.Request, status int, page, nav string, data any) {
	t := h.ui.pages[page]
	v := view{Title: h.opts.Title, Base: basePath(r), Nav: nav, Writes: h.opts.AllowWrites, Flash: r.URL.Query().Get("done"), Data: data, Status: status}
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, "layout.html", v); err != nil {
		h.log.ErrorContext(r.Context(), "evhttp: render page", "page", page, "error", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("X-Frame-Options", "DENY")
	w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// uiFail renders err as an HTML error page with the status Status gives.
func (h *Handler) uiFail(w http.ResponseWriter, r *http.Request, nav string, err error) {
	h.logFailure(r, err)
	p := ProblemFor(r, err)
	if d, ok := err.(*detailError); ok {
		p.Detail = d.detail
	} else if d := detailOf(err); d != "" {
		p.Detail = d
	}
	status := p.Status
	if status == 499 {
		return
	}
	h.render(w, r, status, "error", nav, p)
}

func detailOf(err error) string {
	for err != nil {
		if d, ok := err.(*detailError); ok {
			return d.detail
		}
		u, ok := err.(interface{ Unwrap() error })
		if !ok {
			return ""
		}
		err = u.Unwrap()
	}
	return ""
}

// link builds a UI URL: base + path + the non-empty values.
func link(base, path string, v url.Values) string {
	clean := url.Values{}
	for k, vs := range v {
		for _, s := range vs {
			if s != "" {
				clean.Add(k, s)
			}
		}
	}
	if len(clean) == 0 {
		return base + path
	}
	return base + path + "?" + clean.Encode()
}

// pager is the paging links of a list of events.
type pager struct {
	First, Prev, Next, Last string
}

func makePager(base, path string, keep url.Values, info PageInfo, size int, hasEvents bool) pager {
	with := func(set map[string]string) string {
		v := url.Values{}
		for k, vs := range keep {
			v[k] = append([]string(nil), vs...)
		}
		for k, s := range set {
			v.Set(k, s)
		}
		return link(base, path, v)
	}
	n := strconv.Itoa(size)
	var p pager
	p.First = with(map[string]string{"first": n})
	p.Last = with(map[string]string{"last": n})
	if info.HasPreviousPage && hasEvents {
		p.Prev = with(map[string]string{"last": n, "before": info.StartCursor})
	}
	if info.HasNextPage && hasEvents {
		p.Next = with(map[string]string{"first": n, "after": info.EndCursor})
	}
	return p
}

// eventsPage is the data of the event log page.
type eventsPage struct {
	Base   string
	Form   url.Values
	Types  []string
	Names  []string
	Events []Event
	Pager  pager
	Size   int
}

func (h *Handler) serveUI(w http.ResponseWriter, r *http.Request, p string) {
	if p == "/style.css" {
		w.Header().Set("Content-Type", "text/css; charset=utf-8")
		w.Header().Set("Cache-Control", "max-age=300")
		_, _ = w.Write(h.ui.css)
		return
	}
	if strings.HasPrefix(p, "/parked/") {
		h.uiWrite(w, r, p)
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		h.uiFail(w, r, "", errMethod)
		return
	}
	base := basePath(r)
	switch p {
	case "/", "/events":
		h.uiEvents(w, r, base)
	case "/aggregate":
		h.uiAggregate(w, r, base)
	case "/aggregates":
		h.uiAggregates(w, r, base)
	case "/subscribers":
		subs, err := h.subscribers(r.Context())
		if err != nil {
			h.uiFail(w, r, "subscribers", err)
			return
		}
		h.render(w, r, http.StatusOK, "subscribers", "subscribers", subs)
	case "/parked":
		list, err := h.parked(r.Context(), r.URL.Query())
		if err != nil {
			h.uiFail(w, r, "subscribers", err)
			return
		}
		h.render(w, r, http.StatusOK, "parked", "subscribers", list)
	default:
		h.uiFail(w, r, "", errNotFoundURL)
	}
}

func (h *Handler) uiEvents(w http.ResponseWriter, r *http.Request, base string) {
	v := r.URL.Query()
	page, err := h.readEvents(r.Context(), v, h.opts.UIPageSize)
	if err != nil {
		h.uiFail(w, r, "events", err)
		return
	}
	conn := NewConnection(page)
	keep := url.Values{}
	for _, k := range []string{"type", "id", "name", "routing", "noRouting"} {
		if s := v.Get(k); s != "" {
			keep.Set(k, s)
		}
	}
	keep["filter"] = v["filter"]
	size := pageSize(v, h.opts.UIPageSize)
	data := eventsPage{
		Base:   base,
		Form:   v,
		Types:  eventtype.AggregateTypes(),
		Names:  eventtype.Names(v.Get("type")),
		Events: nodes(conn),
		Pager:  makePager(base, "/events", keep, conn.PageInfo, size, len(conn.Edges) > 0),
		Size:   size,
	}
	h.render(w, r, http.StatusOK, "events", "events", data)
}

func pageSize(v url.Values, def int) int {
	for _, k := range []string{"first", "last"} {
		if n, err := strconv.Atoi(v.Get(k)); err == nil && n > 0 {
			return n
		}
	}
	return def
}

func nodes(c Connection) []Event {
	out := make([]Event, len(c.Edges))
	for i := range c.Edges {
		out[i] = c.Edges[i].Node
	}
	return out
}

type aggregatePage struct {
	Aggregate
	Nodes []Event
	Pager pager
}

func (h *Handler) uiAggregate(w http.ResponseWriter, r *http.Request, base string) {
	v := r.URL.Query()
	agg, err := h.aggregate(r.Context(), v, h.opts.UIPageSize)
	if err != nil {
		h.uiFail(w, r, "aggregates", err)
		return
	}
	keep := url.Values{"type": {agg.AggregateType}, "id": {agg.AggregateID}}
	h.render(w, r, http.StatusOK, "aggregate", "aggregates", aggregatePage{
		Aggregate: agg,
		Nodes:     nodes(agg.Events),
		Pager:     makePager(base, "/aggregate", keep, agg.Events.PageInfo, pageSize(v, h.opts.UIPageSize), len(agg.Events.Edges) > 0),
	})
}

type aggregatesPage struct {
	Type  string
	Types []string
	IDs   []string
	Next  string
}

func (h *Handler) uiAggregates(w http.ResponseWriter, r *http.Request, base string) {
	v := r.URL.Query()
	data := aggregatesPage{Type: v.Get("type"), Types: eventtype.AggregateTypes()}
	if data.Type != "" {
		ids, err := h.aggregateIDs(r.Context(), v, 50)
		if err != nil {
			h.uiFail(w, r, "aggregates", err)
			return
		}
		data.IDs = ids.IDs
		if ids.Next != "" {
			data.Next = link(base, "/aggregates", url.Values{"type": {data.Type}, "after": {ids.Next}, "first": {v.Get("first")}})
		}
	}
	h.render(w, r, http.StatusOK, "aggregates", "aggregates", data)
}

// uiWrite runs a write action posted by a UI form and redirects back to the
// parked page (303, so a reload does not post again).
func (h *Handler) uiWrite(w http.ResponseWriter, r *http.Request, p string) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		h.fail(w, r, errMethod)
		return
	}
	var done string
	switch p {
	case "/parked/replay":
		res, err := h.replay(r)
		if err != nil {
			h.fail(w, r, err)
			return
		}
		done = "replayed " + strconv.Itoa(res.Replayed)
		if res.Failed > 0 {
			done += ", " + strconv.Itoa(res.Failed) + " failed again and stay parked"
		}
	case "/parked/discard":
		if err := h.discard(r); err != nil {
			h.fail(w, r, err)
			return
		}
		done = "discarded 1"
	default:
		h.fail(w, r, errNotFoundURL)
		return
	}
	http.Redirect(w, r, link(basePath(r), "/parked", url.Values{"key": {r.Form.Get("key")}, "done": {done}}), http.StatusSeeOther)
}
