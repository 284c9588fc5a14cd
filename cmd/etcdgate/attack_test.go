package main

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// An attack is one hostile request pattern sent to a fresh etcdgate
// process. The harness asserts the bound the node promises for it: how it
// answers, how long it takes, and how far its memory may grow. Tables of
// attacks live beside the code they attack (attack_*_test.go); each runs
// on its own process so that one attack's peak cannot hide another's.
type attack struct {
	name string
	// args are extra `etcdgate serve` flags (a --config file, say).
	args []string
	// send performs the attack against base (http://127.0.0.1:port) and
	// returns the status codes it saw, one per request.
	send func(t *testing.T, base string) []int
	// allowed are the acceptable status codes; any other fails the test.
	allowed []int
	// within bounds the attack's wall time, answer included.
	within time.Duration
	// maxGrowth bounds the process's peak RSS (VmHWM) over its RSS
	// before the attack, in bytes.
	maxGrowth int64
}

// runAttacks runs each attack against its own gateway and checks its
// bounds, then checks the node still answers health and a query.
func runAttacks(t *testing.T, attacks []attack) {
	t.Helper()
	for _, a := range attacks {
		t.Run(a.name, func(t *testing.T) {
			p, base := startGateway(t, a.args...)
			before := procStatusBytes(t, p, "VmRSS")
			start := time.Now()
			codes := a.send(t, base)
			took := time.Since(start)
			peak := procStatusBytes(t, p, "VmHWM")
			for _, c := range codes {
				if !slices.Contains(a.allowed, c) {
					t.Errorf("status %d, want one of %v", c, a.allowed)
					break
				}
			}
			if took > a.within {
				t.Errorf("attack took %s, bound %s", took.Round(time.Millisecond), a.within)
			}
			if growth := peak - before; growth > a.maxGrowth {
				t.Errorf("peak RSS grew by %d MiB, bound %d MiB", growth>>20, a.maxGrowth>>20)
			}
			t.Logf("%d requests in %s, RSS before %d MiB, peak %d MiB",
				len(codes), took.Round(time.Millisecond), before>>20, peak>>20)
			if code, _ := httpGet(base + "/-/healthy"); code != http.StatusOK {
				t.Fatalf("node not healthy after the attack: %d", code)
			}
			if code, body := httpGet(base + "/api/v1/query?query=1"); code != http.StatusOK {
				t.Fatalf("node does not answer queries after the attack: %d %s", code, body)
			}
		})
	}
}

// procStatusBytes reads one "kB" field of /proc/<pid>/status (VmRSS,
// VmHWM) of the process, in bytes.
func procStatusBytes(t *testing.T, p *process, field string) int64 {
	t.Helper()
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid))
	if err != nil {
		t.Fatalf("read process status: %v", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		rest, ok := strings.CutPrefix(sc.Text(), field+":")
		if !ok {
			continue
		}
		kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
		if err != nil {
			t.Fatalf("parse %s %q: %v", field, rest, err)
		}
		return kb << 10
	}
	t.Fatalf("no %s in /proc/%d/status", field, p.cmd.Process.Pid)
	return 0
}

// TestAttackOversizedBody: a body past the compressed limit is refused
// from its Content-Length, before it is read.
func TestAttackOversizedBody(t *testing.T) {
	runAttacks(t, []attack{{
		name: "content-length 1GiB",
		send: func(t *testing.T, base string) []int {
			conn, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			fmt.Fprintf(conn, "POST /api/v1/write HTTP/1.1\r\nHost: x\r\nContent-Encoding: snappy\r\nContent-Length: %d\r\n\r\n", 1<<30)
			resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
			if err != nil {
				return []int{0}
			}
			resp.Body.Close()
			return []int{resp.StatusCode}
		},
		allowed:   []int{http.StatusRequestEntityTooLarge},
		within:    5 * time.Second,
		maxGrowth: 50 << 20,
	}})
}
