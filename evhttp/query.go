package evhttp

import (
	"fmt"
	"net/url"
	"strconv"
	"strings"

	"github.com/evento-go/evento"
	"github.com/evento-go/evento/cursor"
)

// The query parameters of an event read. See QueryFromValues.
var queryParams = map[string]bool{
	"type": true, "id": true, "name": true, "filter": true,
	"routing": true, "noRouting": true,
	"first": true, "after": true, "last": true, "before": true,
}

// QueryFromValues reads an event query from URL query parameters:
//
//	type=T [id=I] [name=N]       one filter: aggregate type T, narrowed to
//	                             aggregate I and/or event name N
//	filter=<type=T&id=I&name=N>  a further filter OR'ed in, itself URL-encoded
//	                             (repeatable; curl -G --data-urlencode
//	                             'filter=type=bank/Account&name=MoneyDeposited')
//	routing=K                    only events with routing key K
//	noRouting=true               only events with no routing key
//	first=N after=C              forward page
//	last=N before=C              backward page
//
// No filter reads every event. Empty values count as absent (what an HTML
// form sends for an empty field). An unknown or repeated parameter, an id or
// name without a type, routing together with noRouting, or a page size over
// max (<= 0 means cursor.MaxPageSize) is an error that Status maps to 400.
// Cursors are checked by the read.
func QueryFromValues(v url.Values, max int) (evento.Query, error) {
	var q evento.Query
	for k, vs := range v {
		if !queryParams[k] {
			return q, withDetail(evento.ErrInvalidQuery, fmt.Sprintf("unknown parameter %q", clip(k)))
		}
		if k != "filter" && len(vs) > 1 {
			return q, withDetail(evento.ErrInvalidQuery, fmt.Sprintf("parameter %q given %d times", k, len(vs)))
		}
	}
	f, err := filterFrom(v.Get("type"), v.Get("id"), v.Get("name"), "")
	if err != nil {
		return q, err
	}
	if f != nil {
		q.Filters = append(q.Filters, *f)
	}
	for i, s := range v["filter"] {
		fv, err := url.ParseQuery(s)
		if err != nil {
			return q, withDetail(evento.ErrInvalidQuery, fmt.Sprintf("filter %d is not URL-encoded type=…&id=…&name=…", i+1))
		}
		for k, vs := range fv {
			if k != "type" && k != "id" && k != "name" {
				return q, withDetail(evento.ErrInvalidQuery, fmt.Sprintf("filter %d: unknown field %q (want type, id, name)", i+1, clip(k)))
			}
			if len(vs) > 1 {
				return q, withDetail(evento.ErrInvalidQuery, fmt.Sprintf("filter %d: field %q given %d times", i+1, k, len(vs)))
			}
		}
		f, err := filterFrom(fv.Get("type"), fv.Get("id"), fv.Get("name"), fmt.Sprintf("filter %d: ", i+1))
		if err != nil {
			return q, err
		}
		if f == nil {
			return q, withDetail(evento.ErrInvalidQuery, fmt.Sprintf("filter %d is empty", i+1))
		}
		q.Filters = append(q.Filters, *f)
	}
	noRouting, err := boolParam(v, "noRouting")
	if err != nil {
		return q, err
	}
	switch k := v.Get("routing"); {
	case k != "" && noRouting:
		return q, withDetail(evento.ErrInvalidQuery, "routing and noRouting exclude each other")
	case k != "":
		q.Routing = evento.RoutingKey(k)
	case noRouting:
		q.Routing = evento.NoRoutingKey()
	}
	args, err := argsFromValues(v, max)
	if err != nil {
		return q, err
	}
	q.Args = args
	if err := q.Validate(max); err != nil {
		return q, withDetail(err, "query: "+firstLine(err))
	}
	return q, nil
}

func filterFrom(typ, id, name, where string) (*evento.Filter, error) {
	if typ == "" {
		if id != "" || name != "" {
			return nil, withDetail(evento.ErrInvalidQuery, where+"id and name need a type")
		}
		return nil, nil
	}
	return &evento.Filter{AggregateType: typ, AggregateID: id, Name: name}, nil
}

// argsFromValues reads first/after/last/before, with a detail that names
// the bad parameter.
func argsFromValues(v url.Values, max int) (cursor.Args, error) {
	a, err := cursor.FromValues(v, max)
	if err != nil {
		return a, withDetail(err, firstLine(err))
	}
	return a, nil
}

func boolParam(v url.Values, name string) (bool, error) {
	s := v.Get(name)
	if s == "" {
		return false, nil
	}
	switch strings.ToLower(s) {
	case "on": // an HTML checkbox
		return true, nil
	}
	b, err := strconv.ParseBool(s)
	if err != nil {
		return false, withDetail(evento.ErrInvalidQuery, fmt.Sprintf("%s=%q is not a boolean", name, clip(s)))
	}
	return b, nil
}

// firstLine returns the first line of err's text with its "pkg: " prefixes
// kept: evento's and cursor's validation messages describe the caller's
// input, not the backend.
func firstLine(err error) string {
	s := err.Error()
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	return clip(s)
}

// clip bounds a string echoed back to a client.
func clip(s string) string {
	s = strings.ToValidUTF8(s, "?")
	if len(s) > 200 {
		return strings.ToValidUTF8(s[:200], "") + "…"
	}
	return s
}
