package deploy

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/prometheus/common/promslog"
	promconfig "github.com/prometheus/prometheus/config"
	_ "github.com/prometheus/prometheus/discovery/kubernetes" // registers kubernetes_sd_configs
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"sigs.k8s.io/yaml"
)

// newObject returns an empty object of the type a manifest's apiVersion
// and kind name, or nil for a kind these manifests should not hold.
func newObject(apiVersion, kind string) any {
	switch apiVersion + " " + kind {
	case "v1 ConfigMap":
		return &corev1.ConfigMap{}
	case "v1 Service":
		return &corev1.Service{}
	case "v1 ServiceAccount":
		return &corev1.ServiceAccount{}
	case "apps/v1 StatefulSet":
		return &appsv1.StatefulSet{}
	case "policy/v1 PodDisruptionBudget":
		return &policyv1.PodDisruptionBudget{}
	case "discovery.k8s.io/v1 EndpointSlice":
		return &discoveryv1.EndpointSlice{}
	case "rbac.authorization.k8s.io/v1 ClusterRole":
		return &rbacv1.ClusterRole{}
	case "rbac.authorization.k8s.io/v1 ClusterRoleBinding":
		return &rbacv1.ClusterRoleBinding{}
	}
	return nil
}

// loadManifests decodes every document of every file in kubernetes/
// strictly (an unknown or misspelt field fails) into its API type,
// keyed by "Kind/name".
func loadManifests(t *testing.T) map[string]any {
	t.Helper()
	files, err := filepath.Glob("kubernetes/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no manifests: %v", err)
	}
	out := map[string]any{}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for i, doc := range bytes.Split(data, []byte("\n---\n")) {
			var head struct {
				APIVersion string `json:"apiVersion"`
				Kind       string `json:"kind"`
				Metadata   struct {
					Name string `json:"name"`
				} `json:"metadata"`
			}
			if err := yaml.Unmarshal(doc, &head); err != nil {
				t.Fatalf("%s document %d: %v", f, i, err)
			}
			obj := newObject(head.APIVersion, head.Kind)
			if obj == nil {
				t.Fatalf("%s document %d: unexpected %s %s", f, i, head.APIVersion, head.Kind)
			}
			if err := yaml.UnmarshalStrict(doc, obj); err != nil {
				t.Fatalf("%s document %d (%s %s): %v", f, i, head.Kind, head.Metadata.Name, err)
			}
			key := head.Kind + "/" + head.Metadata.Name
			if _, dup := out[key]; dup {
				t.Fatalf("%s: %s defined twice", f, key)
			}
			out[key] = obj
		}
	}
	return out
}

// TestManifestsDecode: every manifest is a valid object of its type, and
// the etcdgate StatefulSet is wired as the server expects.
func TestManifestsDecode(t *testing.T) {
	objs := loadManifests(t)
	for _, want := range []string{"StatefulSet/etcdgate", "Service/etcdgate", "Service/etcdgate-peers", "ConfigMap/etcdgate-config",
		"PodDisruptionBudget/etcdgate", "StatefulSet/ring-etcd", "Service/etcd-pay-eu-1", "EndpointSlice/etcd-pay-eu-1",
		"StatefulSet/etcd-scraper", "ConfigMap/etcd-scraper", "ClusterRole/etcd-scraper"} {
		if objs[want] == nil {
			t.Errorf("no %s", want)
		}
	}
	sts, ok := objs["StatefulSet/etcdgate"].(*appsv1.StatefulSet)
	if !ok {
		t.Fatal("no etcdgate StatefulSet")
	}
	c := sts.Spec.Template.Spec.Containers[0]
	probe := func(name string, p *corev1.Probe, path string) {
		if p == nil || p.HTTPGet == nil || p.HTTPGet.Path != path {
			t.Errorf("%s probe: %+v, want GET %s", name, p, path)
		}
	}
	probe("readiness", c.ReadinessProbe, "/-/ready")
	probe("liveness", c.LivenessProbe, "/-/healthy")
	if c.Resources.Requests.Memory().IsZero() || c.Resources.Limits.Memory().Cmp(*c.Resources.Requests.Memory()) < 0 {
		t.Errorf("memory request %v, limit %v: both set, limit at least the request", c.Resources.Requests.Memory(), c.Resources.Limits.Memory())
	}
	if sts.Spec.ServiceName != "etcdgate-peers" || len(sts.Spec.VolumeClaimTemplates) != 1 {
		t.Errorf("StatefulSet: service %q, %d volume claims", sts.Spec.ServiceName, len(sts.Spec.VolumeClaimTemplates))
	}
	args := strings.Join(c.Args, " ")
	for _, want := range []string{"--ring.node-name=$(POD_NAME)", "--ring.advertise-url=http://$(POD_NAME).etcdgate-peers.monitoring.svc:9390"} {
		if !strings.Contains(args, want) {
			t.Errorf("args %q lack %q", args, want)
		}
	}
	// The external etcd's slice belongs to its selector-less Service.
	svc := objs["Service/etcd-pay-eu-1"].(*corev1.Service)
	slice := objs["EndpointSlice/etcd-pay-eu-1"].(*discoveryv1.EndpointSlice)
	if len(svc.Spec.Selector) != 0 || slice.Labels[discoveryv1.LabelServiceName] != svc.Name || slice.Namespace != svc.Namespace {
		t.Errorf("external etcd: service selector %v, slice of service %q in %q", svc.Spec.Selector, slice.Labels[discoveryv1.LabelServiceName], slice.Namespace)
	}
}

