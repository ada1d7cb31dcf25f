package broker_test

// Interoperability with the Eclipse Mosquitto command-line clients
// (Debian package mosquitto-clients, which `make deps` installs): a real,
// independent MQTT 3.1, 3.1.1 and 5.0 implementation talking to Weir.

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/weirmq/weir/internal/brokertest"
)

// mosqTimeout bounds every mosquitto process and every wait on one.
const mosqTimeout = 20 * time.Second

// mosqNeed skips the test when the mosquitto clients are not installed.
func mosqNeed(t *testing.T) {
	t.Helper()
	for _, bin := range []string{"mosquitto_sub", "mosquitto_pub"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Skipf("%s not installed (Debian package mosquitto-clients; `make deps` installs it): %v", bin, err)
		}
	}
	if _, err := exec.LookPath("stdbuf"); err != nil {
		t.Fatalf("stdbuf (coreutils) is needed to read mosquitto_sub's output line by line: %v", err)
	}
}

// mosqHostPort returns the -h and -p arguments for b's TCP listener.
func mosqHostPort(t *testing.T, b *brokertest.Broker) []string {
	t.Helper()
	host, port, err := net.SplitHostPort(b.Addr)
	if err != nil {
		t.Fatal(err)
	}
	return []string{"-h", host, "-p", port}
}

// mosqSub is a running mosquitto_sub. It runs with -d, so that its
// debug output says when the broker has acknowledged the subscription,
// and with -F "MSG|<format>", so that message lines can be told apart from
// debug lines.
type mosqSub struct {
	t      *testing.T
	name   string
	cmd    *exec.Cmd
	msgs   chan string   // message lines, without the "MSG|" prefix
	ready  chan struct{} // closed when SUBACK has been received
	exited chan struct{} // closed once the process has exited
	err    error         // the process's exit status, set before exited is closed

	mu     sync.Mutex
	debug  []string // the debug lines, for failure messages
	stderr bytes.Buffer
}

// mosqStartSub starts mosquitto_sub against b, printing each message as
// format (see mosquitto_sub(1), OUTPUT FORMAT). It is killed when the test
// ends if it is still running.
func mosqStartSub(t *testing.T, b *brokertest.Broker, name, format string, args ...string) *mosqSub {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), mosqTimeout)
	argv := append(mosqHostPort(t, b), "-d", "-W", fmt.Sprint(int(mosqTimeout/time.Second)-2), "-F", "MSG|"+format)
	argv = append(argv, args...)
	s := &mosqSub{
		t:    t,
		name: name,
		// Through a pipe, stdio would buffer the debug lines that say
		// when the subscription is acknowledged; stdbuf -oL flushes
		// every line.
		cmd:    exec.CommandContext(ctx, "stdbuf", append([]string{"-oL", "mosquitto_sub"}, argv...)...),
		msgs:   make(chan string, 100),
		ready:  make(chan struct{}),
		exited: make(chan struct{}),
	}
	s.cmd.Stderr = &mosqLockedWriter{mu: &s.mu, w: &s.stderr}
	stdout, err := s.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := s.cmd.Start(); err != nil {
		cancel()
		t.Fatalf("%s: starting mosquitto_sub: %v", name, err)
	}
	go func() {
		sc := bufio.NewScanner(stdout)
		readySeen := false
		for sc.Scan() {
			line := sc.Text()
			if msg, ok := strings.CutPrefix(line, "MSG|"); ok {
				s.msgs <- msg
				continue
			}
			s.mu.Lock()
			s.debug = append(s.debug, line)
			s.mu.Unlock()
			if !readySeen && strings.Contains(line, "received SUBACK") {
				readySeen = true
				close(s.ready)
			}
		}
		s.err = s.cmd.Wait()
		close(s.exited)
	}()
	t.Cleanup(func() {
		cancel()
		<-s.exited
	})
	return s
}

type mosqLockedWriter struct {
	mu *sync.Mutex
	w  *bytes.Buffer
}

func (w *mosqLockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.w.Write(p)
}

// transcript is what the process printed besides messages.
func (s *mosqSub) transcript() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return fmt.Sprintf("stdout (debug):\n\t%s\nstderr:\n\t%s", strings.Join(s.debug, "\n\t"), s.stderr.String())
}

// waitSubscribed waits until the broker has acknowledged the subscription.
func (s *mosqSub) waitSubscribed() {
	s.t.Helper()
	select {
	case <-s.ready:
	case <-s.exited:
		s.t.Fatalf("%s exited before SUBACK (%v)\n%s", s.name, s.err, s.transcript())
	case <-time.After(mosqTimeout):
		s.t.Fatalf("%s: no SUBACK within %v\n%s", s.name, mosqTimeout, s.transcript())
	}
}

// next returns the next message line.
func (s *mosqSub) next() string {
	s.t.Helper()
	select {
	case m := <-s.msgs:
		return m
	case <-s.exited:
		// Every line was queued before exited was closed.
		select {
		case m := <-s.msgs:
			return m
		default:
		}
		s.t.Fatalf("%s exited (%v) before the expected message\n%s", s.name, s.err, s.transcript())
	case <-time.After(mosqTimeout):
		s.t.Fatalf("%s: no message within %v\n%s", s.name, mosqTimeout, s.transcript())
	}
	return ""
}

// expect checks that the next message lines are want, in order.
func (s *mosqSub) expect(want ...string) {
	s.t.Helper()
	for i, w := range want {
		if got := s.next(); got != w {
			s.t.Fatalf("%s: message %d = %q, want %q\n%s", s.name, i, got, w, s.transcript())
		}
	}
}

