//go:build linux

package procmaps

import (
	"bytes"
	"os"
	"testing"
)

// TestWalkFindsExecutable: the test binary's own code mapping is listed
// with its path and an executable permission.
func TestWalkFindsExecutable(t *testing.T) {
	exe, err := os.Readlink("/proc/self/exe")
	if err != nil {
		t.Fatal(err)
	}
	found := false
	if err := Walk(func(m Mapping) {
		if string(m.Path) == exe && bytes.IndexByte(m.Perms, 'x') >= 0 && m.End > m.Start {
			found = true
		}
	}); err != nil {
		t.Fatal(err)
	}
	if !found {
		t.Errorf("no executable mapping of %s", exe)
	}
}
