package notifier

import (
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"

	"github.com/etcdgate/etcdgate/evaluator/notifier/amtest"
)

// TestAlertmanagerReceivesAlertAndResolution: a firing alert sent through
// the notifier reaches a real Alertmanager's receiver with the external
// labels, then its resolution does. A second, unreachable Alertmanager in
// the configuration does not stop delivery to the first.
func TestAlertmanagerReceivesAlertAndResolution(t *testing.T) {
	hook, hookURL := amtest.NewWebhook(t)
	am := amtest.Start(t, hookURL)

	opts := DefaultOptions()
	opts.Alertmanagers = []string{am, "http://127.0.0.1:1"}
	opts.ExternalLabels = labels.FromStrings("region", "eu-west")
	opts.MaxRetries, opts.RetryBackoff = 1, 10*time.Millisecond
	m, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	go m.Run()
	defer m.Stop()

	start := time.Now().Add(-time.Minute)
	alert := &Alert{
		Labels:       labels.FromStrings("alertname", "EtcdNoLeader", "cluster", "etcd-pay-1", "severity", "critical"),
		Annotations:  labels.FromStrings("summary", "etcd-pay-1 has no leader"),
		StartsAt:     start,
		EndsAt:       time.Now().Add(4 * time.Minute),
		GeneratorURL: "http://etcdgate/graph",
	}
	m.Send(alert)
	hook.WaitFor(t, "firing EtcdNoLeader etcd-pay-1 eu-west")

	resolved := *alert
	resolved.EndsAt = time.Now()
	m.Send(&resolved)
	hook.WaitFor(t, "resolved EtcdNoLeader etcd-pay-1 eu-west")
}
