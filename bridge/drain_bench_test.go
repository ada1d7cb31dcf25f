package bridge_test

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/weirmq/weir/bridge"
	"github.com/weirmq/weir/broker"
	"github.com/weirmq/weir/internal/brokertest"
	"github.com/weirmq/weir/mqtt"
	badgerstore "github.com/weirmq/weir/store/badger"
)

// TestDrainBenchmark measures how fast a backlog of queued messages
// drains upstream after an outage while live traffic goes on, and how far
// behind the live messages run (issue 8's benchmark). It takes a while
// and is run by hand:
//
//	WEIR_BRIDGE_BENCH=100000 go test -run TestDrainBenchmark -v ./bridge
//
// WEIR_BRIDGE_BACKFILL=live-first measures live-first backfill.
func TestDrainBenchmark(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("WEIR_BRIDGE_BENCH"))
	if n <= 0 {
		t.Skip("set WEIR_BRIDGE_BENCH=<messages> to run the drain benchmark")
	}
	const publishers, liveRate = 10, 500 // live messages per second
	st, err := badgerstore.Open(badgerstore.Options{Dir: t.TempDir(), Logger: brokertest.Discard()})
	if err != nil {
		t.Fatal(err)
	}
	local := localBroker(t, &broker.Options{Store: st})
	t.Cleanup(func() { st.Close() })
	up := startMosquitto(t)
	br := startBridge(t, local, bridge.Config{
		Name: "up", Address: addr(up), Version: mqtt.V5, ClientID: "weir-gw", SessionExpiry: time.Hour,
		Window: 256, MaxOutboxBytes: 1 << 30, Backfill: bridge.Backfill(os.Getenv("WEIR_BRIDGE_BACKFILL")),
		Out: []bridge.OutRule{{Filter: "#", QoS: 1, Policy: bridge.DropOldest}},
	})
	waitConnected(t, br)

	var backlogGot atomic.Int64
	var lagMu sync.Mutex
	var lags []time.Duration
	sub := brokertest.NewPaho311(t, up.Broker(), tcp, "collector", func(o *paho.ClientOptions) {
		o.SetCleanSession(false).SetAutoReconnect(true).SetConnectRetry(true).
			SetMaxReconnectInterval(100 * time.Millisecond).
			SetDefaultPublishHandler(func(_ paho.Client, m paho.Message) {
				if strings.HasPrefix(m.Topic(), "live/") {
					ns, _ := strconv.ParseInt(string(m.Payload()), 10, 64)
					lagMu.Lock()
					lags = append(lags, time.Since(time.Unix(0, ns)))
					lagMu.Unlock()
					return
				}
				backlogGot.Add(1)
			})
	})
	sub.MustConnect()
	sub.MustSubscribe("#", 1)
	up.Stop()

	start := time.Now()
	payload := strings.Repeat("x", 64)
	var wg sync.WaitGroup
	for i := range publishers {
		pub := brokertest.ConnectPaho311(t, local, tcp, fmt.Sprintf("pub-%d", i), nil)
		wg.Add(1)
		go func() {
			defer wg.Done()
			var last paho.Token
			for k := range n / publishers {
				last = pub.Publish(fmt.Sprintf("s/%d/%d", i, k%100), 1, false, payload)
			}
			last.WaitTimeout(time.Minute)
		}()
	}
	wg.Wait()
	queued := br.Status()
	t.Logf("queued %d messages (%d bytes) in %v while upstream was down", queued.OutboxMessages,
		queued.OutboxBytes, time.Since(start).Round(time.Millisecond))

	drainStart := time.Now()
	up.Start()
	waitConnected(t, br)
	var liveSent atomic.Int64
	stopLive := make(chan struct{})
	liveDone := make(chan struct{})
	live := brokertest.ConnectPaho311(t, local, tcp, "live", nil)
	go func() {
		defer close(liveDone)
		tick := time.NewTicker(time.Second / liveRate)
		defer tick.Stop()
		for {
			select {
			case <-stopLive:
				return
			case <-tick.C:
				live.Publish("live/x", 1, false, strconv.FormatInt(time.Now().UnixNano(), 10))
				liveSent.Add(1)
			}
		}
	}()
	brokertest.Eventually(t, 10*time.Minute, func() error {
		if got := backlogGot.Load(); got < int64(queued.OutboxMessages) {
			return fmt.Errorf("%d of %d drained", got, queued.OutboxMessages)
		}
		return nil
	})
	drain := time.Since(drainStart)
	close(stopLive)
	<-liveDone
	// Live messages published during the drain queue behind the backlog
	// (in-order backfill): wait for them too.
	brokertest.Eventually(t, time.Minute, func() error {
		lagMu.Lock()
		defer lagMu.Unlock()
		if int64(len(lags)) < liveSent.Load() {
			return fmt.Errorf("%d of %d live messages", len(lags), liveSent.Load())
		}
		return nil
	})
	lagMu.Lock()
	defer lagMu.Unlock()
	var maxLag, sum time.Duration
	for _, l := range lags {
		maxLag = max(maxLag, l)
		sum += l
	}
	avg := time.Duration(0)
	if len(lags) > 0 {
		avg = sum / time.Duration(len(lags))
	}
	t.Logf("drained %d messages in %v: %.0f msg/s, while %d live messages were published (%.0f/s); their lag avg %v, max %v",
		queued.OutboxMessages, drain.Round(time.Millisecond), float64(queued.OutboxMessages)/drain.Seconds(),
		len(lags), float64(len(lags))/drain.Seconds(), avg.Round(time.Millisecond), maxLag.Round(time.Millisecond))
}
