package api

import (
	"bytes"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/prompb"

	"github.com/etcdgate/etcdgate/tsdb"
)

// BenchmarkRemoteRead reads N series × 1 h (241 samples 15 s apart,
// irregular values) over /api/v1/read through the whole handler, in
// both response types, and reports the samples streamed per second.
func BenchmarkRemoteRead(b *testing.B) {
	for _, n := range []int{1000, 10_000} {
		opts := tsdb.DefaultHeadOptions()
		head, err := tsdb.NewHead(opts, nil)
		if err != nil {
			b.Fatal(err)
		}
		app := head.Appender()
		end := testNow.Truncate(15 * time.Second)
		for s := range n {
			lset := labels.FromStrings("__name__", "etcd_mvcc_db_total_size_in_bytes", "cluster", "c"+strconv.Itoa(s/3),
				"instance", "m"+strconv.Itoa(s%3), "job", "etcd")
			for i := int64(0); i <= 240; i++ {
				t := end.Add(-time.Hour).UnixMilli() + i*15000
				if err := app.Append(lset, t, float64(1<<30+(i*7919+int64(s)*104729)%1_000_003)); err != nil {
					b.Fatal(err)
				}
			}
		}
		if err := app.Commit(); err != nil {
			b.Fatal(err)
		}
		a := New(Options{Storage: head, Registerer: prometheus.NewRegistry()})
		a.backend.Store(&backend{storage: head})
		h := a.Handler()
		for _, typ := range []prompb.ReadRequest_ResponseType{prompb.ReadRequest_SAMPLES, prompb.ReadRequest_STREAMED_XOR_CHUNKS} {
			body := encodeRead(b, &prompb.ReadRequest{AcceptedResponseTypes: []prompb.ReadRequest_ResponseType{typ},
				Queries: []*prompb.Query{{StartTimestampMs: end.Add(-time.Hour).UnixMilli(), EndTimestampMs: end.UnixMilli(),
					Matchers: []*prompb.LabelMatcher{{Type: prompb.LabelMatcher_EQ, Name: "__name__", Value: "etcd_mvcc_db_total_size_in_bytes"}}}}})
			b.Run(fmt.Sprintf("series=%d/type=%s", n, typ), func(b *testing.B) {
				b.ReportAllocs()
				var bytesOut int
				for b.Loop() {
					req := httptest.NewRequest(http.MethodPost, "/api/v1/read", bytes.NewReader(body))
					rec := httptest.NewRecorder()
					h.ServeHTTP(rec, req)
					if rec.Code != http.StatusOK {
						b.Fatalf("%d %s", rec.Code, rec.Body.String())
					}
					bytesOut = rec.Body.Len()
				}
				b.ReportMetric(float64(n*241)*float64(b.N)/b.Elapsed().Seconds(), "samples/s")
				b.ReportMetric(float64(bytesOut)/float64(n*241), "bytes/sample")
			})
		}
	}
}
