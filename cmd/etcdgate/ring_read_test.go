package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/golang/snappy"
	"github.com/prometheus/prometheus/prompb"
)

// ringReadQueries are the queries compared between the ring and a
// single node holding the same data: instant and range.
var ringReadQueries = []string{
	`rate(etcd_server_proposals_committed_total[2m])`,
	`sum by (cluster) (rate(etcd_server_proposals_committed_total[2m]))`,
	`histogram_quantile(0.99, sum by (cluster, le) (rate(etcd_disk_wal_fsync_duration_seconds_bucket[2m])))`,
	`topk(3, etcd_mvcc_db_total_size_in_bytes)`,
	`absent(etcd_no_such_metric)`,
	`count(up)`,
	`count by (cluster) (up == 1)`,
}

// fleetScrape is one scrape of a small etcd fleet at ts: per member a
// counter, a 4-bucket histogram, a gauge and up.
func fleetScrape(clusters, scrape int, ts int64) []byte {
	var wr prompb.WriteRequest
	add := func(v float64, ls ...string) {
		s := prompb.TimeSeries{Samples: []prompb.Sample{{Value: v, Timestamp: ts}}}
		for i := 0; i < len(ls); i += 2 {
			s.Labels = append(s.Labels, prompb.Label{Name: ls[i], Value: ls[i+1]})
		}
		wr.Timeseries = append(wr.Timeseries, s)
	}
	for c := range clusters {
		for m := range 3 {
			cl, inst := fmt.Sprintf("etcd-%d", c), fmt.Sprintf("10.0.%d.%d:2379", c, m)
			k := float64(scrape * (c + m + 1))
			add(10*k, "__name__", "etcd_server_proposals_committed_total", "cluster", cl, "instance", inst)
			for i, le := range []string{"0.001", "0.01", "0.1", "+Inf"} {
				add(k*float64(i+1), "__name__", "etcd_disk_wal_fsync_duration_seconds_bucket", "cluster", cl, "instance", inst, "le", le)
			}
			add(float64(1000*c+10*m+scrape%7), "__name__", "etcd_mvcc_db_total_size_in_bytes", "cluster", cl, "instance", inst)
			add(1, "__name__", "up", "cluster", cl, "instance", inst, "job", "etcd")
		}
	}
	raw, err := wr.Marshal()
	if err != nil {
		panic(err)
	}
	return snappy.Encode(nil, raw)
}

// queryAnswer is a normalised answer: its result (series sorted by
// labels) and its warnings.
type queryAnswer struct {
	status   string
	result   string
	warnings []string
	err      string
}

func queryNode(t *testing.T, base, path string, params url.Values) queryAnswer {
	t.Helper()
	code, body := httpGet(base + path + "?" + params.Encode())
	var r struct {
		Status   string          `json:"status"`
		Data     json.RawMessage `json:"data"`
		Warnings []string        `json:"warnings"`
		Error    string          `json:"error"`
	}
	if err := json.Unmarshal([]byte(body), &r); err != nil {
		t.Fatalf("%s on %s: %d %v: %.300s", path, base, code, err, body)
	}
	// A query's data is {resultType, result}; a listing's is an array.
	var q struct {
		ResultType string            `json:"resultType"`
		Result     []json.RawMessage `json:"result"`
	}
	var list []json.RawMessage
	if len(r.Data) > 0 && r.Data[0] == '[' {
		if err := json.Unmarshal(r.Data, &list); err != nil {
			t.Fatal(err)
		}
	} else if len(r.Data) > 0 {
		if err := json.Unmarshal(r.Data, &q); err != nil {
			t.Fatal(err)
		}
		list = q.Result
	}
	items := make([]string, len(list))
	for i, it := range list {
		items[i] = string(it)
	}
	sort.Strings(items)
	r.Data = nil
	return queryAnswer{status: r.Status, result: q.ResultType + strings.Join(items, "\n"), warnings: r.Warnings, err: r.Error}
}

