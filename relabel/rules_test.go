package relabel

import (
	"strings"
	"testing"

	"github.com/prometheus/prometheus/model/labels"
	promrelabel "github.com/prometheus/prometheus/model/relabel"
	"gopkg.in/yaml.v3"
)

// parseRules decodes a YAML list of relabel configs as the config file does.
func parseRules(t testing.TB, src string) []*RuleConfig {
	t.Helper()
	var rules []*RuleConfig
	if err := yaml.Unmarshal([]byte(src), &rules); err != nil {
		t.Fatalf("rules %q: %v", src, err)
	}
	return rules
}

// newTestPipeline returns a pipeline without registry defaults, so that
// only the rules change series.
func newTestPipeline(t testing.TB, cfg Config) *Pipeline {
	t.Helper()
	opts := DefaultOptions()
	opts.Config = cfg
	p, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestActionsMatchPrometheus runs every relabel action through the
// pipeline and through Prometheus's ProcessBuilder on the same input, and
// checks that both agree and give the expected result.
func TestActionsMatchPrometheus(t *testing.T) {
	in := labels.FromStrings("__name__", "etcd_server_has_leader", "job", "etcd", "instance", "10.0.0.1:2379",
		"namespace", "Kube-System", "pod", "etcd-0", "meta_zone", "eu-1", "copy", "etcd")
	tests := []struct {
		name  string
		rules string
		want  string // the stored series, or "" when dropped
	}{
		{"replace", `[{source_labels: [instance], regex: '(.*):\d+', target_label: host, replacement: '$1'}]`,
			`{__name__="etcd_server_has_leader", copy="etcd", host="10.0.0.1", instance="10.0.0.1:2379", job="etcd", meta_zone="eu-1", namespace="Kube-System", pod="etcd-0"}`},
		{"replace_no_match", `[{source_labels: [job], regex: 'apiserver', target_label: role, replacement: x}]`,
			in.String()},
		{"keep_match", `[{source_labels: [job], regex: etcd, action: keep}]`, in.String()},
		{"keep_miss", `[{source_labels: [job], regex: apiserver, action: keep}]`, ""},
		{"drop_match", `[{source_labels: [pod], regex: 'etcd-.*', action: drop}]`, ""},
		{"drop_miss", `[{source_labels: [pod], regex: 'kube-.*', action: drop}]`, in.String()},
		{"keepequal_equal", `[{source_labels: [job], target_label: copy, action: keepequal}]`, in.String()},
		{"keepequal_differ", `[{source_labels: [pod], target_label: copy, action: keepequal}]`, ""},
		{"dropequal_equal", `[{source_labels: [job], target_label: copy, action: dropequal}]`, ""},
		{"dropequal_differ", `[{source_labels: [pod], target_label: copy, action: dropequal}]`, in.String()},
		{"hashmod", `[{source_labels: [instance], modulus: 8, target_label: shard, action: hashmod}]`, "shard"},
		{"labelmap", `[{regex: 'meta_(.+)', action: labelmap}]`,
			`{__name__="etcd_server_has_leader", copy="etcd", instance="10.0.0.1:2379", job="etcd", meta_zone="eu-1", namespace="Kube-System", pod="etcd-0", zone="eu-1"}`},
		{"labeldrop", `[{regex: 'meta_.*|copy', action: labeldrop}]`,
			`{__name__="etcd_server_has_leader", instance="10.0.0.1:2379", job="etcd", namespace="Kube-System", pod="etcd-0"}`},
		{"labelkeep", `[{regex: '__name__|job|pod', action: labelkeep}]`,
			`{__name__="etcd_server_has_leader", job="etcd", pod="etcd-0"}`},
		{"lowercase", `[{source_labels: [namespace], target_label: namespace, action: lowercase}]`,
			strings.Replace(in.String(), "Kube-System", "kube-system", 1)},
		{"uppercase", `[{source_labels: [pod], target_label: pod_upper, action: uppercase}]`,
			strings.Replace(in.String(), `pod="etcd-0"`, `pod="etcd-0", pod_upper="ETCD-0"`, 1)},
		{"chain_stops_at_drop", `[{source_labels: [job], regex: etcd, action: drop}, {target_label: never, replacement: x}]`, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rules := parseRules(t, tc.rules)
			cfgs := make([]*promrelabel.Config, len(rules))
			for i, r := range rules {
				cfgs[i] = &r.Config
			}
			lb := labels.NewBuilder(in)
			promKeep := promrelabel.ProcessBuilder(lb, cfgs...)

			cfg := DefaultConfig()
			cfg.RelabelConfigs = rules
			out, keep, _ := newTestPipeline(t, cfg).Relabel(in)
			if keep != promKeep || keep && !labels.Equal(out, lb.Labels()) {
				t.Fatalf("pipeline %v %s, Prometheus %v %s", keep, out, promKeep, lb.Labels())
			}
			switch {
			case tc.want == "":
				if keep {
					t.Fatalf("kept %s, want dropped", out)
				}
			case tc.want == "shard":
				if !keep || out.Get("shard") == "" {
					t.Fatalf("got %v %s, want a shard label", keep, out)
				}
			case !keep || out.String() != tc.want:
				t.Fatalf("got %v %s\nwant %s", keep, out, tc.want)
			}
		})
	}
}

