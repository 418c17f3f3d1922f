package cursor

import (
	"errors"
	"fmt"
	"net/url"
	"strconv"
)

// FromValues reads the Relay arguments first, after, last and before from
// query parameters (for example r.URL.Query()) and validates them against max
// (<= 0 means MaxPageSize). A non-numeric or negative size, or arguments that
// contradict each other, give an error wrapping ErrInvalidArgs or
// ErrPageTooLarge that an HTTP handler can turn into 400 Bad Request.
//
// The cursors themselves are decoded later, by the read that uses them.
func FromValues(v url.Values, max int) (Args, error) {
	var a Args
	var errs []error
	parse := func(name string) int {
		s := v.Get(name)
		if s == "" {
			return 0
		}
		n, err := strconv.Atoi(s)
		if err != nil {
			errs = append(errs, fmt.Errorf("cursor: %s=%q is not a number: %w", name, s, ErrInvalidArgs))
			return 0
		}
		return n
	}
	a.First = parse("first")
	a.Last = parse("last")
	a.After = v.Get("after")
	a.Before = v.Get("before")
	if len(errs) > 0 {
		return Args{}, errors.Join(errs...)
	}
	if err := a.Validate(max); err != nil {
		return Args{}, err
	}
	return a, nil
}

// Values returns the arguments as query parameters, the inverse of
// FromValues. Unset fields are left out.
func (a Args) Values() url.Values {
	v := url.Values{}
	if a.First > 0 {
		v.Set("first", strconv.Itoa(a.First))
	}
	if a.After != "" {
		v.Set("after", a.After)
	}
	if a.Last > 0 {
		v.Set("last", strconv.Itoa(a.Last))
	}
	if a.Before != "" {
		v.Set("before", a.Before)
	}
	return v
}
