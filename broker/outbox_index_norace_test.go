//go:build !race

package broker_test

// keepLastRace is set when the race detector runs: heap measurements
// mean nothing then.
const keepLastRace = false
