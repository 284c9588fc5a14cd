package main

import (
	"fmt"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestAttackReaderThatNeverReads: a client that asks for a large answer
// and never reads it is cut at --web.read-timeout: its handler returns
// and the connection is closed, instead of holding the result, its
// memory and a query slot for as long as the client likes.
func TestAttackReaderThatNeverReads(t *testing.T) {
	runAttacks(t, []attack{{
		name: "a query answer never read",
		args: []string{"--web.read-timeout", "3s"},
		send: func(t *testing.T, base string) []int {
			// About 9 MB of JSON: more than the socket buffers hold.
			seedSeries(t, base, 100000)
			const served = `etcdgate_http_requests_total{code="200",handler="query"}`
			if v := metricValue(t, base, served); v != "" {
				t.Fatalf("queries before the attack: %s", v)
			}
			conn := dialTinyReceiveBuffer(t, base)
			defer conn.Close()
			fmt.Fprintf(conn, "GET /api/v1/query?query=attack_many HTTP/1.1\r\nHost: etcdgate\r\n\r\n")
			// The handler is counted once it returns: only the deadline
			// can make it return while nobody reads.
			waitFor(t, 20*time.Second, "the unread answer to be cut", func() bool {
				return metricValue(t, base, served) == "1"
			})
			return []int{200}
		},
		allowed: []int{200}, within: 60 * time.Second, maxGrowth: 400 << 20,
	}})
}

// dialTinyReceiveBuffer connects to base with a 4 KiB receive buffer, so
// that a large answer fills the connection at once.
func dialTinyReceiveBuffer(t *testing.T, base string) net.Conn {
	t.Helper()
	d := net.Dialer{Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) {
			serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096)
		})
		if err != nil {
			return err
		}
		return serr
	}}
	conn, err := d.Dial("tcp", strings.TrimPrefix(base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	return conn
}
