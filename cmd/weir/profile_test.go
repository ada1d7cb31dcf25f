package main

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	badgerstore "github.com/weirmq/weir/store/badger"
)

// deployConfigPath is the configuration deploy/weir.service and
// deploy/Dockerfile install as /etc/weir/weir.yaml.
const deployConfigPath = "../../deploy/weir.yaml"

func TestResolveProfile(t *testing.T) {
	const mib = 1 << 20
	for _, tc := range []struct {
		profile string
		mem     memoryInfo
		want    string
	}{
		{"auto", memoryInfo{Total: 512 * mib}, "small"},
		{"auto", memoryInfo{Total: 920 * mib}, "small"}, // a "1 GB" board
		{"auto", memoryInfo{Total: 4096 * mib}, "default"},
		{"auto", memoryInfo{Total: 4096 * mib, Cgroup: 256 * mib}, "small"},
		{"auto", memoryInfo{Cgroup: 256 * mib}, "small"},
		{"auto", memoryInfo{}, "default"}, // unknown
		{"default", memoryInfo{Total: 256 * mib}, "default"},
		{"small", memoryInfo{Total: 4096 * mib}, "small"},
	} {
		c := config{Profile: tc.profile}
		if got := c.resolveProfile(tc.mem); got != tc.want {
			t.Errorf("profile %s with %+v: got %s, want %s", tc.profile, tc.mem, got, tc.want)
		}
	}
}

