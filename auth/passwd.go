package auth

import (
	"bufio"
	"bytes"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha512"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
)

// DefaultIterations is the PBKDF2 iteration count of new hashes: what
// mosquitto_passwd 2.0 writes.
const DefaultIterations = 101

// saltLen is the salt length mosquitto_passwd writes; Mosquitto also
// accepts 64-byte salts.
const saltLen = 12

// hashLen is the SHA-512 digest length.
const hashLen = sha512.Size

// Passwords is a parsed password file in Mosquitto's format: one
// "username:hash" per line, where hash is
//
//	$7$<iterations>$<base64 salt>$<base64 PBKDF2-HMAC-SHA512>   (mosquitto_passwd 2.0)
//	$6$<base64 salt>$<base64 SHA-512(password + salt)>          (mosquitto_passwd 1.x)
//
// Lines starting with "#" and blank lines are ignored. A Passwords is
// immutable and safe for concurrent use.
type Passwords struct {
	users map[string]*hashEntry
}

type hashEntry struct {
	pbkdf2     bool
	iterations int
	salt, hash []byte
}

// dummy is checked for unknown users, so that a failed login costs the
// same time whether the user exists or not.
var dummy = &hashEntry{pbkdf2: true, iterations: DefaultIterations, salt: make([]byte, saltLen), hash: make([]byte, hashLen)}

// LoadPasswords reads and parses a password file.
func LoadPasswords(path string) (*Passwords, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	p, err := ParsePasswords(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return p, nil
}

// ParsePasswords parses a password file. Unlike Mosquitto, which drops
// bad lines with a warning, it reports every bad line (with its number,
// never its hash) so that a typo does not silently lock a user out.
func ParsePasswords(r io.Reader) (*Passwords, error) {
	p := &Passwords{users: make(map[string]*hashEntry)}
	var errs []error
	sc := bufio.NewScanner(r)
	sc.Buffer(nil, 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimRight(sc.Text(), " \t\r")
		if line == "" || line[0] == '#' {
			continue
		}
		user, h, ok := strings.Cut(line, ":")
		user = strings.TrimSpace(user)
		if !ok || user == "" {
			errs = append(errs, fmt.Errorf("line %d: not username:hash", n))
			continue
		}
		e, err := parseHash(strings.TrimSpace(h))
		if err != nil {
			errs = append(errs, fmt.Errorf("line %d: user %q: %w", n, user, err))
			continue
		}
		p.users[user] = e
	}
	if err := sc.Err(); err != nil {
		errs = append(errs, err)
	}
	return p, errors.Join(errs...)
}

func parseHash(h string) (*hashEntry, error) {
	f := strings.Split(h, "$")
	if len(f) < 1 || f[0] != "" {
		return nil, errors.New("hash does not start with $6$ or $7$ (plain-text passwords are not accepted; hash them with weir passwd or mosquitto_passwd -U)")
	}
	e := &hashEntry{}
	switch {
	case len(f) == 5 && f[1] == "7":
		n, err := strconv.Atoi(f[2])
		if err != nil || n < 1 {
			return nil, errors.New("bad iteration count")
		}
		e.pbkdf2, e.iterations, f = true, n, f[3:]
	case len(f) == 4 && f[1] == "6":
		f = f[2:]
	default:
		return nil, errors.New("hash is not $6$salt$hash or $7$iterations$salt$hash")
	}
	var err error
	if e.salt, err = base64.StdEncoding.DecodeString(f[0]); err != nil || len(e.salt) != saltLen && len(e.salt) != hashLen {
		return nil, errors.New("bad salt")
	}
	if e.hash, err = base64.StdEncoding.DecodeString(f[1]); err != nil || len(e.hash) != hashLen {
		return nil, errors.New("bad hash")
	}
	return e, nil
}

// Len returns the number of users.
func (p *Passwords) Len() int { return len(p.users) }

// Has reports whether the file has user.
func (p *Passwords) Has(user string) bool { _, ok := p.users[user]; return ok }

// Check reports whether password is user's. The comparison is constant
// time, and an unknown user costs as much as a known one.
func (p *Passwords) Check(user string, password []byte) bool {
	e, ok := p.users[user]
	if !ok {
		e = dummy
	}
	return e.matches(password) && ok
}

func (e *hashEntry) matches(password []byte) bool {
	var got []byte
	if e.pbkdf2 {
		var err error
		got, err = pbkdf2.Key(sha512.New, string(password), e.salt, e.iterations, hashLen)
		if err != nil {
			return false
		}
	} else {
		h := sha512.New()
		h.Write(password)
		h.Write(e.salt)
		got = h.Sum(nil)
	}
	return subtle.ConstantTimeCompare(got, e.hash) == 1
}

// Hash returns the $7$ (PBKDF2-SHA512) hash of password with a new random
// salt, as mosquitto_passwd writes it; iterations <= 0 means
// DefaultIterations.
func Hash(password string, iterations int) (string, error) {
	if iterations <= 0 {
		iterations = DefaultIterations
	}
	salt := make([]byte, saltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", err
	}
	key, err := pbkdf2.Key(sha512.New, password, salt, iterations, hashLen)
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("$7$%d$%s$%s", iterations, base64.StdEncoding.EncodeToString(salt),
		base64.StdEncoding.EncodeToString(key)), nil
}
