package main

import (
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/prometheus/common/config"

	"github.com/etcdgate/etcdgate/ring"
)

// RingConfig is the `ring:` block: without enabled, the node runs alone.
// Every key changes only on restart.
type RingConfig struct {
	Enabled bool `yaml:"enabled"`
	// NodeName is unique in the ring (default: the hostname).
	NodeName string `yaml:"node_name"`
	// AdvertiseURL is how peers reach this node, e.g. http://10.0.0.5:9390.
	AdvertiseURL      string         `yaml:"advertise_url"`
	Zone              string         `yaml:"zone"`
	ReplicationFactor int            `yaml:"replication_factor"`
	Tokens            int            `yaml:"tokens"`
	HeartbeatTTL      Duration       `yaml:"heartbeat_ttl"`
	Etcd              RingEtcdConfig `yaml:"etcd"`
	HADedup           HADedupConfig  `yaml:"ha_dedup"`
	// Forward bounds what this node sends each peer.
	Forward RingForwardConfig `yaml:"forward"`
	// PushdownMinSeries is how many series an aggregation must read for
	// it to be evaluated on the nodes that hold them (pushed down) rather
	// than read through the fan-out; 0 pushes every one down.
	PushdownMinSeries int `yaml:"pushdown_min_series"`
	// PeerClient is how this node authenticates to its peers (Prometheus's
	// http_config: basic_auth, tls_config, bearer token): peers require
	// role write for pushes and read for stats when they have a web config.
	PeerClient config.HTTPClientConfig `yaml:"peer_client"`
}

// RingEtcdConfig is the etcd that holds the ring's membership.
type RingEtcdConfig struct {
	Endpoints []string       `yaml:"endpoints"`
	Prefix    string         `yaml:"prefix"`
	TLS       ProbeTLSConfig `yaml:"tls"`
	Username  string         `yaml:"username"`
	Password  config.Secret  `yaml:"password"`
}

// HADedupConfig turns on the dedup of HA scraper pairs.
type HADedupConfig struct {
	Enabled         bool     `yaml:"enabled"`
	ReplicaLabel    string   `yaml:"replica_label"`
	ClusterLabel    string   `yaml:"cluster_label"`
	FailoverTimeout Duration `yaml:"failover_timeout"`
}

// RingForwardConfig bounds the forwarding of writes to one peer.
type RingForwardConfig struct {
	Timeout             Duration `yaml:"timeout"`
	MaxInflightRequests int      `yaml:"max_inflight_requests"`
	MaxInflightBytes    int64    `yaml:"max_inflight_bytes"`
}

func defaultRingConfig() RingConfig {
	p := ring.DefaultPeerOptions()
	return RingConfig{
		ReplicationFactor: 3,
		Tokens:            512,
		HeartbeatTTL:      Duration(ring.DefaultMembershipOptions().TTL),
		Etcd:              RingEtcdConfig{Prefix: ring.DefaultMembershipOptions().Prefix},
		HADedup:           HADedupConfig{ReplicaLabel: "__replica__", ClusterLabel: "cluster", FailoverTimeout: Duration(30 * time.Second)},
		Forward: RingForwardConfig{Timeout: Duration(p.Timeout), MaxInflightRequests: p.MaxInflightRequests,
			MaxInflightBytes: p.MaxInflightBytes},
		PeerClient:        config.DefaultHTTPClientConfig,
		PushdownMinSeries: ring.DefaultFanoutOptions().PushdownMinSeries,
	}
}

// Validate reports the first invalid ring setting, naming its key. It
// checks nothing when the ring is off.
func (c RingConfig) Validate() error {
	if !c.Enabled {
		return nil
	}
	switch {
	case c.ReplicationFactor < 1:
		return fmt.Errorf("ring.replication_factor: %d, want at least 1", c.ReplicationFactor)
	case c.ReplicationFactor > 255:
		return fmt.Errorf("ring.replication_factor: %d, at most 255", c.ReplicationFactor)
	case c.Tokens < 1 || c.Tokens > 4096:
		return fmt.Errorf("ring.tokens: %d, want 1 to 4096", c.Tokens)
	case c.AdvertiseURL == "":
		return errors.New("ring.advertise_url: empty; peers need it to reach this node")
	case len(c.Etcd.Endpoints) == 0:
		return errors.New("ring.etcd.endpoints: empty; the ring keeps its membership in etcd")
	case c.Forward.Timeout <= 0 || c.Forward.MaxInflightRequests < 1 || c.Forward.MaxInflightBytes < 1:
		return errors.New("ring.forward: timeout, max_inflight_requests and max_inflight_bytes must be positive")
	case c.PushdownMinSeries < 0:
		return fmt.Errorf("ring.pushdown_min_series: %d, want 0 or more", c.PushdownMinSeries)
	}
	if c.HADedup.Enabled {
		if c.HADedup.ReplicaLabel == "" || c.HADedup.ClusterLabel == "" {
			return errors.New("ring.ha_dedup: replica_label and cluster_label must not be empty")
		}
	}
	if err := c.PeerClient.Validate(); err != nil {
		return fmt.Errorf("ring.peer_client: %w", err)
	}
	opts, err := c.membershipOptions(nil)
	if err != nil {
		return err
	}
	return opts.Validate()
}

// nodeName is ring.node_name, or the hostname when it is empty.
func (c RingConfig) nodeName() (string, error) {
	if c.NodeName != "" {
		return c.NodeName, nil
	}
	h, err := os.Hostname()
	if err != nil {
		return "", fmt.Errorf("ring.node_name: empty, and the hostname is unknown: %w", err)
	}
	return h, nil
}

// membershipOptions translates the config; tokens are the node's own
// (nil while validating).
func (c RingConfig) membershipOptions(tokens []uint32) (ring.MembershipOptions, error) {
	name, err := c.nodeName()
	if err != nil {
		return ring.MembershipOptions{}, err
	}
	opts := ring.DefaultMembershipOptions()
	opts.Node = ring.Node{Name: name, URL: c.AdvertiseURL, Zone: c.Zone, Tokens: tokens}
	opts.Prefix = c.Etcd.Prefix
	opts.TTL = time.Duration(c.HeartbeatTTL)
	return opts, nil
}
