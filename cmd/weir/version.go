package main

import (
	"fmt"
	"runtime"
	"runtime/debug"
)

// Set at link time:
//
//	go build -ldflags "-X main.version=v0.1.0 -X main.commit=$(git rev-parse HEAD)" ./cmd/weir
var (
	version = "dev"
	commit  = ""
)

// buildVersion returns the version and commit, falling back to what the Go
// toolchain recorded in the binary: the module version for `go install
// module@version`, and vcs.revision when built inside a git checkout.
func buildVersion() (ver, rev string) {
	ver, rev = version, commit
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return ver, rev
	}
	if ver == "dev" && info.Main.Version != "" && info.Main.Version != "(devel)" {
		ver = info.Main.Version
	}
	if rev == "" {
		modified := false
		for _, s := range info.Settings {
			switch s.Key {
			case "vcs.revision":
				rev = s.Value
			case "vcs.modified":
				modified = s.Value == "true"
			}
		}
		if rev != "" && modified {
			rev += "-dirty"
		}
	}
	return ver, rev
}

func versionString() string {
	ver, rev := buildVersion()
	if rev == "" {
		rev = "unknown"
	}
	return fmt.Sprintf("weir %s (commit %s, %s %s/%s)", ver, rev, runtime.Version(), runtime.GOOS, runtime.GOARCH)
}
