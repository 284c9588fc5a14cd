package main

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/etcdgate/etcdgate/evaluator/rules"
)

func TestRulesConfig(t *testing.T) {
	cfg, err := LoadConfig("testdata/rules.good.yml")
	if err != nil {
		t.Fatal(err)
	}
	// thresholds, the rule file's group, two groups per SLO (inline and file).
	if n := len(cfg.groups); n != 1+1+2*2 {
		t.Fatalf("%d groups: %+v", n, cfg.groups)
	}
	if cfg.groups[0].Name != "etcdgate-thresholds" || cfg.groups[1].File != "testdata/rules/etcd.yml" {
		t.Fatalf("group order: %s, %s", cfg.groups[0].Name, cfg.groups[1].File)
	}
	no, err := cfg.NotifierOptions()
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(no.Alertmanagers, " ") != "http://am1:9093/am http://am2:9093/am" || no.Timeout != 20*time.Second ||
		no.QueueCapacity != 100 || no.ExternalLabels.Get("region") != "eu-west" {
		t.Fatalf("notifier options %+v", no)
	}
	if time.Duration(cfg.EvaluationInterval) != 15*time.Second || time.Duration(cfg.Alerting.ResendDelay) != 30*time.Second {
		t.Fatalf("intervals %v %v", cfg.EvaluationInterval, cfg.Alerting.ResendDelay)
	}
	def := DefaultConfig()
	if time.Duration(def.EvaluationInterval) != 30*time.Second || len(def.groups) != 0 {
		t.Fatalf("defaults %+v", def.RulesConfig)
	}
}

func TestRulesConfigErrors(t *testing.T) {
	f := func(file string, want ...string) {
		t.Helper()
		_, err := LoadConfig("testdata/" + file)
		for _, w := range want {
			if err == nil || !strings.Contains(err.Error(), w) {
				t.Errorf("%s: got %v, want %q", file, err, w)
			}
		}
	}
	f("rules_file.bad.yml", `testdata/rules/bad.yml:4: group "broken", rule 1 (alert "Broken"): expr:`)
	f("rules_api_version.bad.yml", `api_version "v1": only v2 is supported`)
	f("rules_slo.bad.yml", "objective 120")
	f("rules_threshold.bad.yml", "thresholds: A: empty table")
	f("rules_interval.bad.yml", "evaluation_interval and alerting.resend_delay must be positive")
}

func TestCheckRulesCommand(t *testing.T) {
	var out, errOut bytes.Buffer
	if code := run([]string{"check", "rules", "testdata/rules/etcd.yml"}, &out, &errOut); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	if !strings.Contains(out.String(), "SUCCESS: testdata/rules/etcd.yml: 2 rules found") {
		t.Fatalf("stdout %q", out.String())
	}
	out.Reset()
	if code := run([]string{"check", "rules", "testdata/rules/etcd.yml", "testdata/rules/bad.yml"}, &out, &errOut); code != 1 {
		t.Fatalf("bad file: exit %d", code)
	}
	if !strings.Contains(errOut.String(), `bad.yml:4: group "broken", rule 1 (alert "Broken")`) {
		t.Fatalf("stderr %q", errOut.String())
	}
}

func TestSLOGenerateCommand(t *testing.T) {
	var out, errOut bytes.Buffer
	if code := run([]string{"slo", "generate", "testdata/slos/errors.yml"}, &out, &errOut); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	rf, errs := rules.Parse("out", out.Bytes())
	if len(errs) > 0 || len(rf.Groups) != 2 {
		t.Fatalf("generated file: %v\n%s", errs, out.String())
	}
	if code := run([]string{"slo", "generate"}, &out, &errOut); code != 2 {
		t.Fatalf("usage: exit %d", code)
	}
	if code := run([]string{"slo", "generate", "testdata/rules_slo.bad.yml"}, &out, &errOut); code != 1 {
		t.Fatalf("bad SLO file: exit %d", code)
	}
}
