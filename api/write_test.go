package api

import (
	"encoding/binary"
	"math"
	"net/http"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/golang/snappy"
	"github.com/prometheus/prometheus/model/value"
	"github.com/prometheus/prometheus/prompb"
)

func TestWriteStoresSeries(t *testing.T) {
	e := newTestEnv(t)
	code, body := e.post(encode(t,
		series(one(1), "__name__", "etcd_server_has_leader", "cluster", "c1", "instance", "m1"),
		series(one(2), "__name__", "etcd_mvcc_db_total_size_in_bytes", "cluster", "c1", "instance", "m1", "empty", ""),
	), nil)
	if code != http.StatusNoContent || body != "" {
		t.Fatalf("write: %d %q", code, body)
	}
	if got := e.seriesNames(`{cluster="c1"}`); !slices.Equal(got, []string{"etcd_mvcc_db_total_size_in_bytes", "etcd_server_has_leader"}) {
		t.Fatalf("series %v", got)
	}
	// Empty label values are dropped, as Prometheus drops them.
	if got := e.seriesNames(`{empty!=""}`); len(got) != 0 {
		t.Fatalf("empty-valued label kept: %v", got)
	}
}

// TestWriteRefusesMalformedRequests sends each kind of bad request after
// storing one good series, and checks the status, that the message names
// the problem, and that the stored series is intact.
func TestWriteRefusesMalformedRequests(t *testing.T) {
	valid := encode(t, series(one(1), "__name__", "up", "job", "etcd"))
	rawValid, _ := snappy.Decode(nil, valid)
	cases := []struct {
		name string
		body []byte
		hdr  map[string]string
		code int
		msg  string
	}{
		{"malformed snappy", []byte("\x0anot snappy at all"), nil, 400, "malformed snappy"},
		{"uncompressed protobuf", rawValid, nil, 400, "malformed snappy"},
		{"malformed protobuf", snappy.Encode(nil, []byte("\x0a\x05\x0a\x03abc garbage")), nil, 400, "malformed protobuf"},
		{"truncated body", valid[:len(valid)-3], nil, 400, "malformed snappy"},
		{"truncated protobuf", snappy.Encode(nil, rawValid[:len(rawValid)-4]), nil, 400, "malformed protobuf"},
		{"wrong content type", valid, map[string]string{"Content-Type": "application/json"}, 415, "Content-Type"},
		{"unknown proto message", valid, map[string]string{"Content-Type": "application/x-protobuf;proto=io.prometheus.write.v3.Request"}, 415, "proto"},
		{"wrong content encoding", valid, map[string]string{"Content-Encoding": "gzip"}, 415, "Content-Encoding"},
		{"body too large", make([]byte, 1<<20+1), nil, 413, "too large"},
		{"invalid label name", encode(t, series(one(1), "__name__", "up", "1bad", "x")), nil, 400, `invalid label name "1bad"`},
		{"invalid metric name", encode(t, series(one(1), "__name__", "up-time")), nil, 400, `invalid metric name "up-time"`},
		{"duplicate label", encode(t, series(one(1), "__name__", "up", "job", "a", "job", "b")), nil, 400, `duplicate label name "job"`},
		{"missing metric name", encode(t, series(one(1), "job", "etcd")), nil, 400, "no __name__ label"},
		{"too many labels", encode(t, series(one(1), "__name__", "up", "a", "1", "b", "1", "c", "1", "d", "1", "e", "1", "f", "1", "g", "1", "h", "1")), nil, 400, "more than the limit of 8"},
		{"label name too long", encode(t, series(one(1), "__name__", "up", strings.Repeat("n", 65), "x")), nil, 400, "longer than the limit of 64"},
		{"label value too long", encode(t, series(one(1), "__name__", "up", "job", strings.Repeat("v", 129))), nil, 400, "longer than the limit of 128"},
		{"invalid utf-8 value", encode(t, series(one(1), "__name__", "up", "job", "\xff")), nil, 400, "not valid UTF-8"},
		{"sample too far in future", encode(t, series([]prompb.Sample{{Value: 1, Timestamp: ms(-time.Hour)}}, "__name__", "up", "job", "etcd")), nil, 400, "in the future"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := newTestEnv(t)
			if code, body := e.post(valid, nil); code != http.StatusNoContent {
				t.Fatalf("setup write: %d %s", code, body)
			}
			code, body := e.post(c.body, c.hdr)
			if code != c.code || !strings.Contains(body, c.msg) {
				t.Fatalf("got %d %q, want %d containing %q", code, body, c.code, c.msg)
			}
			if got := e.seriesNames(`{job="etcd"}`); !slices.Equal(got, []string{"up"}) || e.head.NumSeries() != 1 {
				t.Fatalf("stored data changed: %v, %d series", got, e.head.NumSeries())
			}
		})
	}
}

// TestWriteKeepsValidPartOfMixedRequest: one bad series must not cost the
// good ones, and the message counts what was refused.
func TestWriteKeepsValidPartOfMixedRequest(t *testing.T) {
	e := newTestEnv(t)
	code, body := e.post(encode(t,
		series(one(1), "__name__", "good_one", "job", "etcd"),
		series([]prompb.Sample{{Value: 1, Timestamp: ms(time.Minute)}, {Value: 2, Timestamp: ms(2 * time.Minute)}}, "__name__", "bad", "in-valid", "x"),
		series(one(3), "__name__", "good_two", "job", "etcd"),
		series([]prompb.Sample{{Value: 4, Timestamp: ms(time.Minute)}, {Value: 5, Timestamp: ms(-time.Hour)}}, "__name__", "half_good", "job", "etcd"),
	), nil)
	if code != http.StatusBadRequest {
		t.Fatalf("code %d %q", code, body)
	}
	for _, want := range []string{"refused 3 of 6 samples", "1 of 4 series invalid", `invalid label name "in-valid"`} {
		if !strings.Contains(body, want) {
			t.Fatalf("message %q lacks %q", body, want)
		}
	}
	if got := e.seriesNames(`{job="etcd"}`); !slices.Equal(got, []string{"good_one", "good_two", "half_good"}) {
		t.Fatalf("stored %v", got)
	}
}

