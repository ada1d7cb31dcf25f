package main

import (
	"crypto/tls"
	"errors"
	"log/slog"
	"slices"
	"strings"

	"github.com/weirmq/weir/broker"
)

// tlsConfig is listeners.tls: one certificate for the MQTT over TLS and
// the secure WebSocket listener. TLS is on when cert_file is set.
type tlsConfig struct {
	// MQTT is the MQTT over TLS address; "" or "-" disables it.
	MQTT string `yaml:"mqtt"`
	// WebSocket is the secure WebSocket address; "" or "-" disables it.
	WebSocket             string `yaml:"websocket"`
	CertFile              string `yaml:"cert_file"`
	KeyFile               string `yaml:"key_file"`
	CAFile                string `yaml:"ca_file"`
	RequireCertificate    bool   `yaml:"require_certificate"`
	MinVersion            string `yaml:"min_version"`
	UseIdentityAsUsername bool   `yaml:"use_identity_as_username"`
}

func (t *tlsConfig) enabled() bool { return t.CertFile != "" }

// authConfig is auth: Mosquitto-style password and ACL files.
type authConfig struct {
	// AllowAnonymous is "auto", "true" or "false"; auto means true
	// without a password file and false with one.
	AllowAnonymous string `yaml:"allow_anonymous"`
	PasswordFile   string `yaml:"password_file"`
	ACLFile        string `yaml:"acl_file"`
	// AnonymousListeners are the listeners (tcp, websocket, tls, wss)
	// that accept anonymous clients whatever allow_anonymous says.
	AnonymousListeners []string `yaml:"anonymous_listeners"`
}

// listenerKinds are the names anonymous_listeners may use
// (broker.ClientInfo.Listener).
var listenerKinds = []string{"tcp", "websocket", "tls", "wss"}

const anonymousAuto = "auto"

// allowAnonymous resolves allow_anonymous.
func (a *authConfig) allowAnonymous() bool {
	switch strings.ToLower(a.AllowAnonymous) {
	case "true":
		return true
	case "false":
		return false
	}
	return a.PasswordFile == ""
}

// configured reports whether any access control is configured.
func (a *authConfig) configured() bool {
	return a.PasswordFile != "" || a.ACLFile != "" || strings.ToLower(a.AllowAnonymous) == "false"
}

var tlsVersions = map[string]uint16{"1.2": tls.VersionTLS12, "1.3": tls.VersionTLS13}

func (t *tlsConfig) files() broker.TLSFiles {
	return broker.TLSFiles{CertFile: t.CertFile, KeyFile: t.KeyFile, CAFile: t.CAFile,
		RequireCertificate: t.RequireCertificate, MinVersion: tlsVersions[t.MinVersion]}
}

// validateSecurity checks listeners.tls and auth, and loads the files
// they name, so that -check-config reports a certificate or password
// file that would not load.
func (c *config) validateSecurity(v *validator) {
	t := &c.Listeners.TLS
	if _, ok := tlsVersions[t.MinVersion]; !ok {
		v.errorf("listeners.tls.min_version", "%q is not one of 1.2, 1.3", t.MinVersion)
	}
	if t.enabled() {
		used := map[string]string{c.Listeners.TCP: "listeners.tcp", c.Listeners.WebSocket: "listeners.websocket"}
		for _, l := range []struct{ path, addr string }{{"listeners.tls.mqtt", t.MQTT}, {"listeners.tls.websocket", t.WebSocket}} {
			if l.addr == "" || l.addr == "-" {
				continue
			}
			v.addr(l.path, l.addr)
			if other, dup := used[l.addr]; dup && !strings.HasSuffix(l.addr, ":0") {
				v.errorf(l.path, "%q is also %s; use another port", l.addr, other)
			}
			used[l.addr] = l.path
		}
		switch {
		case t.KeyFile == "":
			v.errorf("listeners.tls.key_file", "must be set with cert_file")
		case t.RequireCertificate && t.CAFile == "":
			v.errorf("listeners.tls.require_certificate", "needs ca_file (the CA client certificates are verified against)")
		case t.UseIdentityAsUsername && !t.RequireCertificate:
			v.errorf("listeners.tls.use_identity_as_username", "needs require_certificate: true")
		default:
			if _, err := broker.NewTLSConfig(t.files()); err != nil {
				v.errorf("listeners.tls.cert_file", "%v", err)
			}
		}
	} else if t.KeyFile != "" || t.CAFile != "" || t.RequireCertificate || t.UseIdentityAsUsername || t.WebSocket != "" {
		v.errorf("listeners.tls.cert_file", "must be set for the other listeners.tls keys to take effect")
	}

	a := &c.Auth
	switch strings.ToLower(a.AllowAnonymous) {
	case "auto", "true", "false":
	default:
		v.errorf("auth.allow_anonymous", "%q is not one of auto, true, false", a.AllowAnonymous)
	}
	for _, l := range a.AnonymousListeners {
		if !slices.Contains(listenerKinds, l) {
			v.errorf("auth.anonymous_listeners", "%q is not one of %s", l, strings.Join(listenerKinds, ", "))
		}
	}
	if a.configured() {
		if _, err := broker.NewFileAccess(c.fileAccessConfig()); err != nil {
			v.errorf("auth", "%v", err)
		}
	}
}

