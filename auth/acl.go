package auth

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/weirmq/weir/mqtt"
)

// Access is what an ACL rule grants.
type Access uint8

// Access values; a rule with Deny refuses what it matches.
const (
	Deny      Access = 0
	Read      Access = 1
	Write     Access = 2
	ReadWrite Access = Read | Write
)

// ACL is a parsed ACL file in Mosquitto's format:
//
//	# comment
//	topic [read|write|readwrite|deny] <filter>    rules of the anonymous section
//	user <username>                               rules below belong to this user
//	topic [read|write|readwrite|deny] <filter>
//	pattern [read|write|readwrite|deny] <filter>  for every client; %u and %c
//	                                              stand for a whole level: the
//	                                              username and the client id
//
// "topic" without an access word means readwrite. "topic" lines before
// the first "user" line form the anonymous section, which applies to
// clients that sent no username; "pattern" lines apply to everyone
// wherever they are in the file.
//
// Evaluation follows Mosquitto 2.0: the client's own rules (its user
// section, or the anonymous section) are tried first, then the patterns;
// within each list deny rules come first; the first rule that matches
// decides. Nothing matching means denied, so an empty file denies all.
// With patterns present, a username or client id containing "+" or "#"
// is denied everything (it could otherwise match other clients' levels).
// A rule whose filter does not start with "$" never matches a "$" topic.
//
// An ACL is immutable and safe for concurrent use.
type ACL struct {
	anon     []rule
	users    map[string][]rule
	patterns []rule
}

type rule struct {
	access  Access
	filter  string
	levels  []string
	pattern bool
}

