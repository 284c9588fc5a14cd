package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/etcdgate/etcdgate/internal/testbin"
	"github.com/etcdgate/etcdgate/internal/testnet"
)

// TestParseAndFormatQuerySameAsPrometheus3: /api/v1/parse_query and
// /api/v1/format_query answer as Prometheus 3 itself, and refuse what it
// refuses.
func TestParseAndFormatQuerySameAsPrometheus3(t *testing.T) {
	bin := testbin.Prometheus3(t)
	_, gw := startGateway(t)
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(cfgPath, []byte("global: {}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	port := testnet.FreePort(t)
	startProcess(t, bin, "--config.file="+cfgPath, "--storage.tsdb.path="+filepath.Join(dir, "data"),
		fmt.Sprintf("--web.listen-address=127.0.0.1:%d", port))
	prom := fmt.Sprintf("http://127.0.0.1:%d", port)
	waitFor(t, 60*time.Second, "prometheus 3 ready", func() bool {
		code, _ := httpGet(prom + "/-/ready")
		return code == http.StatusOK
	})
	answer := func(base, path, q string) (int, any) {
		code, body := httpGet(base + path + "?" + url.Values{"query": {q}}.Encode())
		var env struct {
			Status    string `json:"status"`
			ErrorType string `json:"errorType"`
			Data      any    `json:"data"`
		}
		if err := json.Unmarshal([]byte(body), &env); err != nil {
			t.Fatalf("%s%s %q: %v: %s", base, path, q, err, body)
		}
		if env.Status != "success" {
			return code, env.ErrorType
		}
		return code, env.Data
	}
	for _, q := range []string{
		`up`,
		`up{job="etcd",instance=~"10\\..*"} offset 5m`,
		`sum by (cluster) (rate(etcd_requests_total{code!="200"}[5m] @ 1700000000))`,
		`histogram_quantile(0.99, sum without (instance) (rate(x_bucket[1m:15s] offset -1m)))`,
		`topk(3, -x) / on (a, b) group_left (c) y > bool 2`,
		`count_values("v", x) unless ignoring (z) w`,
		`max_over_time((x + 1)[1h:] @ end())`,
		`"a string"`, `1e3`, `-(1 + 2) ^ 3`, `label_replace(x, "a", "$1", "b", "(.*)")`,
		`absent_over_time(nothing[5m])`, `{__name__=~"etcd_.+"}`, `x[5m] offset 1h`,
		`quantile(0.9, x) and y or z`, `time() - timestamp(x)`,
		`sum(x) by (a)`, ``, `sum(`, `x{a=~"("}`, `nosuchfunction(x)`, `x[5m`, `rate(x)`,
	} {
		for _, path := range []string{"/api/v1/parse_query", "/api/v1/format_query"} {
			gotCode, got := answer(gw, path, q)
			wantCode, want := answer(prom, path, q)
			if gotCode != wantCode || !reflect.DeepEqual(got, want) {
				g, _ := json.Marshal(got)
				w, _ := json.Marshal(want)
				t.Errorf("%s %q:\netcdgate   %d %s\nprometheus %d %s", path, q, gotCode, g, wantCode, w)
			}
		}
	}
}
