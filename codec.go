package evento

import (
	"fmt"

	"github.com/vmihailenco/msgpack/v5"
)

// Marshal encodes v with msgpack (github.com/vmihailenco/msgpack/v5 with its
// default options). It is the codec for event data, metadata and snapshots;
// generated encoders produce the same bytes.
func Marshal(v any) ([]byte, error) {
	b, err := msgpack.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("evento: encode %T: %w", v, err)
	}
	return b, nil
}

// Unmarshal decodes msgpack bytes into v. Any failure, including a panic in
// the decoder on hostile input, gives an error wrapping ErrDecode.
func Unmarshal(b []byte, v any) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("decode %T: panic: %v: %w", v, r, ErrDecode)
		}
	}()
	if err := msgpack.Unmarshal(b, v); err != nil {
		return fmt.Errorf("decode %T: %v: %w", v, err, ErrDecode)
	}
	return nil
}
