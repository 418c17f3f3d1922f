package pebble

import (
	"os"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	if dir := os.Getenv(childEnv); dir != "" {
		runDurabilityChild(dir)
		return
	}
	goleak.VerifyTestMain(m)
}
