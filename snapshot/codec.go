package snapshot

import (
	"fmt"
	"reflect"

	"github.com/evento-go/evento"
)

// Encode encodes an aggregate's state for a snapshot with evento.Marshal.
// state is usually a pointer to the aggregate struct.
func Encode(state any) ([]byte, error) {
	b, err := evento.Marshal(state)
	if err != nil {
		return nil, fmt.Errorf("snapshot: %w", err)
	}
	return b, nil
}

// Decode restores a snapshot's state into target, which must be a non-nil
// pointer. It decodes into a fresh zero value of the pointed-to type and
// stores it through target only if decoding succeeded, so on error target
// is unchanged. The error wraps evento.ErrDecode.
func Decode(data []byte, target any) error {
	if !Decodable(target) {
		return fmt.Errorf("snapshot: decode into %T: not a non-nil pointer: %w", target, evento.ErrDecode)
	}
	v := reflect.ValueOf(target)
	fresh := reflect.New(v.Type().Elem())
	if err := evento.Unmarshal(data, fresh.Interface()); err != nil {
		return fmt.Errorf("snapshot: %w", err)
	}
	v.Elem().Set(fresh.Elem())
	return nil
}

// Decodable reports whether Decode can restore into target: target is a
// non-nil pointer.
func Decodable(target any) bool {
	v := reflect.ValueOf(target)
	return v.IsValid() && v.Kind() == reflect.Pointer && !v.IsNil()
}
