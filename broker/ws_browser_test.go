//go:build unix

package broker_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/weirmq/weir/internal/brokertest"
)

// The page a headless Chromium loads: MQTT.js connects to Weir over
// WebSocket, subscribes, receives a retained message set before it came
// and a message published by a Go client while it is connected, publishes
// at QoS 0, 1 and 2 and receives its own messages back, then posts what it
// saw to /result.
const browserPage = `<!doctype html>
<html><head><meta charset="utf-8"><script src="/mqtt.min.js"></script></head>
<body><script>
const seen = [];
const report = (err) => fetch('/result', {method: 'POST', body: JSON.stringify({err: err || '', seen})});
const c = mqtt.connect(%q, {protocolId: %q, protocolVersion: %d, clientId: 'browser-%d', clean: true, reconnectPeriod: 0, connectTimeout: 5000});
c.on('error', (e) => report('error: ' + e.message));
c.on('close', () => { if (seen.length < 5) report('closed after ' + JSON.stringify(seen)); });
c.on('message', (topic, payload, packet) => {
  seen.push(topic + '|' + payload.toString() + '|' + packet.qos + '|' + (packet.retain ? 1 : 0));
  if (topic === 'browser/from-go') {
    c.publish('browser/q0', 'zero', {qos: 0});
    c.publish('browser/q1', 'one', {qos: 1});
    c.publish('browser/q2', 'two', {qos: 2});
  }
  if (seen.length === 5) c.end(false, {}, () => report(''));
});
c.on('connect', () => {
  c.subscribe('browser/#', {qos: 2}, (err) => {
    if (err) { report('subscribe: ' + err.message); return; }
    c.publish('ready/browser', 'ready', {qos: 1});
  });
});
</script></body></html>`

// TestBrowserWebSocket runs MQTT.js 5.16 (testdata/browser) in headless
// Chromium against the WebSocket listener, MQTT 3.1, 3.1.1 and 5.0: what a
// browser dashboard does. It is skipped when Chromium is not installed
// (`make deps` installs Debian's chromium).
func TestBrowserWebSocket(t *testing.T) {
	chromium, err := exec.LookPath("chromium")
	if err != nil {
		t.Skip("chromium not installed (Debian package chromium; `make deps` installs it)")
	}
	lib, err := os.ReadFile(filepath.Join("..", "testdata", "browser", "mqtt-5.16.0.min.js"))
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range []int{3, 4, 5} {
		t.Run(fmt.Sprintf("protocolVersion=%d", v), func(t *testing.T) {
			b := brokertest.Start(t, nil)
			tcp := brokertest.Transports()[0]
			goc := brokertest.ConnectPaho311(t, b, tcp, "go-side", nil)
			goc.MustPublish("browser/retained", 1, true, "kept")
			// When the page is subscribed it says so; the Go client answers.
			goc.MustSubscribe("ready/browser", 1)
			results := make(chan string, 1)
			mux := http.NewServeMux()
			mux.HandleFunc("/mqtt.min.js", func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "text/javascript")
				w.Write(lib)
			})
			mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "text/html")
				id := "MQTT"
				if v == 3 {
					id = "MQIsdp" // MQTT 3.1; MQTT.js then offers subprotocol mqttv3.1
				}
				fmt.Fprintf(w, browserPage, b.WSURL, id, v, v)
			})
			mux.HandleFunc("/result", func(w http.ResponseWriter, r *http.Request) {
				body, _ := io.ReadAll(r.Body)
				select {
				case results <- string(body):
				default:
				}
			})
			l, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			hs := &http.Server{Handler: mux}
			go hs.Serve(l)
			t.Cleanup(func() { hs.Close() })

			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			// Flags: no sandbox (tests may run as root), and nothing that
			// reaches beyond loopback.
			cmd := exec.CommandContext(ctx, chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
				"--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync",
				"--user-data-dir="+t.TempDir(), "http://"+l.Addr().String()+"/")
			// Its own process group, killed whole: Chromium's helper
			// processes must not outlive the test.
			cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
			cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
			var logs strings.Builder
			cmd.Stdout, cmd.Stderr = &logs, &logs
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			defer func() { cancel(); cmd.Wait() }()

			select {
			case <-goc.Msgs:
			case res := <-results:
				t.Fatalf("the page gave up before it subscribed: %s", res)
			case <-ctx.Done():
				t.Fatalf("the page did not subscribe within the time; chromium:\n%s", logs.String())
			}
			goc.MustPublish("browser/from-go", 1, false, "hello")
			var res struct {
				Err  string
				Seen []string
			}
			select {
			case r := <-results:
				if err := json.Unmarshal([]byte(r), &res); err != nil {
					t.Fatalf("result %q: %v", r, err)
				}
			case <-ctx.Done():
				t.Fatalf("no result from the page within the time; chromium:\n%s", logs.String())
			}
			if res.Err != "" {
				t.Fatalf("page: %s (seen %v)", res.Err, res.Seen)
			}
			// Retained first (sent on subscribe [MQTT-3.8.4-4]), then the
			// Go client's message, then the page's own three, each at the
			// QoS it was published with (granted 2).
			want := []string{"browser/retained|kept|1|1", "browser/from-go|hello|1|0",
				"browser/q0|zero|0|0", "browser/q1|one|1|0", "browser/q2|two|2|0"}
			if strings.Join(res.Seen, " ") != strings.Join(want, " ") {
				t.Fatalf("the page saw\n  %v\nwant\n  %v", res.Seen, want)
			}
		})
	}
}