// TestSmallProfileKeepsSetKeys checks that the small profile changes only
// the limits the file leaves out.
func TestSmallProfileKeepsSetKeys(t *testing.T) {
	path := filepath.Join(t.TempDir(), "weir.yaml")
	in := "profile: small\nlimits:\n  max_connections: 50\n"
	if err := os.WriteFile(path, []byte(in), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := loadConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	cfg.applyProfile(cfg.resolveProfile(memoryInfo{}), keysInFile(path))
	want := defaultConfig()
	want.Profile = "small"
	want.Limits.MaxConnections = 50
	want.Limits.QueueMemoryWindow = 100
	want.Limits.OutboundBufferBytes = 256 << 10
	if !reflect.DeepEqual(cfg, want) {
		t.Errorf("got  %+v\nwant %+v", cfg, want)
	}

	// Without a file every profile limit applies; the default profile
	// changes nothing.
	c := defaultConfig()
	c.applyProfile("small", keysInFile(""))
	if c.Limits.MaxConnections != 1000 || c.Limits.QueueMemoryWindow != 100 {
		t.Errorf("small without a file: %+v", c.Limits)
	}
	c = defaultConfig()
	c.applyProfile("default", keysInFile(""))
	if !reflect.DeepEqual(c, defaultConfig()) {
		t.Errorf("default profile changed the config: %+v", c)
	}
}

func TestProfileInvalid(t *testing.T) {
	_, err := parseConfig([]byte("profile: tiny\nmemory_limit: -1\n"))
	var msgs []string
	for _, e := range problems(err) {
		msgs = append(msgs, e.Error())
	}
	want := []string{
		`line 1: profile: "tiny" is not one of auto, default, small`,
		`line 2: memory_limit: invalid size "-1": must not be negative`,
	}
	if strings.Join(msgs, "\n") != strings.Join(want, "\n") {
		t.Errorf("got\n%s\nwant\n%s", strings.Join(msgs, "\n"), strings.Join(want, "\n"))
	}
}

func TestStoreSizing(t *testing.T) {
	for _, tc := range []struct {
		profile  string
		intSize  int
		memtable int64
	}{
		{"default", 64, 0}, // badgerstore's default, 8 MiB
		{"default", 32, 4 << 20},
		{"small", 64, 4 << 20},
		{"small", 32, 4 << 20},
	} {
		var o badgerstore.Options
		storeSizing(&o, tc.profile, tc.intSize)
		if o.MemTableSize != tc.memtable {
			t.Errorf("%s on %d-bit: MemTableSize %d, want %d", tc.profile, tc.intSize, o.MemTableSize, tc.memtable)
		}
	}
}

func TestGoMemoryLimit(t *testing.T) {
	for _, tc := range []struct {
		key   int64
		env   string
		mem   memoryInfo
		want  int64
		wantF string
	}{
		{200 << 20, "100MiB", memoryInfo{Cgroup: 256 << 20}, 200 << 20, "memory_limit"},
		{0, "100MiB", memoryInfo{Cgroup: 256 << 20}, 0, "GOMEMLIMIT"},
		{0, "", memoryInfo{Cgroup: 250 << 20}, 200 << 20, "80% of the cgroup memory limit"},
		{0, "", memoryInfo{Total: 1 << 30}, 0, ""},
	} {
		got, from := goMemoryLimit(tc.key, tc.env, tc.mem)
		if got != tc.want || from != tc.wantF {
			t.Errorf("goMemoryLimit(%d, %q, %+v) = %d, %q; want %d, %q", tc.key, tc.env, tc.mem, got, from, tc.want, tc.wantF)
		}
	}
}

func TestParseMemTotal(t *testing.T) {
	in := "MemTotal:         948280 kB\nMemFree:          123456 kB\n"
	if got := parseMemTotal([]byte(in)); got != 948280<<10 {
		t.Errorf("got %d", got)
	}
	if got := parseMemTotal([]byte("nothing\n")); got != 0 {
		t.Errorf("got %d for no MemTotal", got)
	}
}

func TestCgroupLimit(t *testing.T) {
	files := map[string]string{
		// v2: the service's own limit and a smaller one on its slice.
		"/sys/fs/cgroup/system.slice/weir.service/memory.max": "268435456\n",
		"/sys/fs/cgroup/system.slice/memory.max":              "max\n",
		// v1
		"/sys/fs/cgroup/memory/docker/abc/memory.limit_in_bytes": "134217728\n",
		"/sys/fs/cgroup/memory/memory.limit_in_bytes":            "9223372036854771712\n",
	}
	read := func(p string) ([]byte, error) {
		if s, ok := files[p]; ok {
			return []byte(s), nil
		}
		return nil, errors.New("no such file")
	}
	for _, tc := range []struct {
		proc string
		want int64
	}{
		{"0::/system.slice/weir.service\n", 256 << 20},
		{"0::/user.slice\n", 0},
		{"12:cpu,cpuacct:/docker/abc\n11:memory:/docker/abc\n", 128 << 20},
		{"", 0},
	} {
		if got := cgroupLimit([]byte(tc.proc), read); got != tc.want {
			t.Errorf("cgroupLimit(%q) = %d, want %d", tc.proc, got, tc.want)
		}
	}
}

// TestDeployConfig checks deploy/weir.yaml, the configuration of the
// systemd unit and the Docker image: it is valid, keeps the store in
// /var/lib/weir, and lets the small profile choose the limits it does not
// set.
func TestDeployConfig(t *testing.T) {
	cfg, err := loadConfig(deployConfigPath)
	if err != nil {
		t.Fatalf("%s is invalid:\n%v", deployConfigPath, err)
	}
	if cfg.DataDir != "/var/lib/weir" || cfg.Durability == "none" {
		t.Errorf("%s: data_dir %q, durability %q; want the store in /var/lib/weir (StateDirectory=weir)",
			deployConfigPath, cfg.DataDir, cfg.Durability)
	}
	if cfg.Profile != "auto" {
		t.Errorf("%s: profile %q, want auto", deployConfigPath, cfg.Profile)
	}
	if cfg.Limits.MaxStoreBytes == 0 {
		t.Errorf("%s: set limits.max_store_bytes so the store cannot fill the SD card", deployConfigPath)
	}
	set := keysInFile(deployConfigPath)
	for _, s := range smallLimits {
		if set(s.path) {
			t.Errorf("%s sets %s, which the small profile would otherwise choose", deployConfigPath, s.path)
		}
	}
}