func (c *config) fileAccessConfig() broker.FileAccessConfig {
	return broker.FileAccessConfig{PasswordFile: c.Auth.PasswordFile, ACLFile: c.Auth.ACLFile,
		AllowAnonymous: c.Auth.allowAnonymous(), AnonymousListeners: c.Auth.AnonymousListeners}
}

// security is what serve reloads on SIGHUP.
type security struct {
	tls    *broker.TLSConfig
	access *broker.FileAccess
}

// setupSecurity loads the TLS files and the password and ACL files into
// opts, and logs how clients are authenticated.
func setupSecurity(cfg *config, opts *broker.Options, log *slog.Logger) (*security, error) {
	sec := &security{}
	if t := &cfg.Listeners.TLS; t.enabled() {
		tc, err := broker.NewTLSConfig(t.files())
		if err != nil {
			return nil, err
		}
		sec.tls, opts.TLS = tc, tc
	}
	a := &cfg.Auth
	if !a.configured() {
		log.Warn("no authentication configured: any client may connect, publish and subscribe to everything; " +
			"set auth.password_file (and auth.acl_file) to lock the broker down")
		return sec, nil
	}
	fa, err := broker.NewFileAccess(cfg.fileAccessConfig())
	if err != nil {
		return nil, err
	}
	sec.access, opts.Access = fa, fa
	if a.PasswordFile == "" && a.allowAnonymous() && !cfg.Listeners.TLS.UseIdentityAsUsername {
		log.Warn("auth.acl_file without auth.password_file: usernames are not verified, so any client " +
			"can claim any user's ACL rights; set a password file or use_identity_as_username")
	}
	log.Info("authentication", "password_file", a.PasswordFile, "users", fa.Users(), "acl_file", a.ACLFile,
		"allow_anonymous", a.allowAnonymous(), "anonymous_listeners", strings.Join(a.AnonymousListeners, ","),
		"use_identity_as_username", cfg.Listeners.TLS.UseIdentityAsUsername)
	return sec, nil
}

// reload reads the certificate, password and ACL files again. Each set of
// files is switched atomically; one that fails to load keeps the old
// contents, and the error says why.
func (sec *security) reload(log *slog.Logger) error {
	var errs []error
	if sec.tls != nil {
		if err := sec.tls.Reload(); err != nil {
			errs = append(errs, err)
			log.Error("SIGHUP: TLS files not reloaded; the previous certificate stays in use", "err", err)
		} else {
			log.Info("SIGHUP: TLS certificate reloaded")
		}
	}
	if sec.access != nil {
		if err := sec.access.Reload(); err != nil {
			errs = append(errs, err)
			log.Error("SIGHUP: password/ACL files not reloaded; the previous ones stay in force", "err", err)
		} else {
			log.Info("SIGHUP: password and ACL files reloaded", "users", sec.access.Users())
		}
	}
	if sec.tls == nil && sec.access == nil {
		log.Info("SIGHUP: nothing to reload (no TLS, no auth files)")
	}
	return errors.Join(errs...)
}