// TestSourceRulesApplyToMatchingSeries checks that a source's rules run
// only on the series its matchers select, after the global rules.
func TestSourceRulesApplyToMatchingSeries(t *testing.T) {
	cfg := DefaultConfig()
	cfg.RelabelConfigs = parseRules(t, `[{target_label: env, replacement: prod}]`)
	cfg.Sources = []Source{{Name: "etcd", Match: map[string]string{"job": "etcd", "env": "prod"},
		RelabelConfigs: parseRules(t, `[{regex: 'grpc_.*', source_labels: [__name__], action: drop}]`)}}
	p := newTestPipeline(t, cfg)
	for _, tc := range []struct {
		in   labels.Labels
		keep bool
	}{
		{labels.FromStrings("__name__", "grpc_server_handled_total", "job", "etcd"), false},
		{labels.FromStrings("__name__", "etcd_server_has_leader", "job", "etcd"), true},
		{labels.FromStrings("__name__", "grpc_server_handled_total", "job", "apiserver"), true},
	} {
		out, keep, _ := p.Relabel(tc.in)
		if keep != tc.keep || keep && out.Get("env") != "prod" {
			t.Errorf("%s: got %v %s, want keep=%v with env=prod", tc.in, keep, out, tc.keep)
		}
	}
	st := p.Status()
	if len(st.Rules) != 2 || st.Rules[1].Scope != "source etcd" || st.Rules[1].Dropped != 1 || st.Rules[1].Kept != 1 ||
		st.Rules[0].Changed != 3 {
		t.Fatalf("status %+v", st.Rules)
	}
}

// TestRuleConfigErrors checks that bad rules are refused with their line.
func TestRuleConfigErrors(t *testing.T) {
	for src, want := range map[string]string{
		"- action: keep\n  source_lables: [job]\n":          "line 2: field source_lables not found",
		"- action: hashmod\n  source_labels: [job]\n":       "line 1: relabel config: relabel configuration for hashmod requires non-zero modulus",
		"- action: frobnicate\n":                            "unknown relabel action",
		"- target_label: 'bad-name'\n  replacement: x\n":    `line 1: relabel config: "bad-name" is invalid 'target_label'`,
		"- action: keep\n  regex: '('\n":                    "error parsing regexp",
		"\n\n- action: lowercase\n  source_labels: [job]\n": "line 3: relabel config: relabel configuration for lowercase action requires 'target_label'",
	} {
		var rules []*RuleConfig
		err := yaml.Unmarshal([]byte(src), &rules)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: error %v, want it to contain %q", src, err, want)
		}
	}
}
