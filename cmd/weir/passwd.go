package main

// The "weir passwd" subcommand: mosquitto_passwd's add, update and delete
// for a password file that both Weir and Mosquitto read.

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"unicode/utf8"

	"github.com/weirmq/weir/auth"
)

const passwdUsage = `Usage: weir passwd [-c] [-I iterations] FILE USERNAME        (asks for the password)
       weir passwd -b [-c] [-I iterations] FILE USERNAME PASSWORD
       weir passwd -D FILE USERNAME

Adds USERNAME to the password FILE, or changes its password; -D deletes
it. The file has Mosquitto's format ($7$ PBKDF2-SHA512 hashes): the same
file works with mosquitto and with Weir's auth.password_file. Send the
broker SIGHUP to load the change.

Flags:
`

// runPasswd runs "weir passwd" with args after "passwd" and returns the
// exit status.
func runPasswd(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("weir passwd", flag.ContinueOnError)
	fs.SetOutput(stderr)
	create := fs.Bool("c", false, "create the file, replacing it if it exists")
	batch := fs.Bool("b", false, "take the password from the command line (it shows in the process list and shell history)")
	del := fs.Bool("D", false, "delete the user")
	iterations := fs.Int("I", auth.DefaultIterations, "PBKDF2 `iterations`")
	fs.Usage = func() {
		fmt.Fprint(stderr, passwdUsage)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	want := 2
	if *batch {
		want = 3
	}
	switch {
	case fs.NArg() != want:
		fmt.Fprintf(stderr, "weir passwd: want %d arguments, got %d\n\n", want, fs.NArg())
		fs.Usage()
		return 2
	case *del && (*create || *batch):
		fmt.Fprintln(stderr, "weir passwd: -D cannot be used with -c or -b")
		return 2
	case *iterations < 1:
		fmt.Fprintln(stderr, "weir passwd: -I must be at least 1")
		return 2
	}
	path, user := fs.Arg(0), fs.Arg(1)
	if err := checkUsername(user); err != nil {
		fmt.Fprintf(stderr, "weir passwd: %v\n", err)
		return 1
	}
	var lines []string
	if !*create {
		data, err := os.ReadFile(path)
		if err != nil {
			fmt.Fprintf(stderr, "weir passwd: %v (use -c to create the file)\n", err)
			return 1
		}
		lines = strings.SplitAfter(string(data), "\n")
		if lines[len(lines)-1] == "" {
			lines = lines[:len(lines)-1]
		}
	}
	if *del {
		kept, found := setUser(lines, user, "")
		if !found {
			fmt.Fprintf(stderr, "weir passwd: user %q is not in %s\n", user, path)
			return 1
		}
		return writePasswd(path, kept, stderr)
	}
	var pw string
	if *batch {
		pw = fs.Arg(2)
	} else {
		var err error
		if pw, err = askPassword(stdin, stderr); err != nil {
			fmt.Fprintf(stderr, "weir passwd: %v\n", err)
			return 1
		}
	}
	h, err := auth.Hash(pw, *iterations)
	if err != nil {
		fmt.Fprintf(stderr, "weir passwd: %v\n", err)
		return 1
	}
	lines, _ = setUser(lines, user, user+":"+h+"\n")
	return writePasswd(path, lines, stderr)
}

// checkUsername refuses names the file format cannot hold.
func checkUsername(u string) error {
	switch {
	case u == "":
		return errors.New("empty username")
	case strings.ContainsAny(u, ":\r\n"):
		return fmt.Errorf("username %q contains \":\" or a line break", u)
	case !utf8.ValidString(u) || len(u) > 65535:
		return errors.New("username must be valid UTF-8 of at most 65535 bytes")
	}
	return nil
}

// setUser replaces the line of user with line ("" deletes it), or appends
// line if the user has none; comments and other users stay as they are.
func setUser(lines []string, user, line string) ([]string, bool) {
	out := make([]string, 0, len(lines)+1)
	found := false
	for _, l := range lines {
		name, _, ok := strings.Cut(l, ":")
		if ok && !strings.HasPrefix(l, "#") && strings.TrimSpace(name) == user {
			if !found && line != "" {
				out = append(out, line)
			}
			found = true
			continue
		}
		if l != "" && !strings.HasSuffix(l, "\n") {
			l += "\n"
		}
		out = append(out, l)
	}
	if !found && line != "" {
		out = append(out, line)
	}
	return out, found
}

// writePasswd replaces the file atomically, keeping its permissions
// (0600 for a new file).
func writePasswd(path string, lines []string, stderr io.Writer) int {
	mode := os.FileMode(0o600)
	if st, err := os.Stat(path); err == nil {
		mode = st.Mode().Perm()
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".passwd-*")
	if err == nil {
		_, err = tmp.WriteString(strings.Join(lines, ""))
		if cerr := tmp.Close(); err == nil {
			err = cerr
		}
		if err == nil {
			err = os.Chmod(tmp.Name(), mode)
		}
		if err == nil {
			err = os.Rename(tmp.Name(), path)
		}
		if err != nil {
			os.Remove(tmp.Name())
		}
	}
	if err != nil {
		fmt.Fprintf(stderr, "weir passwd: writing %s: %v\n", path, err)
		return 1
	}
	return 0
}

// askPassword reads the password twice: from the terminal without echo
// when stdin is one, else as two lines of stdin.
func askPassword(stdin io.Reader, stderr io.Writer) (string, error) {
	restore := noEcho(stdin)
	defer restore()
	br := bufio.NewReader(stdin)
	read := func(prompt string) (string, error) {
		fmt.Fprint(stderr, prompt)
		s, err := br.ReadString('\n')
		fmt.Fprintln(stderr)
		if err != nil && (err != io.EOF || s == "") {
			return "", errors.New("no password given")
		}
		return strings.TrimRight(s, "\r\n"), nil
	}
	pw, err := read("Password: ")
	if err != nil {
		return "", err
	}
	again, err := read("Reenter password: ")
	if err != nil {
		return "", err
	}
	if pw != again {
		return "", errors.New("passwords do not match")
	}
	if pw == "" {
		return "", errors.New("empty password")
	}
	return pw, nil
}
