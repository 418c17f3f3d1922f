//go:build !race

package executortest

// raceEnabled is true under the race detector: the stress test writes less.
const raceEnabled = false
