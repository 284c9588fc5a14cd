// Package testnet gives tests loopback ports for the servers they start.
package testnet

import (
	"net"
	"testing"
)

// FreePort returns a port on 127.0.0.1 that was free a moment ago.
// Another process may take it before it is used; on a test machine that
// race is rare enough.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
