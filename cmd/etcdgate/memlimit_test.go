package main

import (
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestDetectMemoryLimit reads fake /proc and /sys trees: the lowest cgroup
// limit on the process's path wins over the host's RAM; "max" and v1's
// "no limit" value mean none.
func TestDetectMemoryLimit(t *testing.T) {
	const meminfo = "MemTotal:       24683620 kB\nMemFree:         1000 kB\n"
	const host = int64(24683620) << 10
	for _, tc := range []struct {
		name  string
		files map[string]string
		want  int64
	}{
		{"v2 limit", map[string]string{
			"proc/self/cgroup":                          "0::/kubepods/pod1/c1\n",
			"sys/fs/cgroup/kubepods/pod1/c1/memory.max": "2147483648\n",
			"sys/fs/cgroup/kubepods/memory.max":         "max\n",
		}, 2 << 30},
		{"v2 parent limit lower", map[string]string{
			"proc/self/cgroup":                          "0::/kubepods/pod1/c1\n",
			"sys/fs/cgroup/kubepods/pod1/c1/memory.max": "max\n",
			"sys/fs/cgroup/kubepods/pod1/memory.max":    "1073741824\n",
		}, 1 << 30},
		{"v2 namespaced root", map[string]string{
			"proc/self/cgroup":         "0::/\n",
			"sys/fs/cgroup/memory.max": "536870912\n",
		}, 512 << 20},
		{"v1 limit", map[string]string{
			"proc/self/cgroup": "4:memory:/process_api/abc\n3:cpuset:/\n",
			"sys/fs/cgroup/memory/process_api/abc/memory.limit_in_bytes": "3221225472\n",
		}, 3 << 30},
		{"v1 combined controllers", map[string]string{
			"proc/self/cgroup": "4:cpu,memory:/x\n",
			"sys/fs/cgroup/memory/x/memory.limit_in_bytes": "1073741824\n",
		}, 1 << 30},
		{"v1 unlimited", map[string]string{
			"proc/self/cgroup": "4:memory:/process_api/abc\n",
			"sys/fs/cgroup/memory/process_api/abc/memory.limit_in_bytes": "9223372036854771712\n",
			"sys/fs/cgroup/memory/memory.limit_in_bytes":                 "9223372036854771712\n",
		}, host},
		{"limit above host RAM", map[string]string{
			"proc/self/cgroup":         "0::/\n",
			"sys/fs/cgroup/memory.max": "107374182400\n",
		}, host},
		{"no cgroup files", map[string]string{}, host},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			tc.files["proc/meminfo"] = meminfo
			for name, content := range tc.files {
				p := filepath.Join(root, name)
				if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			if got, src := detectMemoryLimit(root); got != tc.want {
				t.Fatalf("limit %d from %s, want %d", got, src, tc.want)
			}
		})
	}
	if got, _ := detectMemoryLimit(t.TempDir()); got != 0 {
		t.Fatalf("nothing readable: %d, want 0", got)
	}
}

// TestMemoryLimitSizesDefaults: memory_limit_bytes in the file re-derives
// the defaults sized to memory, but not keys the file sets itself.
func TestMemoryLimitSizesDefaults(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	cfg, err := LoadConfig(write("a.yml", "limits:\n  memory_limit_bytes: 1073741824\n"))
	if err != nil {
		t.Fatal(err)
	}
	series, head := defaultHeadLimits(1 << 30)
	requests, bytes := defaultInflightLimits(1 << 30)
	l := cfg.Limits
	if l.MaxSeries != series || l.MaxHeadBytes != head || l.MaxInflightWriteRequests != requests || l.MaxInflightWriteBytes != bytes {
		t.Fatalf("limits %+v, want head %d/%d in flight %d/%d", l, series, head, requests, bytes)
	}
	if bytes != 128<<20 || requests != 32 {
		t.Fatalf("1 GiB: in flight %d requests, %d bytes", requests, bytes)
	}
	cfg, err = LoadConfig(write("b.yml", "limits:\n  memory_limit_bytes: 1073741824\n  max_inflight_write_requests: 7\n  max_series: 9\n"))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Limits.MaxInflightWriteRequests != 7 || cfg.Limits.MaxSeries != 9 || cfg.Limits.MaxInflightWriteBytes != bytes {
		t.Fatalf("explicit keys overridden: %+v", cfg.Limits)
	}
	if _, err := LoadConfig(write("c.yml", "limits:\n  memory_limit_bytes: 0\n")); err == nil {
		t.Fatal("memory_limit_bytes 0 accepted")
	}
}

func TestDefaultInflightLimits(t *testing.T) {
	for _, tc := range []struct {
		mem            int64
		requests, size int
	}{
		{0, 64, 256 << 20},
		{256 << 20, 16, 64 << 20},
		{24 << 30, 511, 2<<30 - 1},
	} {
		if r, b := defaultInflightLimits(tc.mem); r != tc.requests || b != tc.size {
			t.Errorf("memory %d: %d requests %d bytes, want %d %d", tc.mem, r, b, tc.requests, tc.size)
		}
	}
}

