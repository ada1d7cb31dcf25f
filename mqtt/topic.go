package mqtt

import (
	"strings"
	"unicode/utf8"
)

// Topic names and topic filters, MQTT 3.1.1 §4.7 and MQTT 5.0 §4.7, §4.8.2.
//
// Clause numbers in comments are MQTT 3.1.1's where 3.1.1 has the rule; the
// UTF-8 rules are [MQTT-1.5.3-x] in 3.1.1 and [MQTT-1.5.4-x] in 5.0, and
// shared subscriptions ([MQTT-4.8.2-x]) exist only in 5.0.
//
// Everything here works on the bytes exactly as received: matching compares
// levels byte for byte and never normalizes [MQTT-4.7.3-4].

// MaxTopicLength is the longest topic the UTF-8 string encoding allows (65535 bytes).
const MaxTopicLength = 65535

// topicShareLevel is the first level that marks a shared subscription's
// topic filter, "$share/{ShareName}/{filter}" (MQTT 5.0 §4.8.2).
const topicShareLevel = "$share"

// ValidateTopicName checks a PUBLISH topic name: non-empty [MQTT-4.7.3-1],
// no '+' or '#' [MQTT-3.3.2-2] [MQTT-4.7.1-1], no U+0000 [MQTT-4.7.3-2],
// length <= 65535 bytes [MQTT-4.7.3-3], valid UTF-8 [MQTT-1.5.3-1]. Empty
// levels ("a//b", "/a", "a/") are valid. It returns a *ReasonError with Code
// TopicNameInvalid and a short Msg, or nil.
//
// A name that starts with "$share/" is not rejected: the spec forbids
// nothing of the kind for topic names, only giving "$share" its meaning in
// topic filters. Whether clients may publish to "$" topics is broker policy.
//
// ValidateTopicName does not allocate unless it returns an error.
func ValidateTopicName[T ~string | ~[]byte](name T) error {
	if msg := topicProblem(name, false); msg != "" {
		return &ReasonError{Code: TopicNameInvalid, Msg: "topic name " + msg}
	}
	return nil
}

// ValidateTopicFilter checks a subscription topic filter: non-empty
// [MQTT-4.7.3-1], '#' only as the last character and alone in its level
// [MQTT-4.7.1-2], '+' alone in its level [MQTT-4.7.1-3], no U+0000
// [MQTT-4.7.3-2], length <= 65535 bytes [MQTT-4.7.3-3], valid UTF-8
// [MQTT-1.5.3-1]. A filter whose first level is exactly "$share" is a shared
// subscription and must also satisfy the rules ParseShared applies. It
// returns a *ReasonError with Code TopicFilterInvalid and a short Msg, or nil.
//
// ValidateTopicFilter does not allocate unless it returns an error.
func ValidateTopicFilter[T ~string | ~[]byte](filter T) error {
	var msg string
	if topicIsShared(filter) {
		_, _, msg = topicSplitShared(filter)
	} else {
		msg = topicProblem(filter, true)
	}
	if msg != "" {
		return &ReasonError{Code: TopicFilterInvalid, Msg: "topic filter " + msg}
	}
	return nil
}

// ParseShared splits a shared subscription's topic filter,
// "$share/{ShareName}/{filter}" (MQTT 5.0 §4.8.2), into the share name
// (group) and the topic filter that messages are matched against.
//
// A filter whose first level is not exactly "$share" is not shared: ParseShared
// returns ok=false and a nil error without validating it (use
// ValidateTopicFilter). "$shared/x" and "$SHARE/g/x" are ordinary filters.
//
// For a shared filter the ShareName must be at least one character
// [MQTT-4.8.2-1] and must not contain '/', '+' or '#' [MQTT-4.8.2-2]; it
// must be followed by '/' and a non-empty, valid, topic filter
// [MQTT-4.8.2-2]. The whole filter must be valid UTF-8 without U+0000 and
// at most 65535 bytes. So "$share", "$share/", "$share/g", "$share/g/" and
// "$share//x" are all invalid. On failure ParseShared returns a *ReasonError
// with Code TopicFilterInvalid and zero values for the other results.
//
// The returned strings are substrings of filter; ParseShared does not
// allocate unless it returns an error.
func ParseShared(filter string) (group, topicFilter string, ok bool, err error) {
	if !topicIsShared(filter) {
		return "", "", false, nil
	}
	group, topicFilter, msg := topicSplitShared(filter)
	if msg != "" {
		return "", "", false, &ReasonError{Code: TopicFilterInvalid, Msg: "topic filter " + msg}
	}
	return group, topicFilter, true, nil
}

