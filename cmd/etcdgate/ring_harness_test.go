package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/golang/snappy"
	"github.com/prometheus/prometheus/prompb"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/etcdgate/etcdgate/internal/etcdtest"
	"github.com/etcdgate/etcdgate/internal/testnet"
	"github.com/etcdgate/etcdgate/ring"
)

// ringHarness runs real `etcdgate serve` processes that form a ring over
// an embedded etcd.
type ringHarness struct {
	t      *testing.T
	etcd   *etcdtest.Cluster
	prefix string
	nodes  map[string]*ringProc
	// extra is YAML appended under `ring:` of every node's config; top is
	// YAML before the ring block.
	extra, top string
	// webConfig, when set, is passed as --web.config.file and the nodes
	// serve https; client then reaches them.
	webConfig string
	client    *http.Client
	// ttl is ring.heartbeat_ttl (default 5s).
	ttl string
}

// ringProc is one node: its process and what a restart reuses.
type ringProc struct {
	name, dir, url, cfg string
	port                int
	p                   *process
}

func newRingHarness(t *testing.T, extra string) *ringHarness {
	return &ringHarness{t: t, etcd: etcdtest.Start(t, etcdtest.Options{}), prefix: "/etcdgate-test/ring/",
		nodes: map[string]*ringProc{}, extra: extra}
}

// config writes a node's config file and returns its path.
func (h *ringHarness) config(n *ringProc, rf int) string {
	h.t.Helper()
	var ring strings.Builder
	ring.WriteString(h.top)
	ttl := h.ttl
	if ttl == "" {
		ttl = "5s"
	}
	fmt.Fprintf(&ring, "ring:\n  enabled: true\n  node_name: %s\n  advertise_url: %s\n  replication_factor: %d\n  heartbeat_ttl: %s\n",
		n.name, n.url, rf, ttl)
	fmt.Fprintf(&ring, "  etcd:\n    endpoints: [%s]\n    prefix: %s\n", strings.Join(h.etcd.Endpoints(), ", "), h.prefix)
	ring.WriteString(h.extra)
	path := filepath.Join(n.dir, "..", n.name+".yml")
	if err := os.WriteFile(path, []byte(ring.String()), 0o644); err != nil {
		h.t.Fatal(err)
	}
	return path
}

// start starts a new node, waiting until it is ready.
func (h *ringHarness) start(name string, rf int) *ringProc {
	h.t.Helper()
	port := testnet.FreePort(h.t)
	scheme := "http"
	if h.webConfig != "" {
		scheme = "https"
	}
	n := &ringProc{name: name, dir: filepath.Join(h.t.TempDir(), "data"), port: port, url: fmt.Sprintf("%s://127.0.0.1:%d", scheme, port)}
	n.cfg = h.config(n, rf)
	h.nodes[name] = n
	h.run(n)
	return n
}

