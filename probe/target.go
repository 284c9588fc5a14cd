package probe

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"maps"
	"net/url"
	"os"
	"slices"
	"time"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
)

// StandardLabels are the labels every inspection series and record
// carries, as the relabel registry stamps them on scraped series, so that
// rules join inspections with metrics by the same labels.
var StandardLabels = []string{"cluster", "product", "scenario", "size", "region"}

// MaxEndpoints bounds the endpoints of a target: etcd clusters have 3 to
// 7 members (a cluster's member list is capped by etcd at a few dozen in
// practice), and each endpoint costs every run a connection.
const MaxEndpoints = 64

// Target is one etcd cluster to inspect.
type Target struct {
	// Cluster is the cluster's ID, the value of the cluster label. It
	// names the target: two targets with one ID are one target.
	Cluster string
	// Endpoints are the client URLs of the members, all of them: per-
	// member checks (revision, hash, key count, status) ask each one.
	Endpoints []string
	TLS       TLSConfig
	// Labels are product, scenario, size, region and any extra labels.
	Labels map[string]string
	// Inspections names the inspections to run; empty runs every one.
	Inspections []string
	// Intervals override the inspections' intervals for this target.
	Intervals map[string]time.Duration
}

// TLSConfig locates the PEM files a TLS-only etcd requires. Without a CA
// file the system roots are trusted; without a certificate none is sent.
type TLSConfig struct {
	CAFile     string
	CertFile   string
	KeyFile    string
	ServerName string
}

// Enabled reports whether the target talks TLS.
func (c TLSConfig) Enabled() bool { return c.CAFile != "" || c.CertFile != "" }

// Load reads the files into a client configuration, naming the file that
// cannot be read or parsed.
func (c TLSConfig) Load() (*tls.Config, error) {
	if !c.Enabled() {
		return nil, nil
	}
	tc := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: c.ServerName}
	if c.CAFile != "" {
		pem, err := os.ReadFile(c.CAFile)
		if err != nil {
			return nil, fmt.Errorf("tls ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("tls ca_file %s: no PEM certificate in it", c.CAFile)
		}
		tc.RootCAs = pool
	}
	if c.CertFile != "" {
		pair, err := tls.LoadX509KeyPair(c.CertFile, c.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("tls cert_file %s, key_file %s: %w", c.CertFile, c.KeyFile, err)
		}
		tc.Certificates = []tls.Certificate{pair}
	}
	return tc, nil
}

// Validate checks what can be checked without dialing: a cluster name,
// endpoint URLs, TLS files in pairs, label names and known inspections.
func (t *Target) Validate(known []string) error {
	if t.Cluster == "" {
		return errors.New("cluster is empty")
	}
	if len(t.Endpoints) == 0 {
		return fmt.Errorf("target %q: no endpoints", t.Cluster)
	}
	if len(t.Endpoints) > MaxEndpoints {
		// Each endpoint costs a connection and a goroutine per run; a
		// registry record is not trusted with more.
		return fmt.Errorf("target %q: %d endpoints: at most %d", t.Cluster, len(t.Endpoints), MaxEndpoints)
	}
	for _, ep := range t.Endpoints {
		u, err := url.Parse(ep)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("target %q: endpoint %q: want http://host:port or https://host:port", t.Cluster, ep)
		}
	}
	if (t.TLS.CertFile == "") != (t.TLS.KeyFile == "") {
		return fmt.Errorf("target %q: tls cert_file and key_file go together", t.Cluster)
	}
	for n := range t.Labels {
		if !model.LegacyValidation.IsValidLabelName(n) || n == "cluster" || n == "inspection" {
			return fmt.Errorf("target %q: invalid label name %q", t.Cluster, n)
		}
	}
	for _, name := range append(slices.Collect(maps.Keys(t.Intervals)), t.Inspections...) {
		if !slices.Contains(known, name) {
			return fmt.Errorf("target %q: unknown inspection %q: want one of %v", t.Cluster, name, known)
		}
	}
	for name, d := range t.Intervals {
		if d <= 0 {
			return fmt.Errorf("target %q: interval of %s must be positive", t.Cluster, name)
		}
	}
	return nil
}

// Runs reports whether the target runs the named inspection.
func (t *Target) Runs(name string) bool {
	return len(t.Inspections) == 0 || slices.Contains(t.Inspections, name)
}

// labelSet returns the target's labels, cluster included.
func (t *Target) labelSet() labels.Labels {
	b := labels.NewScratchBuilder(len(t.Labels) + 1)
	b.Add("cluster", t.Cluster)
	for n, v := range t.Labels {
		if v != "" {
			b.Add(n, v)
		}
	}
	b.Sort()
	return b.Labels()
}
