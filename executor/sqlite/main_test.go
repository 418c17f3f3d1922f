package sqlite

import (
	"os"
	"testing"

	"github.com/evento-go/evento/executor/executortest"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	// Child processes of the conformance stress test (executortest), then
	// this package's own children (multiproc_test.go).
	if executortest.IsChild() {
		os.Exit(executortest.ChildMain())
	}
	if role := os.Getenv(childEnv); role != "" {
		os.Exit(runChild(role))
	}
	goleak.VerifyTestMain(m)
}
