// Package testnet gives tests loopback ports for the servers they start.
package testnet

import (
	"bufio"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
)

// FreePort returns a port on 127.0.0.1 that no other caller of FreePort
// holds, in this test binary or in any other running on the machine.
//
// It is drawn at random below the kernel's ephemeral range, not with
// port 0: a port from the ephemeral range can be handed to an outgoing
// connection (an etcd member dialing its peers, a client) between the
// moment it is picked and the moment its server binds it, which made
// multi-member etcd clusters fail to start now and then.
//
// Below the range only another test's pick can collide, and go test runs
// several package binaries at once, so a pick is reserved twice: in this
// process (a port is never handed out twice) and across processes by an
// exclusive flock on a per-port file that stays held until the process
// exits. A port is therefore never reused by a later test of the same
// binary, which also keeps a stopped server's lingering sockets out of
// the way of the next one.
func FreePort(t testing.TB) int {
	t.Helper()
	low := ephemeralLow()
	for range 1000 {
		port := 10000 + rand.IntN(low-10000)
		if !reserve(port) {
			continue
		}
		l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err != nil {
			continue // held by something that is not ours; stays reserved
		}
		l.Close()
		return port
	}
	t.Fatalf("no free port in 10000-%d after 1000 tries", low-1)
	return 0
}

var (
	reservedMu sync.Mutex
	reserved   = map[int]*os.File{}
)

// reserve claims port for this process; false when this process or
// another one has claimed it already.
func reserve(port int) bool {
	reservedMu.Lock()
	defer reservedMu.Unlock()
	if _, ok := reserved[port]; ok {
		return false
	}
	dir := filepath.Join(os.TempDir(), "etcdgate-testports")
	if err := os.MkdirAll(dir, 0o777); err != nil {
		reserved[port] = nil // cannot lock across processes; still unique here
		return true
	}
	f, err := os.OpenFile(filepath.Join(dir, fmt.Sprint(port)), os.O_CREATE|os.O_RDWR, 0o666)
	if err != nil {
		reserved[port] = nil
		return true
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		reserved[port] = nil // another process holds it: never try it again
		return false
	}
	reserved[port] = f // held (and the lock with it) until the process exits
	return true
}

// ephemeralLow is the first port of the kernel's ephemeral range (32768
// where it cannot be read).
func ephemeralLow() int {
	low := 32768
	f, err := os.Open("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return low
	}
	defer f.Close()
	var n int
	if _, err := fmt.Fscan(bufio.NewReader(f), &n); err == nil && n > 10100 {
		low = n
	}
	return low
}