// TestServeSetsGoMemLimit: serve sets GOMEMLIMIT to 90% of
// memory_limit_bytes, and sizes the in-flight write budget from it.
func TestServeSetsGoMemLimit(t *testing.T) {
	_, url := startGateway(t, writeConfig(t, "limits:\n  memory_limit_bytes: 1073741824\n")...)
	memLimit := int64(1 << 30)
	want := float64(int64(float64(memLimit) * goMemLimitFraction))
	got := metricValue(t, url, "go_gc_gomemlimit_bytes")
	if v, err := strconv.ParseFloat(strings.TrimSpace(got), 64); err != nil || v != want {
		t.Fatalf("go_gc_gomemlimit_bytes %q, want %.0f", got, want)
	}
	if got := metricValue(t, url, "etcdgate_ingest_inflight_bytes"); got != "0" {
		t.Fatalf("etcdgate_ingest_inflight_bytes %q at rest", got)
	}
	// The process's forced cycles so far (other tests' gateways share it).
	if got := metricValue(t, url, "etcdgate_gc_forced_cycles_total"); got == "" || strings.HasPrefix(got, "-") {
		t.Fatalf("etcdgate_gc_forced_cycles_total %q, want a count", got)
	}
}

// TestServeSetsGOGCOnceOpen: serve recovers at recoveryGOGC and serves at
// the percent tuned to its live heap; a GOGC in the environment is left
// alone.
func TestServeSetsGOGCOnceOpen(t *testing.T) {
	_, url := startGateway(t)
	got, err := strconv.Atoi(strings.TrimSpace(metricValue(t, url, "go_gc_gogc_percent")))
	if err != nil {
		t.Fatal(err)
	}
	// The test process's heap is far below the headroom: the percent is
	// raised, and never past its bound.
	if got == recoveryGOGC || got <= defaultGOGC || got > maxTunedGOGC {
		t.Fatalf("go_gc_gogc_percent %d once ready, want the tuned percent in (%d, %d], not recovery's %d", got, defaultGOGC, maxTunedGOGC, recoveryGOGC)
	}
	t.Setenv("GOGC", "75")
	_, url = startGateway(t)
	if got := strings.TrimSpace(metricValue(t, url, "go_gc_gogc_percent")); got != "75" {
		t.Fatalf("go_gc_gogc_percent %q with GOGC=75 in the environment", got)
	}
}

func TestGCPercentFor(t *testing.T) {
	const mib = 1 << 20
	for _, tc := range []struct {
		live, headroom int64
		want           int
	}{
		{100 * mib, 256 * mib, 256},
		{600 * mib, 256 * mib, 43}, // rounded up: the headroom is at least 256 MiB
		{1024 * mib, 256 * mib, defaultGOGC},
		{1700 * mib, 256 * mib, defaultGOGC},
		{2 << 30, 256 * mib, 25}, // the headroom capped at maxGCHeadroom
		{4 << 30, 256 * mib, 13},
		{64 << 30, 256 * mib, 1},
		{10 * mib, 256 * mib, maxTunedGOGC},
		{0, 256 * mib, maxTunedGOGC},
		{-1, 256 * mib, maxTunedGOGC},
	} {
		got := gcPercentFor(tc.live, tc.headroom)
		if got != tc.want {
			t.Errorf("gcPercentFor(%d, %d) = %d, want %d", tc.live, tc.headroom, got, tc.want)
		}
		if tc.live > 0 && got < maxTunedGOGC && tc.live*int64(got)/100 < min(tc.headroom, maxGCHeadroom) {
			t.Errorf("gcPercentFor(%d, %d) = %d leaves a headroom below %d", tc.live, tc.headroom, got, tc.headroom)
		}
		if tc.live > 0 && got > 1 && tc.live*int64(got-1)/100 >= max(tc.headroom, maxGCHeadroom) {
			t.Errorf("gcPercentFor(%d, %d) = %d leaves a headroom above %d", tc.live, tc.headroom, got, maxGCHeadroom)
		}
	}
}

func TestGCHeadroom(t *testing.T) {
	if got := gcHeadroom(0); got != minGCHeadroom {
		t.Fatalf("without GOMEMLIMIT: %d, want %d", got, minGCHeadroom)
	}
	if got := gcHeadroom(512 << 20); got != 64<<20 {
		t.Fatalf("GOMEMLIMIT 512 MiB: %d, want an eighth of it", got)
	}
	if got := gcHeadroom(16 << 30); got != minGCHeadroom {
		t.Fatalf("GOMEMLIMIT 16 GiB: %d, want %d", got, minGCHeadroom)
	}
}

// TestGCCyclesNotified: a GC cycle notifies, and each later one again,
// until stopped.
func TestGCCyclesNotified(t *testing.T) {
	c := notifyGCCycles()
	defer c.stop()
	for i := range 3 {
		runtime.GC()
		select {
		case <-c.C:
		case <-time.After(30 * time.Second):
			t.Fatalf("no notification after cycle %d", i)
		}
	}
}
