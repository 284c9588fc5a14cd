package api

import (
	"context"
	"math"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/prometheus/prometheus/model/labels"
)

// queryRaw reads the samples of the one series named name straight from
// the head, as [timestamp, value] pairs.
func queryRaw(t *testing.T, e *testEnv, name string) [][2]float64 {
	t.Helper()
	q, err := e.head.Querier(math.MinInt64, math.MaxInt64)
	if err != nil {
		t.Fatal(err)
	}
	set := q.Select(context.Background(), labels.MustNewMatcher(labels.MatchEqual, "__name__", name))
	var out [][2]float64
	for set.Next() {
		it := set.At().Iterator(nil)
		for it.Next() {
			ts, v := it.At()
			out = append(out, [2]float64{float64(ts), v})
		}
	}
	return out
}

func newRecorder() *httptest.ResponseRecorder { return httptest.NewRecorder() }

func mustRequest(t *testing.T, method, path string) *http.Request {
	t.Helper()
	return httptest.NewRequest(method, path, nil)
}
