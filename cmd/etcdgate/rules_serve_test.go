package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/golang/snappy"
	"github.com/prometheus/prometheus/prompb"

	"github.com/etcdgate/etcdgate/evaluator/notifier/amtest"
)

// pushLeader writes etcd_server_has_leader of member m1 of cluster c1.
func pushLeader(t *testing.T, base string, v float64) {
	t.Helper()
	ts := prompb.TimeSeries{
		Labels: []prompb.Label{{Name: "__name__", Value: "etcd_server_has_leader"}, {Name: "cluster", Value: "c1"},
			{Name: "instance", Value: "m1"}, {Name: "job", Value: "etcd"}},
		Samples: []prompb.Sample{{Value: v, Timestamp: time.Now().UnixMilli()}},
	}
	raw, _ := (&prompb.WriteRequest{Timeseries: []prompb.TimeSeries{ts}}).Marshal()
	resp, err := http.Post(base+"/api/v1/write", "application/x-protobuf", strings.NewReader(string(snappy.Encode(nil, raw))))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("write: %s", resp.Status)
	}
}

const e2eRules = `groups:
  - name: etcd
    rules:
      - record: cluster:etcd_server_has_leader:min
        expr: min by (cluster) (etcd_server_has_leader)
      - alert: EtcdNoLeader
        expr: cluster:etcd_server_has_leader:min == 0
        labels: {severity: critical}
        annotations: {summary: '{{ $labels.cluster }} has no leader'}
`

func activeAlerts(t *testing.T, base string) []map[string]any {
	t.Helper()
	_, body := httpGet(base + "/api/v1/alerts")
	var resp struct {
		Data struct{ Alerts []map[string]any }
	}
	if err := json.Unmarshal([]byte(body), &resp); err != nil {
		t.Fatalf("alerts: %v %s", err, body)
	}
	return resp.Data.Alerts
}

// TestServeRulesToAlertmanager runs the binary with a rule file and a
// real Alertmanager: a member without a leader is recorded, fires an
// alert that reaches the Alertmanager's receiver with the external
// labels, survives a reload that changes the group, and resolves when
// the leader is back.
func TestServeRulesToAlertmanager(t *testing.T) {
	hook, hookURL := amtest.NewWebhook(t)
	am, _ := url.Parse(amtest.Start(t, hookURL))
	dir := t.TempDir()
	ruleFile := filepath.Join(dir, "etcd.yml")
	if err := os.WriteFile(ruleFile, []byte(e2eRules), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := fmt.Sprintf(`rule_files: [etcd.yml]
evaluation_interval: 1s
alerting:
  resend_delay: 1s
  external_labels: {region: eu-west}
  alertmanagers: [{static_configs: [{targets: [%q]}]}]
`, am.Host)
	cfgFile := filepath.Join(dir, "etcdgate.yml")
	if err := os.WriteFile(cfgFile, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	_, base := startGateway(t, "--config", cfgFile, "--web.enable-lifecycle")
	pushLeader(t, base, 0)
	hook.WaitFor(t, "firing EtcdNoLeader c1 eu-west")

	// ALERTS is written from the round after the restore of 'for' state.
	waitFor(t, 10*time.Second, "ALERTS series", func() bool {
		return len(seriesOf(t, base, `ALERTS{alertname="EtcdNoLeader",alertstate="firing"}`)) == 1
	})
	if n := len(seriesOf(t, base, `cluster:etcd_server_has_leader:min`)); n != 1 {
		t.Fatalf("recorded series: %d", n)
	}
	before := activeAlerts(t, base)
	if len(before) != 1 {
		t.Fatalf("alerts %v", before)
	}

	// A reload that changes the group keeps the alert's clock.
	if err := os.WriteFile(ruleFile, []byte(e2eRules+"      - record: extra:rule\n        expr: vector(1)\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	resp, err := http.Post(base+"/-/reload", "", nil)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("reload: %v %v", err, resp)
	}
	resp.Body.Close()
	waitFor(t, 10*time.Second, "the reloaded group to run", func() bool { return len(seriesOf(t, base, "extra:rule")) == 1 })
	after := activeAlerts(t, base)
	if len(after) != 1 || after[0]["activeAt"] != before[0]["activeAt"] {
		t.Fatalf("alert after reload %v, before %v", after, before)
	}

	pushLeader(t, base, 1)
	hook.WaitFor(t, "resolved EtcdNoLeader c1 eu-west")
}

// TestServeRestartRestoresAlertClock restarts the binary on the same data
// directory while an alert is pending: the restarted node takes the
// alert's ActiveAt from ALERTS_FOR_STATE instead of starting its 'for'
// clock again. ('for' is within the 10m grace period; a longer one would
// be shifted by the downtime, as in Prometheus.)
func TestServeRestartRestoresAlertClock(t *testing.T) {
	dir, dataDir := t.TempDir(), t.TempDir()
	rulesYAML := strings.Replace(e2eRules, "labels: {severity: critical}", "for: 5m\n        labels: {severity: critical}", 1)
	if err := os.WriteFile(filepath.Join(dir, "etcd.yml"), []byte(rulesYAML), 0o644); err != nil {
		t.Fatal(err)
	}
	cfgFile := filepath.Join(dir, "etcdgate.yml")
	if err := os.WriteFile(cfgFile, []byte("rule_files: [etcd.yml]\nevaluation_interval: 1s\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	p, base := startGatewayIn(t, dataDir, "--config", cfgFile)
	pushLeader(t, base, 0)
	// Pending, and its clock written: ALERTS_FOR_STATE is written from the
	// round after the first.
	waitFor(t, 10*time.Second, "ALERTS_FOR_STATE", func() bool {
		return len(seriesOf(t, base, `ALERTS_FOR_STATE{alertname="EtcdNoLeader"}`)) == 1
	})
	before := activeAlerts(t, base)
	if len(before) != 1 || before[0]["state"] != "pending" {
		t.Fatalf("alerts before restart: %v", before)
	}
	time.Sleep(2 * time.Second) // so that a reset clock would show
	if err := p.stop(30 * time.Second); err != nil {
		t.Fatal(err)
	}

	_, base = startGatewayIn(t, dataDir, "--config", cfgFile)
	// ALERTS_FOR_STATE holds whole seconds, as in Prometheus.
	second := func(a map[string]any) int64 {
		ts, _ := time.Parse(time.RFC3339Nano, a["activeAt"].(string))
		return ts.Unix()
	}
	var after []map[string]any
	deadline := time.Now().Add(10 * time.Second)
	for {
		after = activeAlerts(t, base)
		if len(after) == 1 && second(after[0]) == second(before[0]) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("alert not restored: before %v, after %v; ALERTS_FOR_STATE %v", before, after,
				seriesOf(t, base, "ALERTS_FOR_STATE"))
		}
		time.Sleep(100 * time.Millisecond)
	}
}
