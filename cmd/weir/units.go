package main

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// size is a number of bytes. In YAML it is an integer or a string with a
// unit: "512KiB", "16MiB", "1MB", "1 GiB".
type size int64

// sizeUnits are the accepted units, matched case-insensitively: decimal
// (kB = 1000) and binary (KiB = 1024) multiples.
var sizeUnits = map[string]int64{
	"":    1,
	"b":   1,
	"kb":  1000,
	"mb":  1000 * 1000,
	"gb":  1000 * 1000 * 1000,
	"kib": 1 << 10,
	"mib": 1 << 20,
	"gib": 1 << 30,
}

// parseSize parses an integer number of bytes with an optional unit.
func parseSize(s string) (int64, error) {
	t := strings.TrimSpace(s)
	i := 0
	for i < len(t) && t[i] >= '0' && t[i] <= '9' {
		i++
	}
	if i == 0 {
		if strings.HasPrefix(t, "-") {
			return 0, fmt.Errorf("invalid size %q: must not be negative", s)
		}
		return 0, fmt.Errorf("invalid size %q: want a whole number of bytes with an optional unit, like 1048576 or \"1MiB\"", s)
	}
	if i < len(t) && t[i] == '.' {
		return 0, fmt.Errorf("invalid size %q: want a whole number; use a smaller unit, like \"1536KiB\" for 1.5MiB", s)
	}
	unit := strings.ToLower(strings.TrimSpace(t[i:]))
	mult, ok := sizeUnits[unit]
	if !ok {
		return 0, fmt.Errorf("invalid size %q: unknown unit %q (use B, kB, MB, GB, KiB, MiB or GiB)", s, strings.TrimSpace(t[i:]))
	}
	n, err := strconv.ParseInt(t[:i], 10, 64)
	if err != nil || n > math.MaxInt64/mult {
		return 0, fmt.Errorf("invalid size %q: too large", s)
	}
	return n * mult, nil
}

// formatSize writes n with the largest binary unit that divides it.
func formatSize(n int64) string {
	switch {
	case n != 0 && n%(1<<30) == 0:
		return fmt.Sprintf("%dGiB", n>>30)
	case n != 0 && n%(1<<20) == 0:
		return fmt.Sprintf("%dMiB", n>>20)
	case n != 0 && n%(1<<10) == 0:
		return fmt.Sprintf("%dKiB", n>>10)
	}
	return strconv.FormatInt(n, 10)
}

func (s size) String() string { return formatSize(int64(s)) }

// UnmarshalYAML implements yaml.Unmarshaler. Errors are *yaml.TypeError so
// that decoding goes on and every problem is reported.
func (s *size) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return nodeError(n, "want a size like 1048576 or \"1MiB\"")
	}
	v, err := parseSize(n.Value)
	if err != nil {
		return nodeError(n, err.Error())
	}
	*s = size(v)
	return nil
}

// duration is a time.Duration written in YAML as a Go duration string:
// "10s", "1m30s", "500ms".
type duration time.Duration

func (d duration) String() string { return time.Duration(d).String() }

// UnmarshalYAML implements yaml.Unmarshaler.
func (d *duration) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return nodeError(n, "want a duration like \"10s\"")
	}
	v, err := parseDuration(n.Value)
	if err != nil {
		return nodeError(n, err.Error())
	}
	*d = duration(v)
	return nil
}

// parseDuration is time.ParseDuration with a clearer message for a
// number without a unit, which YAML users write often.
func parseDuration(s string) (time.Duration, error) {
	v, err := time.ParseDuration(strings.TrimSpace(s))
	if err == nil {
		return v, nil
	}
	if _, nerr := strconv.ParseFloat(strings.TrimSpace(s), 64); nerr == nil {
		return 0, fmt.Errorf("invalid duration %q: missing unit; write e.g. \"%ss\"", s, strings.TrimSpace(s))
	}
	return 0, fmt.Errorf("invalid duration %q: want a number with a unit (ms, s, m, h), like \"10s\" or \"1m30s\"", s)
}

// nodeError returns the kind of error yaml.v3 collects instead of stopping
// at, in the "line N: message" form of its own errors.
func nodeError(n *yaml.Node, msg string) error {
	return &yaml.TypeError{Errors: []string{fmt.Sprintf("line %d: %s", n.Line, msg)}}
}
