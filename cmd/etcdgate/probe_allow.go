package main

import (
	"fmt"
	"log/slog"
	"net/url"
	"slices"
	"strings"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// endpointPattern is one probe.registry_endpoint_allow entry:
// scheme://host:port, where * in the host stands for any characters
// within one dot-separated label ("*.etcd.internal" matches
// "a.etcd.internal", not "a.b.etcd.internal"; "10.1.*.*" matches the
// addresses of 10.1/16), and a port of * matches every port. Scheme and
// label count must match exactly; hosts compare case-insensitively.
type endpointPattern struct {
	scheme string
	labels []string // host labels, lower case
	port   string   // "*" for any
}

func parseEndpointPattern(s string) (endpointPattern, error) {
	raw, anyPort := strings.CutSuffix(strings.TrimSuffix(s, "/"), ":*")
	if anyPort {
		raw += ":0" // url.Parse takes no * for a port
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Hostname() == "" || u.User != nil ||
		(u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
		return endpointPattern{}, fmt.Errorf("probe: registry_endpoint_allow %q: want http(s)://host:port, * allowed in host labels and as the port", s)
	}
	if u.Port() == "" {
		return endpointPattern{}, fmt.Errorf("probe: registry_endpoint_allow %q: name the port (or *)", s)
	}
	labels := strings.Split(strings.ToLower(u.Hostname()), ".")
	for _, l := range labels {
		if l == "" || strings.Count(l, "*") > 1 {
			return endpointPattern{}, fmt.Errorf("probe: registry_endpoint_allow %q: empty host label or more than one * in a label", s)
		}
	}
	p := endpointPattern{scheme: u.Scheme, labels: labels, port: u.Port()}
	if anyPort {
		p.port = "*"
	}
	return p, nil
}

// match reports whether endpoint, an etcd client URL from the registry,
// is allowed by p. An endpoint with user info, a path, a query or a
// fragment never matches.
func (p endpointPattern) match(endpoint string) bool {
	u, err := url.Parse(endpoint)
	if err != nil || u.User != nil || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" ||
		u.Scheme != p.scheme || (p.port != "*" && u.Port() != p.port) || u.Port() == "" {
		return false
	}
	labels := strings.Split(strings.ToLower(u.Hostname()), ".")
	if len(labels) != len(p.labels) {
		return false
	}
	for i, pl := range p.labels {
		if !matchLabel(pl, labels[i]) {
			return false
		}
	}
	return true
}

// matchLabel matches one host label against a pattern label in which
// one * stands for any run of characters (linear in the label: the
// endpoint is untrusted).
func matchLabel(pattern, label string) bool {
	prefix, suffix, star := strings.Cut(pattern, "*")
	if !star {
		return pattern == label
	}
	return len(label) >= len(prefix)+len(suffix) && strings.HasPrefix(label, prefix) && strings.HasSuffix(label, suffix)
}

// endpointAllowList is the compiled probe.registry_endpoint_allow.
type endpointAllowList []endpointPattern

func compileEndpointAllowList(patterns []string) (endpointAllowList, error) {
	out := make(endpointAllowList, 0, len(patterns))
	for _, s := range patterns {
		p, err := parseEndpointPattern(s)
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, nil
}

// allows reports whether every endpoint matches a pattern: a cluster
// with one endpoint outside the list is not probed at all.
func (l endpointAllowList) allows(endpoints []string) bool {
	for _, ep := range endpoints {
		if !slices.ContainsFunc(l, func(p endpointPattern) bool { return p.match(ep) }) {
			return false
		}
	}
	return true
}

// refusedTarget is a registry cluster whose endpoints are not allowed.
type refusedTarget struct {
	Cluster   string
	Endpoints []string
}

// refusedTargets reports registry targets refused by the allow-list: a
// gauge of how many are refused now, and one log line per cluster when
// it becomes refused or its endpoints change.
type refusedTargets struct {
	gauge  prometheus.Gauge
	logger *slog.Logger
	mu     sync.Mutex
	logged map[string]string // cluster -> endpoints logged; guarded by mu
}

func newRefusedTargets(reg prometheus.Registerer, logger *slog.Logger) *refusedTargets {
	r := &refusedTargets{logger: logger, logged: map[string]string{},
		gauge: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "etcdgate_probe_registry_targets_refused",
			Help: "Registry clusters not probed because an endpoint is outside probe.registry_endpoint_allow.",
		})}
	reg.MustRegister(r.gauge)
	return r
}

func (r *refusedTargets) report(refused []refusedTarget) {
	r.gauge.Set(float64(len(refused)))
	r.mu.Lock()
	defer r.mu.Unlock()
	now := make(map[string]string, len(refused))
	for _, t := range refused {
		eps := strings.Join(t.Endpoints, ",")
		now[t.Cluster] = eps
		if r.logged[t.Cluster] != eps {
			r.logger.Warn("registry cluster not probed: endpoint outside probe.registry_endpoint_allow",
				"cluster", clipText(t.Cluster), "endpoints", clipText(eps))
		}
	}
	r.logged = now
}

// clipText shortens untrusted registry text for a log line.
func clipText(s string) string {
	const n = 256
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
