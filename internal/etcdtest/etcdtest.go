// Package etcdtest starts real etcd clusters in-process for tests, with
// go.etcd.io/etcd/server/v3/embed: several members on free loopback
// ports, optionally serving clients over TLS only, each member stoppable
// mid-test. Tests of any package may import it; production code must not
// (it links etcd's server).
package etcdtest

import (
	"fmt"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/zap"

	"github.com/etcdgate/etcdgate/internal/testnet"
)

// Options shape a cluster. The zero value is one plain-text member.
type Options struct {
	// Members is the cluster size (default 1).
	Members int
	// TLS, when set, makes members serve clients over TLS only and
	// require a client certificate signed by the CA.
	TLS *Certs
	// QuotaBackendBytes is each member's storage quota (0: etcd's default).
	QuotaBackendBytes int64
}

// Cluster is a running etcd cluster. Its members stop when the test ends.
type Cluster struct {
	Members []*Member
	certs   *Certs
}

// Member is one etcd server of a cluster.
type Member struct {
	Name      string
	ClientURL string
	Etcd      *embed.Etcd
	stop      sync.Once
}

// Stop closes the member. It is safe to call more than once (embed's
// Close panics on a second call).
func (m *Member) Stop() { m.stop.Do(m.Etcd.Close) }

// Start starts a cluster and waits until every member is ready. Members
// run with fast raft ticks and no fsync, so three are ready in about
// 0.1 s; their logs are silenced.
func Start(t testing.TB, opts Options) *Cluster {
	t.Helper()
	n := max(opts.Members, 1)
	scheme := "http"
	if opts.TLS != nil {
		scheme = "https"
	}
	// Peer URLs must be known before any member starts: each member's
	// initial cluster names all of them.
	cfgs := make([]*embed.Config, n)
	initial := make([]string, n)
	token := fmt.Sprintf("etcdtest-%d", time.Now().UnixNano())
	for i := range cfgs {
		cfg := embed.NewConfig()
		cfg.Name = fmt.Sprintf("m%d", i)
		cfg.Dir = t.TempDir()
		cfg.Logger = "zap"
		cfg.ZapLoggerBuilder = embed.NewZapLoggerBuilder(zap.NewNop())
		cfg.TickMs, cfg.ElectionMs = 10, 100
		cfg.UnsafeNoFsync = true
		cfg.QuotaBackendBytes = opts.QuotaBackendBytes
		peer, client := FreeURL(t, "http"), FreeURL(t, scheme)
		cfg.ListenPeerUrls, cfg.AdvertisePeerUrls = []url.URL{peer}, []url.URL{peer}
		cfg.ListenClientUrls, cfg.AdvertiseClientUrls = []url.URL{client}, []url.URL{client}
		cfg.InitialClusterToken = token
		if opts.TLS != nil {
			cfg.ClientTLSInfo.CertFile, cfg.ClientTLSInfo.KeyFile = opts.TLS.ServerCert, opts.TLS.ServerKey
			cfg.ClientTLSInfo.TrustedCAFile = opts.TLS.CA
			cfg.ClientTLSInfo.ClientCertAuth = true
		}
		initial[i] = cfg.Name + "=" + peer.String()
		cfgs[i] = cfg
	}
	c := &Cluster{certs: opts.TLS}
	for _, cfg := range cfgs {
		cfg.InitialCluster = strings.Join(initial, ",")
		e, err := embed.StartEtcd(cfg)
		if err != nil {
			t.Fatalf("start etcd member %s: %v", cfg.Name, err)
		}
		m := &Member{Name: cfg.Name, ClientURL: cfg.ListenClientUrls[0].String(), Etcd: e}
		c.Members = append(c.Members, m)
		t.Cleanup(m.Stop)
	}
	for _, m := range c.Members {
		select {
		case <-m.Etcd.Server.ReadyNotify():
		case <-time.After(30 * time.Second):
			t.Fatalf("etcd member %s not ready after 30s", m.Name)
		}
	}
	return c
}

// Endpoints returns the members' client URLs.
func (c *Cluster) Endpoints() []string {
	eps := make([]string, len(c.Members))
	for i, m := range c.Members {
		eps[i] = m.ClientURL
	}
	return eps
}

// WaitConverged waits until every running member has applied the same
// revision: after writes, before a test reads from each member's own
// store (serializable reads) and expects to see them all.
func (c *Cluster) WaitConverged(t testing.TB) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		revs := map[int64]bool{}
		for _, m := range c.Members {
			select {
			case <-m.Etcd.Server.StopNotify():
			default:
				revs[m.Etcd.Server.KV().Rev()] = true
			}
		}
		if len(revs) <= 1 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("members still at revisions %v after 10s", revs)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// Client returns a client of every member, closed when the test ends.
// For a TLS cluster it presents the client certificate.
func (c *Cluster) Client(t testing.TB) *clientv3.Client {
	t.Helper()
	cfg := clientv3.Config{Endpoints: c.Endpoints(), DialTimeout: 5 * time.Second, Logger: zap.NewNop()}
	if c.certs != nil {
		tc, err := c.certs.ClientTLS()
		if err != nil {
			t.Fatal(err)
		}
		cfg.TLS = tc
	}
	client, err := clientv3.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() })
	return client
}

// FreeURL returns a URL on a loopback port that was free a moment ago.
// Another process may take it before it is used; on a test machine that
// race is rare enough.
func FreeURL(t testing.TB, scheme string) url.URL {
	t.Helper()
	return url.URL{Scheme: scheme, Host: fmt.Sprintf("127.0.0.1:%d", testnet.FreePort(t))}
}
