package evento

import "errors"

// ErrInvalidSubscriberArgs means a subscriber store call got arguments no
// backend accepts: an empty key, holder or worker, a ttl that is not
// positive, an empty selection. Nothing was changed.
var ErrInvalidSubscriberArgs = errors.New("evento: invalid subscriber store arguments")
