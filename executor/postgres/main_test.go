package postgres_test

import (
	"os"
	"testing"

	"github.com/evento-go/evento/executor/executortest"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	// Child processes of the conformance stress test (executortest), then
	// this package's own children (child_test.go).
	if executortest.IsChild() {
		os.Exit(executortest.ChildMain())
	}
	if os.Getenv(childEnv) != "" {
		os.Exit(runChild())
	}
	goleak.VerifyTestMain(m)
}
