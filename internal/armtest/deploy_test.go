package armtest

// The files in deploy/: the systemd unit (checked by systemd-analyze when
// it is installed) and the Dockerfile (no Docker engine is available in
// CI, so it is checked for the properties it promises and for the files
// it copies).

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/weirmq/weir/internal/brokertest"
)

const (
	repoRoot   = "../.."
	unitPath   = repoRoot + "/deploy/weir.service"
	dockerPath = repoRoot + "/deploy/Dockerfile"
	// deployConfig is the configuration the unit and the image use
	// (cmd/weir's TestDeployConfig checks that it is valid).
	deployConfig = repoRoot + "/deploy/weir.yaml"
)

// unitSettings parses a systemd unit file into section.key → values.
func unitSettings(t *testing.T, path string) map[string][]string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	settings := map[string][]string{}
	section := ""
	sc := bufio.NewScanner(strings.NewReader(string(data)))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, ";"):
		case strings.HasPrefix(line, "[") && strings.HasSuffix(line, "]"):
			section = line[1 : len(line)-1]
		default:
			k, v, ok := strings.Cut(line, "=")
			if !ok {
				t.Errorf("%s: not key=value: %q", path, line)
				continue
			}
			key := section + "." + strings.TrimSpace(k)
			settings[key] = append(settings[key], strings.TrimSpace(v))
		}
	}
	return settings
}

// TestSystemdUnit checks the hardening and paths deploy/README.md
// promises, then runs `systemd-analyze verify` on the unit.
func TestSystemdUnit(t *testing.T) {
	s := unitSettings(t, unitPath)
	want := map[string]string{
		"Service.DynamicUser":             "yes",
		"Service.StateDirectory":          "weir",
		"Service.ProtectSystem":           "strict",
		"Service.ProtectHome":             "yes",
		"Service.PrivateTmp":              "yes",
		"Service.NoNewPrivileges":         "yes",
		"Service.CapabilityBoundingSet":   "",
		"Service.Restart":                 "on-failure",
		"Service.ExecStart":               "/usr/local/bin/weir -config /etc/weir/weir.yaml",
		"Service.KillSignal":              "SIGTERM",
		"Install.WantedBy":                "multi-user.target",
		"Service.RestrictAddressFamilies": "AF_INET AF_INET6 AF_UNIX",
	}
	for k, v := range want {
		if got, ok := s[k]; !ok || got[len(got)-1] != v {
			t.Errorf("%s: %s = %q, want %q", unitPath, k, got, v)
		}
	}
	if m := s["Service.MemoryMax"]; len(m) == 0 || m[0] == "" || m[0] == "infinity" {
		t.Errorf("%s: no MemoryMax", unitPath)
	}
	// The store is in the StateDirectory.
	if data, err := os.ReadFile(deployConfig); err != nil {
		t.Fatal(err)
	} else if !regexp.MustCompile(`(?m)^data_dir: /var/lib/weir$`).Match(data) {
		t.Errorf("%s: data_dir is not /var/lib/weir, the unit's StateDirectory", deployConfig)
	}

	sa, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze is not installed: `systemd-analyze verify deploy/weir.service` not run (see deploy/README.md)")
	}
	// verify checks that ExecStart's program exists and is executable,
	// so point it at one: this test's own binary.
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(unitPath)
	if err != nil {
		t.Fatal(err)
	}
	unit := filepath.Join(t.TempDir(), "weir.service")
	if err := os.WriteFile(unit, []byte(strings.ReplaceAll(string(data), "/usr/local/bin/weir", self)), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(sa, "verify", unit).CombinedOutput()
	if err != nil || len(strings.TrimSpace(string(out))) > 0 {
		t.Errorf("systemd-analyze verify %s: %v\n%s", unitPath, err, out)
	}
	// The offline security review: an exposure of at most 2.0 ("OK").
	out, err = exec.Command(sa, "security", "--offline=yes", "--threshold=20", "--no-pager", unit).CombinedOutput()
	if err != nil {
		t.Errorf("systemd-analyze security --offline=yes --threshold=20: %v\n%s", err, out)
	}
	if m := regexp.MustCompile(`Overall exposure level for \S+: (\S+ \S+)`).FindSubmatch(out); m != nil {
		t.Logf("systemd-analyze security: exposure %s", m[1])
	}
}

// instruction is one Dockerfile instruction.
type instruction struct {
	line int
	cmd  string // upper case
	args string
}

func dockerfile(t *testing.T, path string) []instruction {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var ins []instruction
	var cur *instruction
	for i, line := range strings.Split(string(data), "\n") {
		trimmed := strings.TrimSpace(line)
		if cur == nil {
			if trimmed == "" || strings.HasPrefix(trimmed, "#") {
				continue
			}
			cmd, args, _ := strings.Cut(trimmed, " ")
			ins = append(ins, instruction{line: i + 1, cmd: strings.ToUpper(cmd)})
			cur = &ins[len(ins)-1]
			trimmed = args
		} else if strings.HasPrefix(trimmed, "#") {
			continue
		}
		cont := strings.HasSuffix(trimmed, "\\")
		cur.args = strings.TrimSpace(cur.args + " " + strings.TrimSuffix(trimmed, "\\"))
		if !cont {
			cur = nil
		}
	}
	if cur != nil {
		t.Errorf("%s: the last instruction ends with a line continuation", path)
	}
	return ins
}

