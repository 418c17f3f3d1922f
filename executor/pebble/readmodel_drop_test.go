package pebble

import (
	"context"
	"testing"
	"time"

	"github.com/evento-go/evento"
)

// TestDropReadModel checks that dropping a namespace deletes its keys and
// none of another key's, even one that extends its name.
func TestDropReadModel(t *testing.T) {
	ctx := context.Background()
	s, err := Open(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	keys := []string{"bal", "bal@v2", "ba"}
	for _, key := range keys {
		l, err := s.ClaimLease(ctx, key, 0, "w", time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		err = s.AcknowledgeTx(ctx, l, func(tx evento.AckTx) (evento.Ack, error) {
			kv := tx.(*ackTx).kv
			for _, k := range []string{"a", "b"} {
				if err := kv.Set([]byte(k), []byte(key)); err != nil {
					return evento.Ack{}, err
				}
			}
			return evento.Ack{}, nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := s.DropReadModel(ctx, "bal"); err != nil {
		t.Fatal(err)
	}
	count := func(key string) int {
		n := 0
		if err := s.ReadModel(key).Scan(ctx, nil, func(k, v []byte) error {
			if string(v) != key {
				t.Errorf("%s/%s = %q", key, k, v)
			}
			n++
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		return n
	}
	if n := count("bal"); n != 0 {
		t.Errorf("dropped namespace has %d keys", n)
	}
	if count("bal@v2") != 2 || count("ba") != 2 {
		t.Errorf("other namespaces: bal@v2 %d keys, ba %d keys; want 2 each", count("bal@v2"), count("ba"))
	}
}
