// Package testnet gives tests loopback ports for the servers they start.
package testnet

import (
	"bufio"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"testing"
)

// FreePort returns a port on 127.0.0.1 that was free a moment ago.
//
// It is drawn at random below the kernel's ephemeral range, not with
// port 0: a port from the ephemeral range can be handed to an outgoing
// connection (an etcd member dialing its peers, a client) between the
// moment it is picked and the moment its server binds it, which made
// multi-member etcd clusters fail to start now and then. Below the range
// only another test's pick can collide, one chance in thousands.
func FreePort(t testing.TB) int {
	t.Helper()
	low := ephemeralLow()
	for range 100 {
		port := 10000 + rand.IntN(low-10000)
		l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err != nil {
			continue
		}
		l.Close()
		return port
	}
	t.Fatalf("no free port in 10000-%d after 100 tries", low-1)
	return 0
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