func TestWriteOutOfOrderAndDuplicates(t *testing.T) {
	e := newTestEnv(t)
	lbls := []string{"__name__", "etcd_debugging_mvcc_keys_total", "job", "etcd"}
	at := func(offset time.Duration, v float64) []prompb.Sample {
		return []prompb.Sample{{Value: v, Timestamp: ms(offset)}}
	}
	steps := []struct {
		samples []prompb.Sample
		code    int
		msg     string
	}{
		{at(time.Minute, 1), 204, ""},
		{at(5*time.Minute, 2), 204, ""}, // out of order, inside the 10m window
		{at(time.Minute, 1), 204, ""},   // exact duplicate: ignored
		{at(time.Minute, 9), 400, "duplicate sample for timestamp"},
		{at(30*time.Minute, 3), 400, "outside the out-of-order window"},
	}
	for i, s := range steps {
		code, body := e.post(encode(t, series(s.samples, lbls...)), nil)
		if code != s.code || !strings.Contains(body, s.msg) {
			t.Fatalf("step %d: %d %q, want %d %q", i, code, body, s.code, s.msg)
		}
	}
	got := queryRaw(t, e, lbls[1])
	if len(got) != 2 || got[0] != [2]float64{float64(ms(5 * time.Minute)), 2} || got[1] != [2]float64{float64(ms(time.Minute)), 1} {
		t.Fatalf("samples %v", got)
	}
}

func TestWriteKeepsStaleMarkers(t *testing.T) {
	e := newTestEnv(t)
	stale := math.Float64frombits(value.StaleNaN)
	code, body := e.post(encode(t, series([]prompb.Sample{
		{Value: 1, Timestamp: ms(2 * time.Minute)}, {Value: stale, Timestamp: ms(time.Minute)},
	}, "__name__", "up", "job", "etcd")), nil)
	if code != http.StatusNoContent {
		t.Fatalf("%d %s", code, body)
	}
	got := queryRaw(t, e, "up")
	if len(got) != 2 || !value.IsStaleNaN(got[1][1]) {
		t.Fatalf("stale marker not kept: %v", got)
	}
}

func TestWriteMetadataOnlyRequest(t *testing.T) {
	e := newTestEnv(t)
	raw, _ := (&prompb.WriteRequest{Metadata: []prompb.MetricMetadata{{
		Type: prompb.MetricMetadata_COUNTER, MetricFamilyName: "etcd_server_proposals_committed_total", Help: "The total number of consensus proposals committed.",
	}}}).Marshal()
	if code, body := e.post(snappy.Encode(nil, raw), nil); code != http.StatusNoContent {
		t.Fatalf("%d %s", code, body)
	}
}

func TestWriteRefusesNativeHistogramsKeepsFloats(t *testing.T) {
	e := newTestEnv(t)
	hist := series(nil, "__name__", "native", "job", "etcd")
	hist.Histograms = []prompb.Histogram{{Timestamp: ms(time.Minute), Schema: 3, Count: &prompb.Histogram_CountInt{CountInt: 1}}}
	code, body := e.post(encode(t, hist, series(one(1), "__name__", "up", "job", "etcd")), nil)
	if code != http.StatusBadRequest || !strings.Contains(body, "native histogram") {
		t.Fatalf("%d %q", code, body)
	}
	if got := e.seriesNames(`{job="etcd"}`); !slices.Equal(got, []string{"up"}) {
		t.Fatalf("stored %v", got)
	}
}

// TestWriteRefusesSnappyBomb: a small body whose snappy header claims a
// huge decoded size is refused from the header, before allocating it; and
// a real bomb (zeros compress about 20:1) is refused the same way.
func TestWriteRefusesSnappyBomb(t *testing.T) {
	e := newTestEnv(t)
	claim := binary.AppendUvarint(nil, 1<<31) // 2 GiB claimed
	claim = append(claim, 0x00, 'x')          // a 1-byte literal
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	code, body := e.post(claim, nil)
	runtime.ReadMemStats(&after)
	if code != http.StatusRequestEntityTooLarge || !strings.Contains(body, "decompressed") {
		t.Fatalf("claimed bomb: %d %q", code, body)
	}
	if grew := after.TotalAlloc - before.TotalAlloc; grew > 64<<20 {
		t.Fatalf("refusing the bomb allocated %d bytes", grew)
	}
	bomb := snappy.Encode(nil, make([]byte, 8<<20)) // 8 MiB of zeros, limit 4 MiB
	if len(bomb) > 1<<20 {
		t.Fatalf("bomb of %d bytes is not small", len(bomb))
	}
	if code, body := e.post(bomb, nil); code != http.StatusRequestEntityTooLarge {
		t.Fatalf("real bomb: %d %q", code, body)
	}
}

func TestWriteHeadersTolerated(t *testing.T) {
	e := newTestEnv(t)
	body := encode(t, series(one(1), "__name__", "up", "job", "etcd"))
	for _, hdr := range []map[string]string{
		{"Content-Type": "", "Content-Encoding": ""},
		{"Content-Type": "application/x-protobuf;proto=prometheus.WriteRequest", "Content-Encoding": "SNAPPY"},
	} {
		if code, msg := e.post(body, hdr); code != http.StatusNoContent {
			t.Fatalf("headers %v: %d %s", hdr, code, msg)
		}
	}
}
