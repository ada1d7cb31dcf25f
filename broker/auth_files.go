package broker

import (
	"errors"
	"fmt"
	"slices"
	"sync/atomic"

	"github.com/weirmq/weir/auth"
	"github.com/weirmq/weir/mqtt"
)

// FileAccessConfig names the files of a FileAccess.
type FileAccessConfig struct {
	// PasswordFile is a Mosquitto password file (mosquitto_passwd or
	// weir passwd). Empty: no password file.
	PasswordFile string
	// ACLFile is a Mosquitto ACL file. Empty: every authenticated client
	// may publish and subscribe to everything.
	ACLFile string
	// AllowAnonymous accepts clients that send no username. Clients that
	// send one are checked against PasswordFile; without a password file
	// they are accepted only when AllowAnonymous is set (the username is
	// then just a name for the ACL). Clients authenticated by a
	// certificate (Options.UseIdentityAsUsername) are not checked here.
	AllowAnonymous bool
	// AnonymousListeners are the listeners (ClientInfo.Listener: "tcp",
	// "websocket", "tls", "wss") on which clients are accepted as if
	// AllowAnonymous were set, whatever it is: say, anonymous local
	// processes on a plain TCP listener bound to 127.0.0.1, and
	// passwords required on the TLS one.
	AnonymousListeners []string
}

// FileAccess is the AccessControl of Mosquitto-style files. Reload reads
// them again and switches to the new contents atomically; a file that
// does not parse leaves the old contents in force.
type FileAccess struct {
	cfg FileAccessConfig
	cur atomic.Pointer[fileAccessState]
}

type fileAccessState struct {
	pw  *auth.Passwords // nil: no password file
	acl *auth.ACL       // nil: no ACL file
}

// NewFileAccess reads the files.
func NewFileAccess(cfg FileAccessConfig) (*FileAccess, error) {
	f := &FileAccess{cfg: cfg}
	if err := f.Reload(); err != nil {
		return nil, err
	}
	return f, nil
}

// Reload reads both files; only if both parse do they replace the
// current ones (together). It returns every problem found.
func (f *FileAccess) Reload() error {
	var st fileAccessState
	var errs []error
	if p := f.cfg.PasswordFile; p != "" {
		pw, err := auth.LoadPasswords(p)
		if err != nil {
			errs = append(errs, fmt.Errorf("password file: %w", err))
		}
		st.pw = pw
	}
	if p := f.cfg.ACLFile; p != "" {
		acl, err := auth.LoadACL(p)
		if err != nil {
			errs = append(errs, fmt.Errorf("acl file: %w", err))
		}
		st.acl = acl
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	f.cur.Store(&st)
	return nil
}

// Users returns the number of users in the password file.
func (f *FileAccess) Users() int {
	if pw := f.cur.Load().pw; pw != nil {
		return pw.Len()
	}
	return 0
}

// Authenticate implements AccessControl.
func (f *FileAccess) Authenticate(c *ClientInfo, password []byte, hasPassword bool) mqtt.ReasonCode {
	st := f.cur.Load()
	anonymous := f.cfg.AllowAnonymous || slices.Contains(f.cfg.AnonymousListeners, c.Listener)
	if !c.HasUsername {
		if anonymous {
			return mqtt.Success
		}
		return mqtt.NotAuthorized
	}
	if st.pw == nil {
		// Nothing to check a username against: it is only a label, for
		// the ACL, where anonymous clients are allowed.
		if anonymous {
			return mqtt.Success
		}
		return mqtt.BadUserNameOrPassword
	}
	if !hasPassword || !st.pw.Check(c.Username, password) {
		return mqtt.BadUserNameOrPassword
	}
	return mqtt.Success
}

func (f *FileAccess) allowed(c *ClientInfo, acc auth.Access, topic string) bool {
	acl := f.cur.Load().acl
	return acl == nil || acl.Allowed(aclClient(c), acc, topic)
}

// CanPublish implements AccessControl.
func (f *FileAccess) CanPublish(c *ClientInfo, topic string) bool {
	return f.allowed(c, auth.Write, topic)
}

// CanRead implements AccessControl.
func (f *FileAccess) CanRead(c *ClientInfo, topic string) bool {
	return f.allowed(c, auth.Read, topic)
}

// CanSubscribe implements AccessControl.
func (f *FileAccess) CanSubscribe(c *ClientInfo, filter string) bool {
	acl := f.cur.Load().acl
	return acl == nil || acl.AllowedSubscribe(aclClient(c), filter)
}

func aclClient(c *ClientInfo) auth.Client {
	return auth.Client{Username: c.Username, HasUser: c.HasUsername, ClientID: c.ClientID}
}