// waitExit waits for the process to exit by itself (-C count reached) and
// checks that it succeeded.
func (s *mosqSub) waitExit() {
	s.t.Helper()
	select {
	case <-s.exited:
	case <-time.After(mosqTimeout):
		s.t.Fatalf("%s did not exit within %v\n%s", s.name, mosqTimeout, s.transcript())
	}
	if s.err != nil {
		s.t.Fatalf("%s: %v\n%s", s.name, s.err, s.transcript())
	}
}

// mosqPub runs mosquitto_pub against b to completion, with stdin as its
// standard input (for -l), and fails the test if it does not succeed.
// For QoS 1 and 2, mosquitto_pub exits 0 only after the broker has
// acknowledged every message.
func mosqPub(t *testing.T, b *brokertest.Broker, stdin string, args ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), mosqTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "mosquitto_pub", append(mosqHostPort(t, b), args...)...)
	cmd.Stdin = strings.NewReader(stdin)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("mosquitto_pub %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

func TestMosquittoQoSRoundTrip(t *testing.T) {
	mosqNeed(t)
	t.Parallel()
	b := brokertest.Start(t, nil)
	for qos := range 3 {
		t.Run(fmt.Sprintf("qos%d", qos), func(t *testing.T) {
			topic := fmt.Sprintf("weir/mosquitto/qos%d", qos)
			q := fmt.Sprint(qos)
			sub := mosqStartSub(t, b, "sub", "%q %t %p", "-i", "weir-sub-qos"+q, "-q", q, "-t", topic, "-C", "3")
			sub.waitSubscribed()
			// -l publishes one message per line of standard input.
			mosqPub(t, b, "m1\nm2\nm3\n", "-i", "weir-pub-qos"+q, "-q", q, "-t", topic, "-l")
			sub.expect(q+" "+topic+" m1", q+" "+topic+" m2", q+" "+topic+" m3")
			sub.waitExit()
		})
	}
	if st := b.Server.Stats(); st.MessagesReceived != 9 {
		t.Errorf("Stats().MessagesReceived = %d, want 9", st.MessagesReceived)
	}
}

func TestMosquittoRetained(t *testing.T) {
	mosqNeed(t)
	t.Parallel()
	b := brokertest.Start(t, nil)
	const topic = "weir/mosquitto/retained"
	mosqPub(t, b, "", "-q", "1", "-r", "-t", topic, "-m", "kept")
	if n := b.Server.Stats().Retained; n != 1 {
		t.Fatalf("Stats().Retained = %d after an acknowledged retained publish, want 1", n)
	}
	// A subscriber that arrives later gets it, with the retain flag (%r).
	sub := mosqStartSub(t, b, "late sub", "%r %t %p", "-q", "1", "-t", "weir/mosquitto/#", "-C", "1")
	sub.expect("1 " + topic + " kept")
	sub.waitExit()

	// An empty retained message (-n) removes it [MQTT-3.3.1-10].
	mosqPub(t, b, "", "-q", "1", "-r", "-n", "-t", topic)
	if n := b.Server.Stats().Retained; n != 0 {
		t.Fatalf("Stats().Retained = %d after clearing, want 0", n)
	}
}

func TestMosquittoWill(t *testing.T) {
	mosqNeed(t)
	t.Parallel()
	b := brokertest.Start(t, nil)
	const willTopic = "weir/mosquitto/will/dead"
	doomed := mosqStartSub(t, b, "doomed", "%p", "-i", "weir-doomed", "-t", "weir/mosquitto/unused",
		"--will-topic", willTopic, "--will-payload", "gone", "--will-qos", "1")
	doomed.waitSubscribed()
	watcher := mosqStartSub(t, b, "watcher", "%q %t %p", "-i", "weir-watcher", "-q", "1", "-t", "weir/mosquitto/will/+", "-C", "1")
	watcher.waitSubscribed()

	// SIGKILL: no DISCONNECT, the kernel just closes the socket.
	if err := doomed.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	watcher.expect("1 " + willTopic + " gone")
	watcher.waitExit()
	brokertest.Eventually(t, 5*time.Second, func() error {
		if n := b.Server.Stats().WillsPublished; n != 1 {
			return fmt.Errorf("WillsPublished = %d, want 1", n)
		}
		return nil
	})
}

func TestMosquittoV5Properties(t *testing.T) {
	mosqNeed(t)
	t.Parallel()
	b := brokertest.Start(t, nil)
	const topic = "weir/mosquitto/v5"
	// %P user properties as key:value, %C content type, %p payload.
	sub := mosqStartSub(t, b, "v5 sub", "%P %C %p", "-V", "mqttv5", "-q", "1", "-t", topic, "-C", "1")
	sub.waitSubscribed()
	mosqPub(t, b, "", "-V", "mqttv5", "-q", "1", "-t", topic, "-m", "hello",
		"-D", "publish", "user-property", "k", "v",
		"-D", "publish", "content-type", "text/plain")
	sub.expect("k:v text/plain hello")
	sub.waitExit()
}

func TestMosquittoV31(t *testing.T) {
	mosqNeed(t)
	t.Parallel()
	b := brokertest.Start(t, nil)
	const topic = "weir/mosquitto/v31"
	// MQTT 3.1 client ids are at most 23 characters.
	sub := mosqStartSub(t, b, "v3.1 sub", "%q %t %p", "-V", "mqttv31", "-i", "weir-sub31", "-q", "2", "-t", topic, "-C", "2")
	sub.waitSubscribed()
	mosqPub(t, b, "", "-V", "mqttv31", "-i", "weir-pub31", "-q", "1", "-t", topic, "-m", "one")
	mosqPub(t, b, "", "-V", "mqttv31", "-i", "weir-pub31", "-q", "2", "-t", topic, "-m", "two")
	sub.expect("1 "+topic+" one", "2 "+topic+" two")
	sub.waitExit()
}
