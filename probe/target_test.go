package probe

import (
	"strings"
	"testing"
	"time"
)

func TestTargetValidate(t *testing.T) {
	ok := Target{Cluster: "c", Endpoints: []string{"https://10.0.0.1:2379"}}
	if err := ok.Validate(Names()); err != nil {
		t.Fatal(err)
	}
	for want, tg := range map[string]Target{
		"cluster is empty":                             {Endpoints: ok.Endpoints},
		`target "c": 65 endpoints: at most 64`:         {Cluster: "c", Endpoints: make([]string, 65)},
		`target "c": no endpoints`:                     {Cluster: "c"},
		`endpoint "10.0.0.1:2379": want http://`:       {Cluster: "c", Endpoints: []string{"10.0.0.1:2379"}},
		"tls cert_file and key_file go together":       {Cluster: "c", Endpoints: ok.Endpoints, TLS: TLSConfig{CertFile: "x.pem"}},
		`invalid label name "0bad"`:                    {Cluster: "c", Endpoints: ok.Endpoints, Labels: map[string]string{"0bad": "x"}},
		`invalid label name "cluster"`:                 {Cluster: "c", Endpoints: ok.Endpoints, Labels: map[string]string{"cluster": "x"}},
		`unknown inspection "hotkeys": want one of`:    {Cluster: "c", Endpoints: ok.Endpoints, Inspections: []string{"hotkeys"}},
		"interval of health must be positive":          {Cluster: "c", Endpoints: ok.Endpoints, Intervals: map[string]time.Duration{"health": 0}},
		`unknown inspection "nope": want one of [cons`: {Cluster: "c", Endpoints: ok.Endpoints, Intervals: map[string]time.Duration{"nope": time.Second}},
	} {
		if err := tg.Validate(Names()); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%+v: error %v, want %q", tg, err, want)
		}
	}
}

func TestTLSConfigLoadErrors(t *testing.T) {
	for want, c := range map[string]TLSConfig{
		"tls ca_file: open /nonexistent/ca.pem": {CAFile: "/nonexistent/ca.pem"},
		"no PEM certificate in it":              {CAFile: "target_test.go"},
		"tls cert_file /nonexistent/c.pem":      {CertFile: "/nonexistent/c.pem", KeyFile: "/nonexistent/k.pem"},
	} {
		if _, err := c.Load(); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%+v: error %v, want %q", c, err, want)
		}
	}
}

func TestSettingsValidate(t *testing.T) {
	if err := DefaultSettings().Validate(); err != nil {
		t.Fatal(err)
	}
	for want, edit := range map[string]func(*Settings){
		"health: quota_warn_ratio 1.5":               func(s *Settings) { s.Health.QuotaWarnRatio = 1.5 },
		"health: max_apply_lag must be positive":     func(s *Settings) { s.Health.MaxApplyLag = 0 },
		"big_values: threshold must be positive":     func(s *Settings) { s.BigValues.Threshold = 0 },
		"big_values: page_size 20000: want 1 to":     func(s *Settings) { s.BigValues.Paging.PageSize = 20000 },
		"key_count: bytes_per_second 10: want at":    func(s *Settings) { s.KeyCount.Paging.BytesPerSecond = 10 },
		`key_count: duplicate prefix "/a/"`:          func(s *Settings) { s.KeyCount.Prefixes = []string{"/a/", "/a/"} },
		"hot_keys: window 10ms: want at least 100ms": func(s *Settings) { s.HotKeys.Window = 10 * time.Millisecond },
		"hot_keys: empty prefix":                     func(s *Settings) { s.HotKeys.Prefixes = []string{""} },
		"big_values: max_prefixes must be positive":  func(s *Settings) { s.BigValues.MaxPrefixes = 0 },
		"key_count: max_keys 0: want at least 1":     func(s *Settings) { s.KeyCount.Paging.MaxKeys = 0 },
	} {
		s := DefaultSettings()
		edit(&s)
		if err := s.Validate(); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v, want %q", err, want)
		}
	}
	if _, err := DefaultSettings().Inspection("nope"); err == nil || !strings.Contains(err.Error(), `unknown inspection "nope"`) {
		t.Fatal(err)
	}
}