// MatchTopic reports whether the topic name topic matches the topic filter
// filter, following §4.7: levels are separated by '/' and compared byte for
// byte [MQTT-4.7.3-4]; '+' matches exactly one level, which may be empty;
// '#' matches its own level and every level below it, including the parent
// ("sport/#" matches "sport"). A topic that starts with '$' is not matched
// by a filter whose first level is '+' or '#' [MQTT-4.7.2-1].
//
// Both arguments must already be valid (see ValidateTopicName and
// ValidateTopicFilter); for invalid input the result is unspecified but
// MatchTopic does not panic. A shared filter must first be reduced to its
// topic filter with ParseShared: MatchTopic treats "$share/g/x" literally.
//
// MatchTopic does not allocate.
func MatchTopic(filter, topic string) bool {
	if len(topic) > 0 && topic[0] == '$' && len(filter) > 0 && (filter[0] == '+' || filter[0] == '#') {
		return false // [MQTT-4.7.2-1]
	}
	for {
		flevel, frest, fmore := strings.Cut(filter, "/")
		if flevel == "#" {
			return true // this level and everything below
		}
		tlevel, trest, tmore := strings.Cut(topic, "/")
		if flevel != "+" && flevel != tlevel {
			return false
		}
		switch {
		case !fmore && !tmore:
			return true
		case !tmore:
			// The topic has run out of levels. Only a final "#" still
			// matches: it stands for the parent level too ("a/#" matches "a").
			return frest == "#"
		case !fmore:
			return false // the topic has more levels than the filter
		}
		filter, topic = frest, trest
	}
}

// TopicLevels returns the number of levels in a topic name or filter, that
// is the number of '/' separators plus one: "a/b/c" has 3 levels, "/" has 2
// (both empty), "a" has 1. The empty string, which is not a valid topic,
// has 0. TopicLevels does not allocate.
func TopicLevels[T ~string | ~[]byte](topic T) int {
	if len(topic) == 0 {
		return 0
	}
	n := 1
	for i := 0; i < len(topic); i++ {
		if topic[i] == '/' {
			n++
		}
	}
	return n
}

// topicProblem returns what is wrong with s as a topic name (filter false)
// or a non-shared topic filter (filter true), as a phrase that follows
// "topic name" or "topic filter" in an error message, or "" if s is valid.
//
// It makes one pass over the bytes and does not allocate. The type
// parameter lets it read a decoded PUBLISH's []byte topic without
// converting it to a string (which would copy it).
//
// U+0001..U+001F and U+007F..U+009F are accepted. The spec says the data
// SHOULD NOT contain them and that a receiver MAY treat a packet containing
// them as malformed (3.1.1 §1.5.3, 5.0 §1.5.4), so rejecting them is a
// choice, not a requirement, and clients in the field do send them. Policy
// that wants them rejected belongs in the broker. Likewise U+FEFF is kept as
// an ordinary character and never stripped [MQTT-1.5.3-3].
func topicProblem[T ~string | ~[]byte](s T, filter bool) string {
	if len(s) == 0 {
		return "is empty" // [MQTT-4.7.3-1]
	}
	if len(s) > MaxTopicLength {
		return "is longer than 65535 bytes" // [MQTT-4.7.3-3]
	}
	level := 0 // index where the current level starts
	for i := 0; i < len(s); {
		c := s[i]
		if c >= utf8.RuneSelf {
			size := topicRuneSize(s[i:])
			if size == 0 {
				return "is not valid UTF-8" // [MQTT-1.5.3-1]
			}
			i += size // no byte of a multi-byte rune is ASCII
			continue
		}
		switch c {
		case 0:
			return "contains U+0000" // [MQTT-4.7.3-2]
		case '/':
			level = i + 1
		case '#':
			if !filter {
				return "contains wildcard '#'" // [MQTT-3.3.2-2] [MQTT-4.7.1-1]
			}
			if i != level || i != len(s)-1 {
				return "has '#' that is not the whole last level" // [MQTT-4.7.1-2]
			}
		case '+':
			if !filter {
				return "contains wildcard '+'" // [MQTT-3.3.2-2] [MQTT-4.7.1-1]
			}
			if i != level || (i+1 < len(s) && s[i+1] != '/') {
				return "has '+' that is not a whole level" // [MQTT-4.7.1-3]
			}
		}
		i++
	}
	return ""
}

