package eventtype_test

import (
	"reflect"
	"testing"

	"github.com/evento-go/evento/eventtype"
)

type opened struct{ Owner string }
type closed struct{ Reason string }

func TestRegistry(t *testing.T) {
	eventtype.Register("test/Acc", "Opened", func() any { return new(opened) })
	eventtype.Register("test/Acc", "Closed", func() any { return new(closed) })
	eventtype.Register("test/Acc", "Opened", func() any { return new(opened) }) // same type again: fine

	v, ok := eventtype.New("test/Acc", "Opened")
	if !ok {
		t.Fatal("Opened not registered")
	}
	if _, isPtr := v.(*opened); !isPtr {
		t.Fatalf("New = %T, want *opened", v)
	}
	if v2, _ := eventtype.New("test/Acc", "Opened"); v2 == v {
		t.Fatal("New returned the same pointer twice")
	}
	if _, ok := eventtype.New("test/Acc", "Nope"); ok {
		t.Fatal("unknown event reported as registered")
	}
	if typ, ok := eventtype.Type("test/Acc", "Closed"); !ok || typ != reflect.TypeOf(new(closed)) {
		t.Fatalf("Type = %v %v", typ, ok)
	}
	if got := eventtype.Names("test/Acc"); !reflect.DeepEqual(got, []string{"Closed", "Opened"}) {
		t.Fatalf("Names = %v", got)
	}
	found := false
	for _, a := range eventtype.AggregateTypes() {
		found = found || a == "test/Acc"
	}
	if !found {
		t.Fatal("AggregateTypes misses test/Acc")
	}
}

func TestRegisterConflictPanics(t *testing.T) {
	eventtype.Register("test/Conf", "E", func() any { return new(opened) })
	defer func() {
		if recover() == nil {
			t.Fatal("registering a different type for the same event did not panic")
		}
	}()
	eventtype.Register("test/Conf", "E", func() any { return new(closed) })
}