// TestRingReadsWholeRing: every node of a 4-node RF=3 ring answers
// queries exactly as one node holding all the data does; with one node
// killed too, without a warning; with two killed, with a partial-response
// warning, or an error when partial_response=false.
func TestRingReadsWholeRing(t *testing.T) {
	h := newRingHarness(t, "  pushdown_min_series: 0\n") // the fleet is small
	h.ttl = "30s"                                        // the killed nodes stay in the ring while the answers are compared
	names := []string{"n0", "n1", "n2", "n3"}
	for _, n := range names {
		h.start(n, 3)
	}
	for _, n := range names {
		waitActive(t, h.nodes[n].url, 30*time.Second, names...)
	}
	_, single := startGateway(t)

	end := time.Now().Add(-30 * time.Second).Truncate(time.Second)
	for s := range 24 {
		ts := end.Add(-time.Duration(23-s) * 15 * time.Second).UnixMilli()
		body := fleetScrape(10, s, ts)
		for _, base := range []string{h.nodes["n0"].url, single} {
			if code, msg := ringWrite(base, body); code != http.StatusNoContent {
				t.Fatalf("write to %s: %d %s", base, code, msg)
			}
		}
	}
	// The answer comes at quorum: let the third copies land.
	time.Sleep(500 * time.Millisecond)

	instant := func(q string) url.Values {
		return url.Values{"query": {q}, "time": {strconv.FormatInt(end.Unix(), 10)}}
	}
	ranged := func(q string) url.Values {
		return url.Values{"query": {q}, "start": {strconv.FormatInt(end.Add(-3*time.Minute).Unix(), 10)},
			"end": {strconv.FormatInt(end.Unix(), 10)}, "step": {"15"}}
	}
	series := url.Values{"match[]": {`{__name__=~".+"}`}}
	compare := func(live []string, wantWarnings bool) {
		t.Helper()
		for _, q := range ringReadQueries {
			for _, c := range []struct {
				path   string
				params url.Values
			}{{"/api/v1/query", instant(q)}, {"/api/v1/query_range", ranged(q)}} {
				want := queryNode(t, single, c.path, c.params)
				if want.status != "success" || want.result == "" {
					t.Fatalf("single node: %s %s: %+v", c.path, q, want)
				}
				for _, n := range live {
					got := queryNode(t, h.nodes[n].url, c.path, c.params)
					if got.result != want.result {
						t.Fatalf("%s %s through %s:\n%s\nwant (single node):\n%s", c.path, q, n, got.result, want.result)
					}
					if wantWarnings != (len(got.warnings) > 0) {
						t.Fatalf("%s %s through %s: warnings %q, want warnings: %v", c.path, q, n, got.warnings, wantWarnings)
					}
				}
			}
		}
		want := queryNode(t, single, "/api/v1/series", series)
		for _, n := range live {
			if got := queryNode(t, h.nodes[n].url, "/api/v1/series", series); got.result != want.result {
				t.Fatalf("/api/v1/series through %s differs from the single node (each series must be listed once):\n%.500s\nwant:\n%.500s", n, got.result, want.result)
			}
		}
	}
	compare(names, false)
	// The aggregations of rates were pushed down to the nodes (the
	// equal answers above are the proof they were right).
	pushed := 0.0
	for _, n := range names {
		v, _ := strconv.ParseFloat(metricValue(t, h.nodes[n].url, `etcdgate_ring_pushdown_aggregations_total{outcome="pushed"}`), 64)
		pushed += v
	}
	if pushed == 0 {
		t.Fatal("no aggregation was pushed down to the nodes")
	}

	h.nodes["n3"].kill()
	compare([]string{"n0", "n1", "n2"}, false)

	// n2 too, before n3's lease expires: series on both may be missing.
	h.nodes["n2"].kill()
	got := queryNode(t, h.nodes["n0"].url, "/api/v1/query", instant("count(up)"))
	if len(got.warnings) == 0 || !strings.Contains(strings.Join(got.warnings, " "), "n2") {
		t.Fatalf("two of four nodes down: warnings %q, want a partial-response warning naming n2", got.warnings)
	}
	p := instant("count(up)")
	p.Set("partial_response", "false")
	if got := queryNode(t, h.nodes["n0"].url, "/api/v1/query", p); got.status != "error" || got.err == "" {
		t.Fatalf("partial_response=false with two nodes down: %+v, want an error", got)
	}
}
