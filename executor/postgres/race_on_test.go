//go:build race

package postgres_test

// raceEnabled: the race detector slows the stress tests several times.
const raceEnabled = true
