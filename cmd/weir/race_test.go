//go:build race

package main

// raceEnabled makes main_test.go build the binary with -race too.
const raceEnabled = true