// LoadACL reads and parses an ACL file.
func LoadACL(path string) (*ACL, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	a, err := ParseACL(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return a, nil
}

// ParseACL parses an ACL file and reports every bad line.
func ParseACL(r io.Reader) (*ACL, error) {
	a := &ACL{users: make(map[string][]rule)}
	var errs []error
	user, inUser := "", false
	sc := bufio.NewScanner(r)
	sc.Buffer(nil, 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		kw, rest := cutField(line)
		switch kw {
		case "user":
			if rest == "" {
				errs = append(errs, fmt.Errorf("line %d: user without a name", n))
				continue
			}
			user, inUser = rest, true
			if _, ok := a.users[user]; !ok {
				a.users[user] = nil
			}
		case "topic", "pattern":
			acc, filter := ReadWrite, rest
			if word, f := cutField(rest); f != "" {
				var ok bool
				if acc, ok = parseAccess(word); !ok {
					errs = append(errs, fmt.Errorf("line %d: access %q is not read, write, readwrite or deny", n, word))
					continue
				}
				filter = f
			}
			if err := mqtt.ValidateTopicFilter(filter); err != nil || filter == "" {
				errs = append(errs, fmt.Errorf("line %d: invalid topic filter %q", n, filter))
				continue
			}
			rl := rule{access: acc, filter: filter, levels: strings.Split(filter, "/"), pattern: kw == "pattern"}
			switch {
			case rl.pattern:
				a.patterns = addRule(a.patterns, rl)
			case inUser:
				a.users[user] = addRule(a.users[user], rl)
			default:
				a.anon = addRule(a.anon, rl)
			}
		default:
			errs = append(errs, fmt.Errorf("line %d: %q is not topic, pattern or user", n, kw))
		}
	}
	if err := sc.Err(); err != nil {
		errs = append(errs, err)
	}
	return a, errors.Join(errs...)
}

// cutField splits off the first space-separated word.
func cutField(s string) (word, rest string) {
	i := strings.IndexAny(s, " \t")
	if i < 0 {
		return s, ""
	}
	return s[:i], strings.TrimSpace(s[i:])
}

func parseAccess(s string) (Access, bool) {
	switch s {
	case "read":
		return Read, true
	case "write":
		return Write, true
	case "readwrite":
		return ReadWrite, true
	case "deny":
		return Deny, true
	}
	return 0, false
}

// addRule appends r, or puts it before the other rules if it denies, as
// Mosquitto does.
func addRule(list []rule, r rule) []rule {
	if r.access != Deny {
		return append(list, r)
	}
	n := 0
	for n < len(list) && list[n].access == Deny {
		n++
	}
	list = append(list, rule{})
	copy(list[n+1:], list[n:])
	list[n] = r
	return list
}

// Client is who asks: the username (with hasUser false for a client that
// sent none) and the client id.
type Client struct {
	Username string
	HasUser  bool
	ClientID string
}

// Allowed reports whether c may publish (Write) to or receive (Read) a
// message on topic.
func (a *ACL) Allowed(c Client, acc Access, topic string) bool {
	return a.decide(&c, &query{acc: acc, topic: topic})
}

// AllowedSubscribe reports whether c may subscribe to filter. A
// subscription is allowed when some topic it can match is readable
// (its filter intersects a read rule): subscribing to "a/#" with only
// "a/b" readable is allowed, and only "a/b" is then delivered, because
// every delivery is checked with Allowed as well. It is refused when a
// deny rule covers every topic it can match, or nothing readable
// intersects it. (Mosquitto 2.0 accepts every subscription and filters
// only on delivery; refusing the ones that can never deliver anything
// tells the client at once, with SUBACK 0x87 / 0x80.)
func (a *ACL) AllowedSubscribe(c Client, filter string) bool {
	return a.decide(&c, &query{sub: true, filter: strings.Split(filter, "/")})
}

// query is what decide asks each rule: may c access topic with acc, or
// (sub) may it subscribe to filter.
type query struct {
	acc    Access
	topic  string
	sub    bool
	filter []string
}

// try reports whether rule r decides q and, if so, what.
func (q *query) try(r *rule, c *Client) (matched, allowed bool) {
	if q.sub {
		if r.access == Deny {
			return covers(r, c, q.filter), false
		}
		return r.access&Read != 0 && intersects(r, c, q.filter), true
	}
	if !matchTopic(r, c, q.topic) {
		return false, false
	}
	// A matching rule that grants something else does not decide.
	return r.access == Deny || r.access&q.acc != 0, r.access != Deny
}

// decide runs the rules in Mosquitto's order; the first rule that
// matches decides.
func (a *ACL) decide(c *Client, q *query) bool {
	list := a.anon
	if c.HasUser {
		list = a.users[c.Username]
	}
	for i := range list {
		if m, ok := q.try(&list[i], c); m {
			return ok
		}
	}
	if len(a.patterns) == 0 {
		return false
	}
	if strings.ContainsAny(c.Username, "+#") || strings.ContainsAny(c.ClientID, "+#") {
		return false
	}
	for i := range a.patterns {
		r := &a.patterns[i]
		// An empty name never stands for a level (as in Mosquitto).
		if r.uses("%u") && (!c.HasUser || c.Username == "") || r.uses("%c") && c.ClientID == "" {
			continue
		}
		if m, ok := q.try(r, c); m {
			return ok
		}
	}
	return false
}

// uses reports whether a pattern has the level v ("%u" or "%c").
func (r *rule) uses(v string) bool {
	for _, l := range r.levels {
		if l == v {
			return true
		}
	}
	return false
}

// level returns the rule's level i with %u and %c put in for a pattern.
func (r *rule) level(i int, c *Client) string {
	l := r.levels[i]
	if r.pattern {
		switch l {
		case "%u":
			return c.Username
		case "%c":
			return c.ClientID
		}
	}
	return l
}

// dollarMismatch reports whether a rule must be skipped for a "$" topic
// or filter that it does not name explicitly [MQTT-4.7.2-1].
func dollarMismatch(r *rule, first string) bool {
	return strings.HasPrefix(first, "$") != strings.HasPrefix(r.filter, "$") &&
		(strings.HasPrefix(first, "$") || first == "#" || first == "+")
}

// matchTopic reports whether the rule's filter matches topic.
func matchTopic(r *rule, c *Client, topic string) bool {
	if strings.HasPrefix(topic, "$") && !strings.HasPrefix(r.filter, "$") {
		return false
	}
	for i := 0; ; i++ {
		if i == len(r.levels) {
			return false // the topic has more levels
		}
		fl := r.level(i, c)
		if fl == "#" {
			return true
		}
		tl, rest, more := strings.Cut(topic, "/")
		if fl != "+" && fl != tl {
			return false
		}
		if !more {
			return i == len(r.levels)-1 || i == len(r.levels)-2 && r.levels[i+1] == "#"
		}
		topic = rest
	}
}

// intersects reports whether some topic matches both the rule's filter
// and the filter f.
func intersects(r *rule, c *Client, f []string) bool {
	if dollarMismatch(r, f[0]) {
		return false
	}
	for i := 0; ; i++ {
		switch {
		case i == len(r.levels) && i == len(f):
			return true
		case i == len(r.levels):
			return f[i] == "#" // "#" matches the parent level too
		case i == len(f):
			return r.levels[i] == "#"
		}
		rl := r.level(i, c)
		if rl == "#" || f[i] == "#" {
			return true
		}
		if rl != "+" && f[i] != "+" && rl != f[i] {
			return false
		}
	}
}

// covers reports whether every topic that filter f matches is matched by
// the rule's filter.
func covers(r *rule, c *Client, f []string) bool {
	if dollarMismatch(r, f[0]) {
		return false
	}
	for i := 0; ; i++ {
		if i < len(r.levels) && r.levels[i] == "#" {
			return true
		}
		switch {
		case i == len(r.levels) && i == len(f):
			return true
		case i == len(r.levels), i == len(f):
			return false
		}
		rl := r.level(i, c)
		switch {
		case f[i] == "#":
			return false
		case rl == "+":
		case f[i] == "+" || rl != f[i]:
			return false
		}
	}
}
