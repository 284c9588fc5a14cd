package testnet

import (
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
)

func TestFreePortNeverRepeatsInProcess(t *testing.T) {
	seen := map[int]bool{}
	for range 200 {
		p := FreePort(t)
		if seen[p] {
			t.Fatalf("port %d handed out twice", p)
		}
		seen[p] = true
	}
}

// TestFreePortReservedAcrossProcesses holds ports in a child process and
// checks this process is never given one of them.
func TestFreePortReservedAcrossProcesses(t *testing.T) {
	if os.Getenv("TESTNET_CHILD") == "1" {
		var ports []string
		for range 300 {
			ports = append(ports, strconv.Itoa(FreePort(t)))
		}
		os.Stdout.WriteString(strings.Join(ports, ",") + "\n")
		os.Stdin.Read(make([]byte, 1)) // hold the locks until the parent is done
		return
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestFreePortReservedAcrossProcesses$")
	cmd.Env = append(os.Environ(), "TESTNET_CHILD=1")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { stdin.Close(); cmd.Wait() }()
	buf := make([]byte, 1<<16)
	var line string
	for !strings.Contains(line, "\n") {
		n, err := stdout.Read(buf)
		if err != nil {
			t.Fatalf("child: %v (read %q)", err, line)
		}
		line += string(buf[:n])
	}
	held := map[int]bool{}
	for _, s := range strings.Split(strings.TrimSpace(strings.SplitN(line, "\n", 2)[0]), ",") {
		p, err := strconv.Atoi(s)
		if err != nil {
			t.Fatalf("child printed %q", line)
		}
		held[p] = true
	}
	for range 300 {
		if p := FreePort(t); held[p] {
			t.Fatalf("port %d given to two processes", p)
		}
	}
}
