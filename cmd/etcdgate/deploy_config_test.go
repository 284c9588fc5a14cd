package main

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// TestDeployConfigs: the configurations under deploy/ load as serve
// loads them: the example (and its registry and rule pack), and the
// Kubernetes ConfigMap's with the identity flags its StatefulSet passes.
// The example's thresholds are the rule pack's, copied: they must stay
// the same.
func TestDeployConfigs(t *testing.T) {
	example, err := LoadConfig("../../deploy/etcdgate.yml")
	if err != nil {
		t.Fatal(err)
	}
	pack, err := LoadConfig("../../deploy/rules/etcdgate.yml")
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(example.Thresholds, pack.Thresholds) {
		t.Fatal("deploy/etcdgate.yml's thresholds differ from the rule pack's (deploy/rules/etcdgate.yml): copy them again")
	}
	if !example.Ring.Enabled && len(example.RuleFiles) == 0 {
		t.Fatal("the example loads no rules")
	}

	data, err := os.ReadFile("../../deploy/kubernetes/etcdgate.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var cm struct {
		Kind string            `yaml:"kind"`
		Data map[string]string `yaml:"data"`
	}
	for doc := range strings.SplitSeq(string(data), "\n---\n") {
		if err := yaml.Unmarshal([]byte(doc), &cm); err != nil {
			t.Fatal(err)
		}
		if cm.Kind == "ConfigMap" {
			break
		}
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "etcdgate.yml")
	// The files its pod mounts, from the repository.
	deployDir, err := filepath.Abs("../../deploy")
	if err != nil {
		t.Fatal(err)
	}
	cfg := strings.NewReplacer("/etc/etcdgate/registry/", deployDir+"/", "/etc/etcdgate/rules/", deployDir+"/rules/").Replace(cm.Data["etcdgate.yml"])
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := serveFlags{configFile: path, ringNodeName: "etcdgate-0",
		ringAdvertiseURL: "http://etcdgate-0.etcdgate-peers.monitoring.svc:9390"}.load()
	if err != nil {
		t.Fatalf("the ConfigMap's config with the StatefulSet's flags: %v", err)
	}
	if !got.Ring.Enabled || got.Ring.ReplicationFactor != 3 || got.Limits.MemoryLimitBytes == 0 {
		t.Fatalf("ring %+v, memory limit %d", got.Ring, got.Limits.MemoryLimitBytes)
	}
}
