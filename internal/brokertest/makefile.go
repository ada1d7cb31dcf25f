package brokertest

import (
	"os"
	"regexp"
	"testing"
)

// MakeVar returns the default value of the `NAME ?= value` line of the
// Makefile at path, so that tests build the binary as `make dist` does
// (GOTAGS) and check other files against it.
func MakeVar(t testing.TB, path, name string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(name) + `\s*\?=[ \t]*(.*\S)[ \t]*$`).FindSubmatch(data)
	if m == nil {
		t.Fatalf("%s: no %s ?= line", path, name)
	}
	return string(m[1])
}