// run starts n's process on its port and data dir and waits until ready.
func (h *ringHarness) run(n *ringProc) {
	h.t.Helper()
	args := []string{"serve", "--config", n.cfg, "--listen-address", fmt.Sprintf("127.0.0.1:%d", n.port), "--data-dir", n.dir}
	client := http.DefaultClient
	if h.webConfig != "" {
		args = append(args, "--web.config.file", h.webConfig)
		client = h.client
	}
	n.p = startProcess(h.t, gatewayBinary, args...)
	waitFor(h.t, 30*time.Second, n.name+" ready", func() bool {
		resp, err := client.Get(n.url + "/-/ready")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
}

// kill sends SIGKILL and waits for the exit.
func (n *ringProc) kill() {
	n.p.cmd.Process.Kill()
	<-n.p.done
}

// killInRing kills n and keeps its membership record in etcd under a
// fresh 2-minute lease: a node that has died and whose lease has not yet
// run out, however long the checks that follow take. The record's own
// lease would drop it after the TTL, and a slow machine would then test
// a ring without it.
func (h *ringHarness) killInRing(n *ringProc) {
	h.t.Helper()
	c := h.etcd.Client(h.t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	key := h.prefix + ringNodesPrefix + n.name
	resp, err := c.Get(ctx, key)
	if err != nil || len(resp.Kvs) != 1 {
		h.t.Fatalf("membership record %s: %v (%d found)", key, err, len(resp.Kvs))
	}
	n.kill()
	lease, err := c.Grant(ctx, 120)
	if err == nil {
		_, err = c.Put(ctx, key, string(resp.Kvs[0].Value), clientv3.WithLease(lease.ID))
	}
	if err != nil {
		h.t.Fatalf("keep %s in the ring: %v", n.name, err)
	}
}

// ringStatus is the part of /api/v1/status/ring the tests read.
type ringStatus struct {
	Self  string `json:"self"`
	Nodes []struct {
		Name       string  `json:"name"`
		State      string  `json:"state"`
		OwnedShare float64 `json:"owned_share"`
		HeadSeries *int64  `json:"head_series"`
		Error      string  `json:"error"`
	} `json:"nodes"`
}

func getRingStatus(t *testing.T, base string) (ringStatus, error) {
	t.Helper()
	code, body := httpGet(base + "/api/v1/status/ring")
	if code != http.StatusOK {
		return ringStatus{}, fmt.Errorf("status %d: %s", code, body)
	}
	var r struct {
		Data ringStatus `json:"data"`
	}
	if err := json.Unmarshal([]byte(body), &r); err != nil {
		return ringStatus{}, fmt.Errorf("%v: %s", err, body)
	}
	return r.Data, nil
}

// waitActive waits until the node at base sees exactly names as ACTIVE.
func waitActive(t *testing.T, base string, timeout time.Duration, names ...string) {
	t.Helper()
	want := strings.Join(names, ",")
	var got string
	waitFor(t, timeout, "ring view "+want+" from "+base, func() bool {
		st, err := getRingStatus(t, base)
		if err != nil {
			got = err.Error()
			return false
		}
		var active []string
		for _, n := range st.Nodes {
			if n.State == "ACTIVE" {
				active = append(active, n.Name)
			}
		}
		got = strings.Join(active, ",")
		return got == want
	})
}

// seriesBody is a remote-write body of series name{w=writer, s=0..n-1},
// one sample each at ts with value v.
func seriesBody(name string, writer, n int, ts int64, v float64, extra ...prompb.Label) []byte {
	wr := prompb.WriteRequest{Timeseries: make([]prompb.TimeSeries, n)}
	for s := range n {
		ls := []prompb.Label{{Name: "__name__", Value: name}, {Name: "s", Value: strconv.Itoa(s)}, {Name: "w", Value: strconv.Itoa(writer)}}
		wr.Timeseries[s] = prompb.TimeSeries{Labels: append(ls, extra...), Samples: []prompb.Sample{{Value: v, Timestamp: ts}}}
	}
	raw, err := wr.Marshal()
	if err != nil {
		panic(err)
	}
	return snappy.Encode(nil, raw)
}

var ringClient = &http.Client{Timeout: 20 * time.Second}

// ringWrite sends a remote-write body and returns the status and the
// answer's text.
func ringWrite(base string, body []byte) (int, string) {
	req, _ := http.NewRequest(http.MethodPost, base+"/api/v1/write", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/x-protobuf")
	req.Header.Set("Content-Encoding", "snappy")
	resp, err := ringClient.Do(req)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	return resp.StatusCode, string(b)
}

// rawSamples returns, for every series named name in the node's OWN
// store (read through the internal select endpoint: queries fan out
// over the ring), the timestamps of its samples in the last 30 minutes,
// keyed by the series' s and w labels.
func rawSamples(t *testing.T, base, name string, at time.Time) map[string][]int64 {
	t.Helper()
	form := url.Values{"mode": {ring.SelectSeries}, "match[]": {fmt.Sprintf("{__name__=%q}", name)}, "limit": {"1000000"},
		"start": {strconv.FormatInt(at.Add(-30*time.Minute).UnixMilli(), 10)}, "end": {strconv.FormatInt(at.Add(time.Minute).UnixMilli(), 10)}}
	resp, err := ringClient.PostForm(base+ring.SelectPath, form)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("select %s on %s: %d %s", name, base, resp.StatusCode, b)
	}
	d := ring.NewSelectDecoder(resp.Body, ring.SelectLimits{MaxFrameBytes: 16 << 20, MaxBytes: 1 << 30, MaxSeries: 1 << 20})
	out := map[string][]int64{}
	var f ring.Frame
	for {
		err := d.Next(&f)
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatalf("select %s on %s: %v", name, base, err)
		}
		key := f.Labels.Get("w") + "/" + f.Labels.Get("s")
		for _, s := range f.Samples {
			out[key] = append(out[key], s.T)
		}
	}
}
