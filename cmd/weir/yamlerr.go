package main

// Turning yaml.v3's errors, which name a line, into configErrors that also
// name the key and say what is wrong in the config's own terms.

import (
	"fmt"
	"reflect"
	"regexp"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// yamlError turns a YAML syntax error into a *configError.
func yamlError(err error) error {
	line, msg := splitLine(strings.TrimPrefix(err.Error(), "yaml: "))
	return &configError{Line: line, Msg: msg}
}

// splitLine splits yaml.v3's "line N: message".
func splitLine(s string) (int, string) {
	if rest, ok := strings.CutPrefix(s, "line "); ok {
		if num, msg, ok := strings.Cut(rest, ": "); ok {
			if n, err := strconv.Atoi(num); err == nil {
				return n, msg
			}
		}
	}
	return 0, s
}

// keyIndex records where each key of a YAML document is, to give decode
// errors (which yaml.v3 reports by line) the path of their key.
type keyIndex struct {
	entries []keyEntry
}

type keyEntry struct {
	path  string
	key   *yaml.Node
	value *yaml.Node
}

func newKeyIndex(root *yaml.Node) *keyIndex {
	idx := &keyIndex{}
	idx.walk(root, "")
	return idx
}

func (idx *keyIndex) walk(n *yaml.Node, prefix string) {
	switch n.Kind {
	case yaml.DocumentNode:
		for _, c := range n.Content {
			idx.walk(c, prefix)
		}
	case yaml.SequenceNode:
		// List items are addressed as prefix[i] (bridges[0].name).
		for i, c := range n.Content {
			idx.walk(c, fmt.Sprintf("%s[%d]", prefix, i))
		}
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			path := k.Value
			if prefix != "" {
				path = prefix + "." + k.Value
			}
			idx.entries = append(idx.entries, keyEntry{path, k, v})
			idx.walk(v, path)
		}
	}
}

// lineOf returns the line of the key at path, 0 if it is not in the file.
func (idx *keyIndex) lineOf(path string) int {
	for _, e := range idx.entries {
		if e.path == path {
			return e.key.Line
		}
	}
	return 0
}

// keyAt returns the path of the key named name on line, or "".
func (idx *keyIndex) keyAt(line int, name string) string {
	for _, e := range idx.entries {
		if e.key.Line == line && e.key.Value == name {
			return e.path
		}
	}
	return ""
}

// valueAt returns the path of the key whose value of the given kind is on
// line, or "" when there is none or it is ambiguous; hint (the error
// message) picks between several keys on one line by value.
func (idx *keyIndex) valueAt(line int, kind yaml.Kind, hint string) string {
	var found []keyEntry
	for _, e := range idx.entries {
		if e.value.Line == line && e.value.Kind == kind {
			found = append(found, e)
		}
	}
	if len(found) > 1 && kind == yaml.ScalarNode {
		var byValue []keyEntry
		for _, e := range found {
			v := e.value.Value
			if len(v) > 10 {
				v = v[:7] // yaml.v3 shortens long values so
			}
			if strings.Contains(hint, "`"+v) || strings.Contains(hint, strconv.Quote(e.value.Value)) {
				byValue = append(byValue, e)
			}
		}
		found = byValue
	}
	if len(found) == 1 {
		return found[0].path
	}
	return ""
}

var (
	reUnknownField = regexp.MustCompile(`^field (\S+) not found in type \S+$`)
	reDuplicateKey = regexp.MustCompile(`^mapping key "(.*)" already defined at line (\d+)$`)
	reUnmarshal    = regexp.MustCompile("^cannot unmarshal !!(\\w+)(?: `(.*)`)? into (\\S+)$")
)

// explain turns one of yaml.v3's decode errors ("line N: ...") into a
// *configError with the key's path and a message in our words.
func (idx *keyIndex) explain(s string) error {
	line, msg := splitLine(s)
	if m := reUnknownField.FindStringSubmatch(msg); m != nil {
		path := idx.keyAt(line, m[1])
		e := &configError{Line: line, Path: path, Msg: "unknown key"}
		if path == "" {
			e.Path = m[1]
		}
		if s := suggestKey(e.Path); s != "" {
			e.Msg += fmt.Sprintf(" (did you mean %q?)", s)
		}
		return e
	}
	if m := reDuplicateKey.FindStringSubmatch(msg); m != nil {
		return &configError{Line: line, Path: idx.keyAt(line, m[1]), Msg: "duplicate key, first set at line " + m[2]}
	}
	if m := reUnmarshal.FindStringSubmatch(msg); m != nil {
		tag, value, into := m[1], m[2], m[3]
		got, kind := fmt.Sprintf("%q", value), yaml.ScalarNode
		switch tag {
		case "map":
			got, kind = "a mapping", yaml.MappingNode
		case "seq":
			got, kind = "a list", yaml.SequenceNode
		}
		return &configError{Line: line, Path: idx.valueAt(line, kind, msg), Msg: fmt.Sprintf("want %s, got %s", describeType(into), got)}
	}
	// Our own errors (size, duration): the value may be of any kind.
	path := idx.valueAt(line, yaml.ScalarNode, msg)
	for _, kind := range []yaml.Kind{yaml.SequenceNode, yaml.MappingNode} {
		if path == "" {
			path = idx.valueAt(line, kind, msg)
		}
	}
	return &configError{Line: line, Path: path, Msg: msg}
}

// describeType names a Go type of config in YAML terms.
func describeType(t string) string {
	switch {
	case strings.HasPrefix(t, "int"), strings.HasPrefix(t, "uint"):
		return "an integer"
	case t == "string":
		return "a string"
	case strings.HasSuffix(t, "Config") || t == "main.config":
		return "a mapping"
	}
	return t
}

// yamlKeys returns the YAML keys of the struct type t.
func yamlKeys(t reflect.Type) []string {
	var keys []string
	for i := range t.NumField() {
		if name, _, _ := strings.Cut(t.Field(i).Tag.Get("yaml"), ","); name != "" && name != "-" {
			keys = append(keys, name)
		}
	}
	return keys
}

// suggestKey returns the known key closest to the last element of path,
// among the keys of the same mapping, or "" if none is close.
func suggestKey(path string) string {
	parts := strings.Split(path, ".")
	t := reflect.TypeFor[config]()
	for _, p := range parts[:len(parts)-1] {
		f, ok := fieldByKey(t, p)
		if !ok || f.Type.Kind() != reflect.Struct {
			return ""
		}
		t = f.Type
	}
	name := parts[len(parts)-1]
	best, bestDist := "", 3 // suggest only within 2 edits
	for _, k := range yamlKeys(t) {
		if d := editDistance(strings.ToLower(name), k); d < bestDist {
			best, bestDist = k, d
		}
	}
	return best
}

func fieldByKey(t reflect.Type, key string) (reflect.StructField, bool) {
	for i := range t.NumField() {
		if name, _, _ := strings.Cut(t.Field(i).Tag.Get("yaml"), ","); name == key {
			return t.Field(i), true
		}
	}
	return reflect.StructField{}, false
}

// editDistance is the Levenshtein distance between a and b.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