// TestDockerfile checks deploy/Dockerfile without a Docker engine: known
// instructions, a multi-stage build whose final image is scratch or
// distroless, a non-root user, the data volume, the ports, and that what
// it copies from the build context exists.
func TestDockerfile(t *testing.T) {
	known := []string{"FROM", "ARG", "WORKDIR", "COPY", "RUN", "USER", "VOLUME", "EXPOSE", "STOPSIGNAL", "ENTRYPOINT", "CMD", "ENV", "LABEL"}
	ins := dockerfile(t, dockerPath)
	var froms []instruction
	finalStart := 0
	for i, in := range ins {
		if !slices.Contains(known, in.cmd) {
			t.Errorf("%s:%d: unknown instruction %s", dockerPath, in.line, in.cmd)
		}
		if in.cmd == "FROM" {
			froms = append(froms, in)
			finalStart = i
		}
	}
	if len(froms) < 2 {
		t.Fatalf("%s: %d stages, want a multi-stage build", dockerPath, len(froms))
	}
	final := ins[finalStart:]
	if base := strings.Fields(froms[len(froms)-1].args)[0]; base != "scratch" && !strings.HasPrefix(base, "gcr.io/distroless/static") {
		t.Errorf("%s: final image FROM %s, want scratch or distroless static", dockerPath, base)
	}

	last := func(cmd string) string {
		v := ""
		for _, in := range final {
			if in.cmd == cmd {
				v = in.args
			}
		}
		return v
	}
	if u := last("USER"); u == "" || u == "root" || u == "0" || strings.HasPrefix(u, "0:") || strings.HasPrefix(u, "root:") {
		t.Errorf("%s: final stage USER %q, want a non-root user", dockerPath, u)
	}
	if v := last("VOLUME"); !strings.Contains(v, "/var/lib/weir") {
		t.Errorf("%s: VOLUME %q, want /var/lib/weir (data_dir of %s)", dockerPath, v, deployConfig)
	}
	if p := strings.Fields(last("EXPOSE")); !slices.Contains(p, "1883") || !slices.Contains(p, "8080") {
		t.Errorf("%s: EXPOSE %v, want 1883 and 8080", dockerPath, p)
	}
	if !strings.Contains(last("CMD")+last("ENTRYPOINT"), "/etc/weir/weir.yaml") {
		t.Errorf("%s: the image does not run with -config /etc/weir/weir.yaml", dockerPath)
	}

	// Sources copied from the build context (the repository root).
	for _, in := range ins {
		if in.cmd != "COPY" || strings.Contains(in.args, "--from=") {
			continue
		}
		var args []string
		for _, a := range strings.Fields(in.args) {
			if !strings.HasPrefix(a, "--") {
				args = append(args, a)
			}
		}
		for _, src := range args[:len(args)-1] {
			if _, err := os.Stat(filepath.Join(repoRoot, src)); err != nil {
				t.Errorf("%s:%d: COPY %s: %v", dockerPath, in.line, src, err)
			}
		}
	}
	for _, in := range ins {
		if in.cmd == "RUN" && strings.Contains(in.args, "go build") {
			if !strings.Contains(in.args, "CGO_ENABLED=0") || !strings.Contains(in.args, "-trimpath") {
				t.Errorf("%s:%d: the build is not static and -trimpath: %s", dockerPath, in.line, in.args)
			}
			if tags := brokertest.MakeVar(t, filepath.Join(repoRoot, "Makefile"), "GOTAGS"); !strings.Contains(in.args, "-tags "+tags) {
				t.Errorf("%s:%d: the build lacks -tags %s (the Makefile's GOTAGS, as make dist builds)", dockerPath, in.line, tags)
			}
			if _, err := os.Stat(filepath.Join(repoRoot, "cmd/weir/main.go")); err != nil || !strings.Contains(in.args, "./cmd/weir") {
				t.Errorf("%s:%d: does not build ./cmd/weir", dockerPath, in.line)
			}
		}
	}
	// The Go version of the build image is the one go.mod asks for.
	gomod, err := os.ReadFile(filepath.Join(repoRoot, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^go (\d+\.\d+)`).FindSubmatch(gomod)
	if m == nil {
		t.Fatal("no go directive in go.mod")
	}
	if !slices.ContainsFunc(ins, func(in instruction) bool { return in.cmd == "ARG" && in.args == "GO_VERSION="+string(m[1]) }) {
		t.Errorf("%s: no ARG GO_VERSION=%s (go.mod's go version)", dockerPath, m[1])
	}
}
