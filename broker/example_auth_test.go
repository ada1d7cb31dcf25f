package broker_test

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"testing"

	"github.com/weirmq/weir/broker"
	"github.com/weirmq/weir/internal/brokertest"
	"github.com/weirmq/weir/mqtt"
)

// hmacAuth is an example MQTT 5.0 enhanced authentication method: the
// client names itself in CONNECT's Authentication Data, the server sends
// a random challenge in AUTH, the client answers with
// HMAC-SHA256(its secret, challenge). A real deployment would use SCRAM
// or a token check; this shows the shape of an Authenticator.
type hmacAuth struct {
	secrets map[string][]byte // per client name
}

func (a *hmacAuth) NewExchange(*broker.ClientInfo) broker.AuthExchange {
	return &hmacExchange{a: a}
}

type hmacExchange struct {
	a         *hmacAuth
	name      string
	challenge []byte
}

func (e *hmacExchange) Step(c *broker.ClientInfo, in []byte) ([]byte, bool, error) {
	if e.challenge == nil { // first step: CONNECT's data is the name
		e.name = string(in)
		e.challenge = make([]byte, 16)
		rand.Read(e.challenge)
		return e.challenge, false, nil
	}
	secret, ok := e.a.secrets[e.name]
	mac := hmac.New(sha256.New, secret)
	mac.Write(e.challenge)
	if !ok || !hmac.Equal(mac.Sum(nil), in) {
		return nil, false, errors.New("wrong response")
	}
	// The authenticated name is the username the ACL sees.
	c.Username, c.HasUsername = e.name, true
	return []byte("welcome"), true, nil
}

// ExampleAuthenticator registers an enhanced authentication method.
func ExampleAuthenticator() {
	srv, err := broker.New(&broker.Options{
		Authenticators: map[string]broker.Authenticator{
			"HMAC-EXAMPLE": &hmacAuth{secrets: map[string][]byte{"sensor-1": []byte("k3y")}},
		},
	})
	if err != nil {
		panic(err)
	}
	defer srv.Close()
}

// TestEnhancedAuth runs the exchange of §4.12 with a raw client:
// CONNECT with a method, AUTH 0x18 both ways, CONNACK with the method.
func TestEnhancedAuth(t *testing.T) {
	const method = "HMAC-EXAMPLE"
	b := brokertest.Start(t, &broker.Options{Authenticators: map[string]broker.Authenticator{
		method: &hmacAuth{secrets: map[string][]byte{"sensor-1": []byte("k3y")}},
	}})
	run := func(name string, key []byte) *mqtt.Connack {
		r := b.DialRaw(t)
		c := &mqtt.Connect{ProtocolLevel: mqtt.V5, ClientID: "ea-" + name, CleanStart: true}
		c.Props.AuthMethod, c.Props.AuthData = method, []byte(name)
		r.Send(t, c)
		auth := r.Expect(t, mqtt.AUTH).(*mqtt.Auth)
		if auth.ReasonCode != mqtt.ContinueAuthentication || auth.Props.AuthMethod != method {
			t.Fatalf("AUTH %v method %q", auth.ReasonCode, auth.Props.AuthMethod)
		}
		mac := hmac.New(sha256.New, key)
		mac.Write(auth.Props.AuthData)
		r.Send(t, &mqtt.Auth{ReasonCode: mqtt.ContinueAuthentication,
			Props: mqtt.Properties{AuthMethod: method, AuthData: mac.Sum(nil)}})
		return r.Expect(t, mqtt.CONNACK).(*mqtt.Connack)
	}
	ack := run("sensor-1", []byte("k3y"))
	if ack.ReasonCode != mqtt.Success || ack.Props.AuthMethod != method || string(ack.Props.AuthData) != "welcome" {
		t.Fatalf("CONNACK 0x%02x method %q data %q", byte(ack.ReasonCode), ack.Props.AuthMethod, ack.Props.AuthData)
	}
	if ack := run("sensor-1", []byte("wrong")); ack.ReasonCode != mqtt.NotAuthorized {
		t.Fatalf("wrong key: CONNACK 0x%02x, want 0x87", byte(ack.ReasonCode))
	}

	// A method that is not registered is refused [MQTT-4.12.0-1].
	r := b.DialRaw(t)
	c := &mqtt.Connect{ProtocolLevel: mqtt.V5, ClientID: "ea-x", CleanStart: true}
	c.Props.AuthMethod = "SCRAM-SHA-256"
	if ack := r.Connect(t, c); ack.ReasonCode != mqtt.BadAuthenticationMethod {
		t.Fatalf("unknown method: CONNACK 0x%02x, want 0x8C", byte(ack.ReasonCode))
	}
}