// topicRuneSize returns the length of the well-formed UTF-8 encoding of a
// rune at the start of s, or 0 if s does not start with one: an overlong
// form, a surrogate (U+D800..U+DFFF, which [MQTT-1.5.3-1] names), a value
// above U+10FFFF, a stray continuation byte or a truncated sequence. These
// are the rules utf8.Valid applies. Only the first few bytes are copied, to
// an array on the stack, so that one function serves strings and byte slices
// without converting (and so copying) the whole input.
func topicRuneSize[T ~string | ~[]byte](s T) int {
	var buf [utf8.UTFMax]byte
	n := copy(buf[:], s)
	r, size := utf8.DecodeRune(buf[:n])
	if r == utf8.RuneError && size <= 1 {
		return 0 // size 3 would be a literal U+FFFD, which is valid
	}
	return size
}

// topicIsShared reports whether the first level of filter is exactly
// "$share", which makes it a shared subscription's filter (MQTT 5.0 §4.8.2).
// "$share" on its own counts, so that it is rejected rather than accepted as
// an ordinary filter that no published topic could ever be meant to match.
func topicIsShared[T ~string | ~[]byte](filter T) bool {
	n := len(topicShareLevel)
	if len(filter) < n || (len(filter) > n && filter[n] != '/') {
		return false
	}
	for i := 0; i < n; i++ {
		if filter[i] != topicShareLevel[i] {
			return false
		}
	}
	return true
}

// topicSplitShared splits a filter for which topicIsShared is true into the
// share name and the topic filter, and returns what is wrong with it (as for
// topicProblem) or "".
func topicSplitShared[T ~string | ~[]byte](filter T) (group, topicFilter T, problem string) {
	if len(filter) > MaxTopicLength {
		return group, topicFilter, "is longer than 65535 bytes" // [MQTT-4.7.3-3]
	}
	rest := filter[min(len(topicShareLevel)+1, len(filter)):] // after "$share/"
	end := -1
	for i := 0; i < len(rest); i++ {
		if rest[i] == '/' {
			end = i
			break
		}
	}
	switch {
	case len(rest) == 0 || end == 0:
		return group, topicFilter, "has an empty share name" // [MQTT-4.8.2-1]
	case end < 0:
		return group, topicFilter, "has no topic filter after the share name" // [MQTT-4.8.2-2]
	}
	group, topicFilter = rest[:end], rest[end+1:]
	for i := 0; i < len(group); i++ {
		switch group[i] {
		case '+', '#': // '/' cannot occur: the name ends at the first '/'
			return group, topicFilter, "has a wildcard in the share name" // [MQTT-4.8.2-2]
		}
	}
	if p := topicProblem(group, false); p != "" {
		return group, topicFilter, "has a share name that " + p // U+0000 or bad UTF-8
	}
	if len(topicFilter) == 0 {
		return group, topicFilter, "has no topic filter after the share name" // [MQTT-4.8.2-2]
	}
	return group, topicFilter, topicProblem(topicFilter, true)
}
