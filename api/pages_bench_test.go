package api

import (
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/etcdgate/etcdgate/evaluator"
	"github.com/etcdgate/etcdgate/internal/etcdfleet"
	"github.com/etcdgate/etcdgate/tsdb"
)

// BenchmarkPages renders each page over a fleet of
// $ETCDGATE_PAGES_BENCH_CLUSTERS three-member clusters (default 100:
// about 100k series; 980 is 1M), two scrapes 15 s apart ending now.
func BenchmarkPages(b *testing.B) {
	clusters := 100
	if s := os.Getenv("ETCDGATE_PAGES_BENCH_CLUSTERS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil {
			b.Fatal(err)
		}
		clusters = n
	}
	head, err := tsdb.NewHead(tsdb.DefaultHeadOptions(), nil)
	if err != nil {
		b.Fatal(err)
	}
	fleet := etcdfleet.New(etcdfleet.Options{Clusters: clusters, Members: 3, ClusterLabels: func(c int) []string {
		return []string{"product", "p" + strconv.Itoa(c%20), "scenario", []string{"business", "platform"}[c%2], "size", "small"}
	}})
	now := time.Now()
	for _, ts := range []time.Time{now.Add(-15 * time.Second), now} {
		for m := range fleet.NumMembers() {
			app := head.Appender()
			for _, s := range fleet.Member(m, ts.UnixMilli()) {
				if err := app.Append(s.Labels, s.T, s.V); err != nil {
					b.Fatal(err)
				}
			}
			if err := app.Commit(); err != nil {
				b.Fatal(err)
			}
		}
	}
	a := New(Options{})
	a.SetBackend(nil, head)
	a.SetQueryEngine(evaluator.NewEngine(head, evaluator.Options{}))
	h := a.Handler()
	b.Logf("%d series", head.NumSeries())
	for _, path := range []string{"/", "/scenario/business", "/cluster/" + fleet.ClusterName(clusters/2), "/targets", "/alerts"} {
		b.Run("page="+path, func(b *testing.B) {
			for b.Loop() {
				w := httptest.NewRecorder()
				h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, path, nil))
				if w.Code != http.StatusOK {
					b.Fatalf("%s: %d %s", path, w.Code, w.Body)
				}
			}
		})
	}
}
