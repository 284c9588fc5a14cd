package api

import (
	"crypto/tls"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	"github.com/prometheus/exporter-toolkit/web"
	"go.yaml.in/yaml/v2"
)

// Role is what an endpoint requires of the caller.
type Role uint8

const (
	// RoleOpen endpoints (health, readiness) answer without credentials.
	RoleOpen Role = iota
	// RoleRead: queries, series, labels, rules, alerts, SLOs, inspections,
	// status pages, /metrics, remote read.
	RoleRead
	// RoleWrite: remote write (and the ring's internal push).
	RoleWrite
	// RoleAdmin: /-/reload and /debug/pprof.
	RoleAdmin
)

func (r Role) String() string {
	switch r {
	case RoleOpen:
		return "open"
	case RoleRead:
		return "read"
	case RoleWrite:
		return "write"
	case RoleAdmin:
		return "admin"
	}
	return fmt.Sprintf("Role(%d)", uint8(r))
}

// Principals are the identities granted one role: basic-auth users of the
// web config file, and client certificates by their subject common name.
// A certificate counts only when the TLS handshake verified it against
// client_ca_file (client_auth_type RequireAndVerifyClientCert or
// VerifyClientCertIfGiven).
type Principals struct {
	Users       []string `yaml:"users"`
	ClientCerts []string `yaml:"client_certs"`
}

// Authorization splits the authenticated identities into writers,
// readers and administrators. An identity may hold several roles; none
// implies another.
type Authorization struct {
	Write Principals `yaml:"write"`
	Read  Principals `yaml:"read"`
	Admin Principals `yaml:"admin"`
}

// Validate checks the names; whether the users exist is checked against
// the web config file by NewAuthPolicy.
func (z *Authorization) Validate() error {
	for _, p := range []struct {
		role Role
		ps   Principals
	}{{RoleWrite, z.Write}, {RoleRead, z.Read}, {RoleAdmin, z.Admin}} {
		for _, n := range slices.Concat(p.ps.Users, p.ps.ClientCerts) {
			if strings.TrimSpace(n) == "" {
				return fmt.Errorf("%w: web.authorization.%s: empty user or client certificate name", ErrAuthConfig, p.role)
			}
		}
	}
	return nil
}

// yamlValue is how YAML errors quote the offending value ("cannot
// unmarshal !!str `...` into ..."): in a web config file that may be a
// password, so it is never passed on.
var yamlValue = regexp.MustCompile("`[^`]*`")

func redactYAMLValues(err error) string {
	return yamlValue.ReplaceAllString(err.Error(), "`<redacted>`")
}

// LoadWebConfig reads a web config file in the format of Prometheus's
// --web.config.file (github.com/prometheus/exporter-toolkit/web): it is
// validated by the toolkit (bcrypt hashes, allowed headers, TLS files),
// then parsed with the toolkit's own defaults (TLS 1.2 to 1.3, HTTP/2 on)
// and relative paths resolved against the file's directory.
func LoadWebConfig(path string) (*web.Config, error) {
	if err := web.Validate(path); err != nil {
		return nil, fmt.Errorf("%w: %s: %s", ErrAuthConfig, path, redactYAMLValues(err))
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrAuthConfig, err)
	}
	c := &web.Config{
		TLSConfig:  web.TLSConfig{MinVersion: tls.VersionTLS12, MaxVersion: tls.VersionTLS13},
		HTTPConfig: web.HTTPConfig{HTTP2: true},
	}
	if err := yaml.UnmarshalStrict(data, c); err != nil {
		return nil, fmt.Errorf("%w: %s: %s", ErrAuthConfig, path, redactYAMLValues(err))
	}
	c.TLSConfig.SetDirectory(filepath.Dir(path))
	return c, nil
}
