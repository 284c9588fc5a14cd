package main

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/golang/snappy"
	"github.com/prometheus/prometheus/prompb"
)

// TestAttackLabelChurn: waves of series with a unique pod label (pods that
// come and go, or a sender making up values) through a node with a short
// staleness period. Each wave's series leave memory two checkpoints after
// the next wave arrives, so the series in memory and the symbols stay at
// one wave's worth, and the peak RSS stays bounded while the series ever
// seen grow with every wave. The evicted waves stay queryable.
func TestAttackLabelChurn(t *testing.T) {
	const perWave, waves, perRequest = 40_000, 6, 2000
	cfg := filepath.Join(t.TempDir(), "etcdgate.yml")
	err := os.WriteFile(cfg, []byte("head:\n  out_of_order_window: 0s\n  checkpoint_interval: 1s\n  staleness_period: 1m\n"), 0o644)
	if err != nil {
		t.Fatal(err)
	}
	series := func(wave, i int) []prompb.Label {
		return []prompb.Label{
			{Name: "__name__", Value: "etcd_debugging_mvcc_keys_total"},
			{Name: "cluster", Value: fmt.Sprintf("cluster-%d", i%500)},
			{Name: "pod", Value: fmt.Sprintf("etcd-%d-%07d-%x", wave, i, i*2654435761)},
		}
	}
	start := time.Now().Add(-time.Hour).UnixMilli()
	waveTime := func(w int) int64 { return start + int64(w)*3*60000 } // > staleness_period apart
	runAttacks(t, []attack{{
		name: fmt.Sprintf("%d waves of %d unique pods", waves, perWave),
		args: []string{"--config", cfg},
		send: func(t *testing.T, base string) []int {
			var codes []int
			client := &http.Client{Timeout: 30 * time.Second}
			var symbols []float64
			for w := range waves {
				for i := 0; i < perWave; i += perRequest {
					var wr prompb.WriteRequest
					for j := i; j < min(i+perRequest, perWave); j++ {
						wr.Timeseries = append(wr.Timeseries, prompb.TimeSeries{
							Labels:  series(w, j),
							Samples: []prompb.Sample{{Value: float64(j), Timestamp: waveTime(w)}},
						})
					}
					raw, err := wr.Marshal()
					if err != nil {
						t.Fatal(err)
					}
					resp, err := client.Post(base+"/api/v1/write", "application/x-protobuf", strings.NewReader(string(snappy.Encode(nil, raw))))
					if err != nil {
						t.Fatal(err)
					}
					resp.Body.Close()
					codes = append(codes, resp.StatusCode)
				}
				// The wave before this one leaves memory within two
				// checkpoints (1 s apart); its symbols are freed once no
				// reader that began before the eviction is left.
				want := float64(w * perWave)
				waitFor(t, 2*time.Minute, fmt.Sprintf("%v series evicted and freed after wave %d", want, w), func() bool {
					return metricFloat(t, base, "etcdgate_tsdb_head_series_evicted_total") >= want &&
						metricFloat(t, base, "etcdgate_tsdb_index_series") <= perWave &&
						metricFloat(t, base, "etcdgate_tsdb_head_removed_series_waiting") == 0
				})
				symbols = append(symbols, metricFloat(t, base, "etcdgate_tsdb_head_symbols"))
				t.Logf("wave %d: %v series in memory, %v symbols, head %.1f MiB, RSS %d MiB", w,
					metricFloat(t, base, "etcdgate_tsdb_index_series"), symbols[w],
					metricFloat(t, base, "etcdgate_tsdb_head_bytes")/(1<<20), int64(metricFloat(t, base, "process_resident_memory_bytes"))>>20)
				if symbols[w] > symbols[0] {
					t.Errorf("%v symbols after wave %d, %v after the first", symbols[w], w, symbols[0])
				}
			}
			// A pod of the first wave is read back from the store.
			q := fmt.Sprintf(`etcd_debugging_mvcc_keys_total{pod=%q}`, series(0, 7)[2].Value)
			code, body := httpGet(fmt.Sprintf("%s/api/v1/query?query=%s&time=%d", base, urlQuery(q), waveTime(0)/1000+1))
			if code != http.StatusOK || !strings.Contains(body, `"7"]`) {
				t.Errorf("evicted pod of the first wave: %d %s", code, body)
			}
			return codes
		},
		allowed: []int{http.StatusNoContent, http.StatusOK},
		within:  5 * time.Minute,
		// A wave takes ~20 MiB of head; badger's memtables, caches and
		// compaction buffers up to ~300 MiB. The strict bounds are the
		// series and symbols in memory above.
		maxGrowth: 512 << 20,
	}})
}

func metricFloat(t *testing.T, base, name string) float64 {
	t.Helper()
	s := metricValue(t, base, name)
	v, err := strconv.ParseFloat(s, 64)
	if err != nil {
		t.Fatalf("metric %s: %q", name, s)
	}
	return v
}

func urlQuery(s string) string {
	r := strings.NewReplacer("{", "%7B", "}", "%7D", `"`, "%22", "=", "%3D", " ", "%20")
	return r.Replace(s)
}
