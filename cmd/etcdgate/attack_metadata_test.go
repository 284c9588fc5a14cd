package main

import (
	"bytes"
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

// TestAttackMetadataFlood: writes carrying 640 MiB of distinct metric
// metadata (80,000 names with 8 KiB helps) fill the metadata store to
// limits.max_metadata_bytes and no further; the rest is dropped and
// counted, the writes succeed, and /api/v1/metadata answers the whole
// store. Needs ingest's MetadataSink wired to the store.
func TestAttackMetadataFlood(t *testing.T) {
	cfgPath := filepath.Join(t.TempDir(), "etcdgate.yml")
	if err := os.WriteFile(cfgPath, []byte("limits:\n  max_metadata_bytes: 16777216\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	const requests, perRequest, helpBytes = 40, 2000, 8 << 10
	runAttacks(t, []attack{{
		name: "80k names, 8 KiB helps",
		args: []string{"--config", cfgPath},
		send: func(t *testing.T, base string) []int {
			var codes []int
			now := time.Now().UnixMilli()
			for r := range requests {
				wr := prompb.WriteRequest{Timeseries: []prompb.TimeSeries{{
					Labels:  []prompb.Label{{Name: "__name__", Value: "flood_up"}},
					Samples: []prompb.Sample{{Value: 1, Timestamp: now + int64(r)}},
				}}}
				for i := range perRequest {
					name := fmt.Sprintf("flood_metric_%d_%d", r, i)
					help := name + " " + strings.Repeat(strconv.Itoa(i%10), helpBytes-len(name)-1)
					wr.Metadata = append(wr.Metadata, prompb.MetricMetadata{Type: prompb.MetricMetadata_GAUGE, MetricFamilyName: name, Help: help})
				}
				raw, err := wr.Marshal()
				if err != nil {
					t.Fatal(err)
				}
				code, _ := ringWrite(base, snappy.Encode(nil, raw))
				codes = append(codes, code)
			}
			if v, _ := strconv.ParseFloat(metricValue(t, base, "etcdgate_tsdb_metadata_bytes"), 64); v <= 8<<20 || v > 16<<20+64<<10 {
				t.Errorf("etcdgate_tsdb_metadata_bytes = %v, want it filled up to max_metadata_bytes (16 MiB)", v)
			}
			if v := metricValue(t, base, `etcdgate_tsdb_metadata_dropped_total{reason="bytes_limit"}`); v == "" || v == "0" {
				t.Errorf("no metadata dropped at max_metadata_bytes: %q", v)
			}
			code, body := httpGet(base + "/api/v1/metadata")
			if code != http.StatusOK || !bytes.Contains([]byte(body), []byte("flood_metric_0_0")) {
				t.Errorf("/api/v1/metadata after the flood: %d %.200s", code, body)
			}
			return codes
		},
		allowed:   []int{http.StatusNoContent},
		within:    90 * time.Second,
		maxGrowth: 300 << 20, // measured: 190–220 MiB (16 MiB kept, 128 MiB GC headroom, transient decoding)
	}})
}