// TestManifestsDecodeStrictly: the strict decoding the manifests pass
// does refuse a misspelt field (the test above would prove nothing
// otherwise).
func TestManifestsDecodeStrictly(t *testing.T) {
	doc := []byte("apiVersion: v1\nkind: Service\nmetadata: {name: x}\nspec:\n  selctor: {app: x}\n")
	if err := yaml.UnmarshalStrict(doc, &corev1.Service{}); err == nil {
		t.Fatal("a misspelt field decoded")
	}
}

// TestScraperConfig: the scrapers' Prometheus configuration, rendered
// for each shard as the init container renders it, loads in agent mode
// with Prometheus's own loader, the code of `promtool check config
// --agent` (Debian's promtool is built without Kubernetes discovery,
// which this configuration uses).
func TestScraperConfig(t *testing.T) {
	cm := loadManifests(t)["ConfigMap/etcd-scraper"].(*corev1.ConfigMap)
	sts := loadManifests(t)["StatefulSet/etcd-scraper"].(*appsv1.StatefulSet)
	shards := fmt.Sprint(*sts.Spec.Replicas)
	if env := sts.Spec.Template.Spec.InitContainers[0].Env; len(env) != 1 || env[0].Name != "SHARDS" || env[0].Value != shards {
		t.Fatalf("init container SHARDS %+v, want the replica count %s", env, shards)
	}
	for shard := range int(*sts.Spec.Replicas) {
		cfg := strings.NewReplacer("__SHARDS__", shards, "__SHARD__", fmt.Sprint(shard)).Replace(cm.Data["prometheus.yml"])
		path := filepath.Join(t.TempDir(), "prometheus.yml")
		if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
			t.Fatal(err)
		}
		c, err := promconfig.LoadFile(path, true, promslog.NewNopLogger())
		if err != nil {
			t.Fatalf("shard %d: %v", shard, err)
		}
		keep := c.ScrapeConfigs[0].RelabelConfigs[3]
		if keep.Regex.String() != fmt.Sprint(shard) || c.ScrapeConfigs[0].RelabelConfigs[2].Modulus != uint64(*sts.Spec.Replicas) {
			t.Fatalf("shard %d keeps hashmod %s of %d", shard, keep.Regex, c.ScrapeConfigs[0].RelabelConfigs[2].Modulus)
		}
		if len(c.RemoteWriteConfigs) != 1 || !strings.HasSuffix(c.RemoteWriteConfigs[0].URL.String(), "/api/v1/write") {
			t.Fatalf("shard %d: remote write %v", shard, c.RemoteWriteConfigs)
		}
	}
	// And the loader refuses what it should: a bad shard regex.
	bad := strings.NewReplacer("__SHARDS__", "x", "__SHARD__", "0").Replace(cm.Data["prometheus.yml"])
	if _, err := promconfig.Load(bad, promslog.NewNopLogger()); err == nil {
		t.Fatal("a config with modulus x loaded")
	}
}
