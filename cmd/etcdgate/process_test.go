package main

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/etcdgate/etcdgate/internal/testnet"
)

// gatewayBinary is bin/etcdgate built once for the tests that run the
// real process.
var gatewayBinary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "etcdgate-test-bin")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	gatewayBinary = filepath.Join(dir, "etcdgate")
	build := exec.Command("go", "build", "-o", gatewayBinary, ".")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build etcdgate:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// process is a child process whose output is kept for failure messages.
type process struct {
	t    *testing.T
	cmd  *exec.Cmd
	out  *syncBuffer
	done chan struct{} // closed when the process has exited
	err  error         // exit error, set before done is closed
}

func startProcess(t *testing.T, name string, args ...string) *process {
	t.Helper()
	p := &process{t: t, cmd: exec.Command(name, args...), out: &syncBuffer{}, done: make(chan struct{})}
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		p.cmd.Process.Kill()
		<-p.done
		if t.Failed() {
			t.Logf("output of %s:\n%s", name, p.out.String())
		}
	})
	return p
}

// stop sends SIGTERM and returns the exit error (nil for exit 0).
func (p *process) stop(timeout time.Duration) error {
	p.t.Helper()
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		return p.err
	case <-time.After(timeout):
		p.cmd.Process.Kill()
		<-p.done
		return fmt.Errorf("did not stop within %s", timeout)
	}
}

type syncBuffer struct {
	mu  chan struct{}
	buf bytes.Buffer
}

func (b *syncBuffer) lock() {
	if b.mu == nil {
		b.mu = make(chan struct{}, 1)
	}
	b.mu <- struct{}{}
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.lock()
	defer func() { <-b.mu }()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.lock()
	defer func() { <-b.mu }()
	return b.buf.String()
}

// waitFor polls cond every 100 ms until it holds or timeout passes.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func httpGet(url string) (int, string) {
	resp, err := http.Get(url)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// startGateway runs `etcdgate serve` on a free port and waits until ready.
func startGateway(t *testing.T, extra ...string) (p *process, url string) {
	t.Helper()
	return startGatewayIn(t, t.TempDir(), extra...)
}

// startGatewayIn is startGateway on a given data directory.
func startGatewayIn(t *testing.T, dataDir string, extra ...string) (p *process, url string) {
	t.Helper()
	port := testnet.FreePort(t)
	url = fmt.Sprintf("http://127.0.0.1:%d", port)
	args := append([]string{"serve", "--listen-address", fmt.Sprintf("127.0.0.1:%d", port), "--data-dir", dataDir}, extra...)
	p = startProcess(t, gatewayBinary, args...)
	waitFor(t, 20*time.Second, "etcdgate ready", func() bool {
		code, _ := httpGet(url + "/-/ready")
		return code == http.StatusOK
	})
	return p, url
}

// metricValue reads one sample from a /metrics page: the line starting
// with series (name and labels exactly as exposed).
func metricValue(t *testing.T, url, series string) string {
	t.Helper()
	_, body := httpGet(url + "/metrics")
	sc := bufio.NewScanner(strings.NewReader(body))
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), series+" "); ok {
			return rest
		}
	}
	return ""
}
