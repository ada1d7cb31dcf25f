package brokertest

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestMain lets the test binary play a server for the Process tests:
// with PROCESS_TEST_LISTEN=addr it says it starts, listens there, says
// so, and exits with status 7 on SIGTERM.
func TestMain(m *testing.M) {
	if addr := os.Getenv("PROCESS_TEST_LISTEN"); addr != "" {
		sigs := make(chan os.Signal, 1)
		signal.Notify(sigs, syscall.SIGTERM)
		fmt.Println("starting")
		l, err := net.Listen("tcp", addr)
		if err != nil {
			fmt.Println(err)
			os.Exit(2)
		}
		fmt.Println("listening on", l.Addr())
		<-sigs
		os.Exit(7)
	}
	os.Exit(m.Run())
}

func TestProcessAcceptSignalExit(t *testing.T) {
	addr := FreeAddr(t)
	p, err := StartProcess(t, ProcessOptions{Env: []string{"PROCESS_TEST_LISTEN=" + addr}}, os.Args[0])
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.WaitAccept(addr, 10*time.Second); err != nil {
		t.Fatalf("%v\n%s", err, p.Logs())
	}
	if p.Exited() || p.State() != nil || p.ExitCode() != -1 {
		t.Errorf("running process: Exited %v, State %v, ExitCode %d", p.Exited(), p.State(), p.ExitCode())
	}
	// What the process wrote before it accepted is in the log already.
	if !strings.HasPrefix(p.Logs(), "starting\n") {
		t.Errorf("output before accepting not in the log when WaitAccept returned: %q", p.Logs())
	}
	Eventually(t, 5*time.Second, func() error {
		if !strings.Contains(p.Logs(), "listening on "+addr) {
			return fmt.Errorf("output %q", p.Logs())
		}
		return nil
	})
	if err := p.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code, ok := p.Wait(10 * time.Second); !ok || code != 7 {
		t.Errorf("Wait after SIGTERM: code %d, exited %v; want 7, true", code, ok)
	}
	if !p.Exited() || p.ExitCode() != 7 {
		t.Errorf("Exited %v, ExitCode %d after exit 7", p.Exited(), p.ExitCode())
	}
}

func TestProcessExitBeforeAccept(t *testing.T) {
	p, err := StartProcess(t, ProcessOptions{}, "sh", "-c", "echo refusing; exit 3")
	if err != nil {
		t.Skipf("no sh: %v", err)
	}
	_, err = p.WaitAccept(FreeAddr(t), 10*time.Second)
	var ee *ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 3 {
		t.Fatalf("WaitAccept: %v, want an *ExitError with status 3", err)
	}
	if got := p.Logs(); got != "refusing\n" {
		t.Errorf("output %q", got)
	}
}

func TestProcessKill(t *testing.T) {
	addr := FreeAddr(t)
	p, err := StartProcess(t, ProcessOptions{Env: []string{"PROCESS_TEST_LISTEN=" + addr}}, os.Args[0])
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.WaitAccept(addr, 10*time.Second); err != nil {
		t.Fatalf("%v\n%s", err, p.Logs())
	}
	if _, ok := p.Wait(50 * time.Millisecond); ok {
		t.Fatal("Wait: exited on its own")
	}
	if err := p.Kill(10 * time.Second); err != nil {
		t.Fatal(err)
	}
	if p.ExitCode() != -1 || p.State().Success() {
		t.Errorf("after SIGKILL: ExitCode %d, state %v; want -1", p.ExitCode(), p.State())
	}
}

func TestLogRuns(t *testing.T) {
	var l Log
	fmt.Fprint(&l, "first run, cut sho")
	l.StartRun("run 2")
	fmt.Fprint(&l, "second\n")
	if got, want := l.LastRun(), "=== run 2\nsecond\n"; got != want {
		t.Errorf("LastRun %q, want %q", got, want)
	}
	if got, want := l.String(), "first run, cut sho\n=== run 2\nsecond\n"; got != want {
		t.Errorf("String %q, want %q", got, want)
	}
	if got, want := l.Tail(7), "…second\n"; got != want {
		t.Errorf("Tail(7) %q, want %q", got, want)
	}
}
