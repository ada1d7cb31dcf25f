package auth

import (
	"strings"
	"testing"
)

const testACL = `
# anonymous section
topic read public/#
topic deny public/secret

user alice
topic readwrite alice/#
topic write sensors/+/temp
topic deny sensors/42/temp
topic $SYS/broker/#

user bob
topic read #

pattern readwrite devices/%c/#
pattern read users/%u/inbox
pattern deny devices/%c/locked
`

func mustACL(t *testing.T, s string) *ACL {
	t.Helper()
	a, err := ParseACL(strings.NewReader(s))
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func TestACLAllowed(t *testing.T) {
	a := mustACL(t, testACL)
	anon := Client{ClientID: "anon1"}
	alice := Client{Username: "alice", HasUser: true, ClientID: "a1"}
	bob := Client{Username: "bob", HasUser: true, ClientID: "b1"}
	carol := Client{Username: "carol", HasUser: true, ClientID: "c1"} // no user section: patterns only
	evil := Client{Username: "eve", HasUser: true, ClientID: "+"}
	for _, c := range []struct {
		name  string
		who   Client
		acc   Access
		topic string
		want  bool
	}{
		{"anonymous section read", anon, Read, "public/news", true},
		{"anonymous section is read only", anon, Write, "public/news", false},
		{"anonymous deny wins over read", anon, Read, "public/secret", false},
		{"anonymous # matches parent", anon, Read, "public", true},
		{"anonymous elsewhere", anon, Read, "alice/x", false},
		{"anonymous pattern %c", anon, Write, "devices/anon1/cmd", true},
		{"anonymous skips %u patterns", anon, Read, "users//inbox", false},
		{"user readwrite", alice, Write, "alice/a/b", true},
		{"user does not get anonymous section", alice, Read, "public/news", false},
		{"user write-only + wildcard", alice, Write, "sensors/7/temp", true},
		{"write-only rule does not grant read", alice, Read, "sensors/7/temp", false},
		{"deny placed first", alice, Write, "sensors/42/temp", false},
		{"+ is one level", alice, Write, "sensors/7/8/temp", false},
		{"explicit $SYS rule", alice, Read, "$SYS/broker/uptime", true},
		{"# does not match $SYS", bob, Read, "$SYS/broker/uptime", false},
		{"# read all", bob, Read, "anything/at/all", true},
		{"# read is not write", bob, Write, "anything", false},
		{"pattern %c for a user", alice, Write, "devices/a1/state", true},
		{"pattern %c other client", alice, Write, "devices/b1/state", false},
		{"pattern %u", carol, Read, "users/carol/inbox", true},
		{"pattern %u other user", carol, Read, "users/alice/inbox", false},
		{"pattern deny first", carol, Write, "devices/c1/locked", false},
		{"no section, no pattern match", carol, Read, "public/news", false},
		{"wildcard client id denied with patterns", evil, Write, "devices/+/x", false},
		{"empty username is no level", Client{HasUser: true, ClientID: "e1"}, Read, "users//inbox", false},
		{"%u is a whole level only", carol, Read, "users/carolx/inbox", false},
	} {
		if got := a.Allowed(c.who, c.acc, c.topic); got != c.want {
			t.Errorf("%s: Allowed(%+v, %d, %q) = %v, want %v", c.name, c.who, c.acc, c.topic, got, c.want)
		}
	}
}

func TestACLAllowedSubscribe(t *testing.T) {
	a := mustACL(t, testACL+`
user dave
topic read a/b
topic read x/+/z
topic deny secret/#
topic read secret/ok
topic read #
`)
	dave := Client{Username: "dave", HasUser: true, ClientID: "d1"}
	only := mustACL(t, "user dave\ntopic read a/b\ntopic read x/+/z\ntopic write w/#\n")
	for _, c := range []struct {
		name   string
		acl    *ACL
		filter string
		want   bool
	}{
		{"exact", only, "a/b", true},
		{"wider # intersects a/b", only, "a/#", true},
		{"+ intersects", only, "+/b", true},
		{"# intersects everything readable", only, "#", true},
		{"disjoint", only, "a/c", false},
		{"deeper than the rule", only, "a/b/c", false},
		{"rule + vs filter literal", only, "x/y/z", true},
		{"rule + vs filter #", only, "x/#", true},
		{"write-only rule gives no subscription", only, "w/1", false},
		{"deny covering the filter", a, "secret/a", false},
		{"deny covering a wildcard filter", a, "secret/+/b", false},
		{"deny covers parent via #", a, "secret", false},
		{"deny does not cover a wider filter", a, "#", true},
		{"$ filter needs a $ rule", a, "$SYS/#", false},
	} {
		if got := c.acl.AllowedSubscribe(dave, c.filter); got != c.want {
			t.Errorf("%s: AllowedSubscribe(%q) = %v, want %v", c.name, c.filter, got, c.want)
		}
	}
	alice := Client{Username: "alice", HasUser: true, ClientID: "a1"}
	b := mustACL(t, testACL)
	for _, c := range []struct {
		filter string
		who    Client
		want   bool
	}{
		{"$SYS/broker/load", alice, true},
		{"$SYS/#", alice, true},
		{"#", Client{Username: "bob", HasUser: true, ClientID: "b"}, true},
		{"users/carol/#", Client{Username: "carol", HasUser: true, ClientID: "c"}, true},
		{"users/+/inbox", Client{Username: "carol", HasUser: true, ClientID: "c"}, true},
		{"users/alice/inbox", Client{Username: "carol", HasUser: true, ClientID: "c"}, false},
		{"devices/c/locked", Client{Username: "carol", HasUser: true, ClientID: "c"}, false},
		{"devices/c/#", Client{Username: "carol", HasUser: true, ClientID: "c"}, true},
	} {
		if got := b.AllowedSubscribe(c.who, c.filter); got != c.want {
			t.Errorf("AllowedSubscribe(%+v, %q) = %v, want %v", c.who, c.filter, got, c.want)
		}
	}
}

func TestACLEmptyDeniesAll(t *testing.T) {
	a := mustACL(t, "# nothing\n")
	if a.Allowed(Client{ClientID: "x"}, Read, "a") || a.AllowedSubscribe(Client{ClientID: "x"}, "#") {
		t.Error("empty ACL allows")
	}
}

func TestParseACLReportsEveryBadLine(t *testing.T) {
	_, err := ParseACL(strings.NewReader("topic read a/#\ntopic sometimes a\nuser\nfrob x\ntopic read a/#/b\n"))
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{"line 2", "line 3", "line 4", "line 5"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %s", err, want)
		}
	}
	if strings.Contains(err.Error(), "line 1:") {
		t.Errorf("error %q names the good line", err)
	}
}

func TestACLTopicWithoutAccessIsReadWrite(t *testing.T) {
	a := mustACL(t, "topic a/b\n")
	c := Client{ClientID: "x"}
	if !a.Allowed(c, Read, "a/b") || !a.Allowed(c, Write, "a/b") {
		t.Error("topic without access is not readwrite")
	}
}
