package main

import (
	"cmp"
	"context"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"maps"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/prompb"

	"github.com/etcdgate/etcdgate/internal/etcdfleet"
	"github.com/etcdgate/etcdgate/internal/etcdtest"
	"github.com/etcdgate/etcdgate/internal/testbin"
)

// TestPagesInBrowser loads every built-in page in Debian's headless
// Chromium from a real `etcdgate serve` holding 30 minutes of a
// three-cluster fleet (remote write from internal/etcdfleet, a registry
// with product, scenario, size, region and Kubernetes clusters, a rule
// file with an alert that fires, the default SLOs, a real etcd probed
// for one of the clusters), and checks the DOM
// after the page's scripts ran: the names and figures the page must show
// and, on the pages with charts, uPlot's canvases. It saves a screenshot
// of each page into $ETCDGATE_TEST_ARTIFACTS (else a temporary
// directory, named in the log). With ETCDGATE_UPDATE_VIEWS=1 it writes
// the README's screenshots, docs/views/*.png, at 1024×700.
func TestPagesInBrowser(t *testing.T) {
	chromium := testbin.Chromium(t)
	dir := t.TempDir()
	write := func(name, s string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	// The series carry the registry's labels, as a scraper's relabeling
	// would stamp them (etcdfleet's own product is control-plane).
	fleet := etcdfleet.New(etcdfleet.Options{Clusters: 3, Members: 3, ClusterLabels: func(c int) []string {
		return [][]string{{"product", "payments", "scenario", "business", "size", "large"}, {"product", "payments", "scenario", "business", "size", "default"},
			{"product", "search", "scenario", "platform", "size", "small"}}[c]
	}})
	write("clusters.yml", `clusters:
  - {cluster: etcd-eu-west-1-0, product: payments, scenario: business, size: large, region: eu-west-1, kubernetes_clusters: [k8s-shop-eu, k8s-pay-eu]}
  - {cluster: etcd-us-east-1-1, product: payments, scenario: business, size: default, region: us-east-1, kubernetes_clusters: [k8s-shop-us]}
  - {cluster: etcd-ap-south-1-2, product: search, scenario: platform, size: small, region: ap-south-1, kubernetes_clusters: [k8s-search-ap]}
`)
	write("alerts.yml", `groups:
  - name: etcd-pages
    interval: 1s
    rules:
      - alert: EtcdPagesTestLeader
        expr: etcd_server_is_leader{cluster="etcd-eu-west-1-0"} == 1
        labels: {severity: warning}
        annotations: {summary: "{{ $labels.instance }} leads its cluster"}
      - record: cluster:etcd_db_size:max
        expr: max by (cluster) (etcd_mvcc_db_total_size_in_bytes)
`)
	slos, err := filepath.Abs("../../deploy/rules/slos.yml")
	if err != nil {
		t.Fatal(err)
	}
	// A real etcd stands for cluster etcd-eu-west-1-0 to the prober, so
	// that its page and /inspections show inspection findings.
	etcd := etcdtest.Start(t, etcdtest.Options{Members: 1})
	cfg := write("etcdgate.yml", fmt.Sprintf(`registry: {file: clusters.yml}
evaluation_interval: 1s
rule_files: [alerts.yml]
slo_files: [%s]
probe:
  targets:
    - cluster: etcd-eu-west-1-0
      endpoints: [%s]
      inspections: [health, consistency]
  inspections:
    health: {interval: 1s, timeout: 5s}
    consistency: {interval: 1s, timeout: 5s}
`, slos, strings.Join(etcd.Endpoints(), ", ")))
	_, base := startGateway(t, "--config", cfg)

	last := time.Now().Truncate(15 * time.Second)
	for i := range 120 {
		ts := last.Add(-time.Duration(119-i) * 15 * time.Second).UnixMilli()
		var series []prompb.TimeSeries
		for _, s := range fleet.Scrape(ts) {
			pts := prompb.TimeSeries{Samples: []prompb.Sample{{Value: gaugeOf(s), Timestamp: s.T}}}
			s.Labels.Range(func(l labels.Label) { pts.Labels = append(pts.Labels, prompb.Label{Name: l.Name, Value: l.Value}) })
			series = append(series, pts)
		}
		remoteWrite(t, base, series)
	}
	waitFor(t, 30*time.Second, "the alert firing and the cluster info", func() bool {
		_, a := httpGet(base + "/api/v1/query?" + url.Values{"query": {`ALERTS{alertstate="firing", alertname="EtcdPagesTestLeader"}`}}.Encode())
		_, i := httpGet(base + "/api/v1/query?" + url.Values{"query": {`etcdgate_cluster_info{kubernetes_cluster="k8s-pay-eu"}`}}.Encode())
		return countResults(a) == 1 && countResults(i) == 1
	})
	waitFor(t, 30*time.Second, "both inspections recorded", func() bool {
		_, h := httpGet(base + "/api/v1/inspections?cluster=etcd-eu-west-1-0&inspection=health&limit=1")
		_, c := httpGet(base + "/api/v1/inspections?cluster=etcd-eu-west-1-0&inspection=consistency&limit=1")
		return strings.Contains(h, `"status":"success"`) && strings.Contains(c, `"status":"success"`)
	})

	shots := os.Getenv("ETCDGATE_TEST_ARTIFACTS")
	if shots == "" {
		shots = t.TempDir()
	}
	shots = filepath.Join(shots, "views")
	if err := os.MkdirAll(shots, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshots of the pages in %s", shots)
	var readme string
	if os.Getenv("ETCDGATE_UPDATE_VIEWS") != "" {
		readme = "../../docs/views"
		if err := os.MkdirAll(readme, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, pg := range []struct {
		name, path string
		want       []string
		canvases   int // at least this many charts drawn
	}{
		{"fleet", "/", []string{"etcd clusters", `id="clusters">3<`, `href="/scenario/business"`, `href="/scenario/platform"`, "samples collected (1h)", "9 targets",
			`<td><a href="/cluster/etcd-eu-west-1-0">etcd-eu-west-1-0</a></td><td>eu-west-1</td><td>business</td><td>large</td>`}, 2},
		{"scenario", "/scenario/business", []string{"eu-west-1", "us-east-1", "etcd-eu-west-1-0", "etcd-us-east-1-1", "payments"}, 2},
		{"cluster", "/cluster/etcd-eu-west-1-0", []string{"k8s-shop-eu", "k8s-pay-eu", "10.0.0.10:2379", "EtcdPagesTestLeader", "leads its cluster",
			`id="leaders">1<`, "scenario <a href=\"/scenario/business\">business</a>", "<td>health</td>", "<td>consistency</td>"}, 3},
		{"alerts", "/alerts", []string{" firing</span>", "EtcdPagesTestLeader", "10.0.0.10:2379 leads its cluster", `href="/cluster/etcd-eu-west-1-0"`}, 0},
		{"rules", "/rules", []string{"etcd-pages", "cluster:etcd_db_size:max", "EtcdPagesTestLeader"}, 0},
		{"inspections", "/inspections", []string{`href="/cluster/etcd-eu-west-1-0"`, "<td>health</td>", "<td>consistency</td>", `class="ok">success`}, 0},
		{"inspections-failed", "/inspections?status=failed", []string{"no inspection recorded"}, 0},
		{"targets", "/targets", []string{"9 targets", "10.0.0.10:2379", "etcd-ap-south-1-2", "15s"}, 0},
		{"targets-below", "/targets?below=0.5", []string{"no target below 0.5"}, 0},
		{"ring", "/ring", []string{"not in a ring"}, 0},
		{"cluster-missing", "/cluster/etcd-nowhere", []string{"404", "no etcd cluster"}, 0},
		{"cluster-bad", "/cluster/bad%20name", []string{"400", "invalid cluster name"}, 0},
	} {
		t.Run(pg.name, func(t *testing.T) {
			dom := runChromium(t, chromium, "--dump-dom", base+pg.path)
			if err := os.WriteFile(filepath.Join(shots, pg.name+".html"), []byte(dom), 0o644); err != nil {
				t.Fatal(err)
			}
			for _, w := range pg.want {
				if !strings.Contains(dom, w) {
					t.Errorf("%s: no %q in the DOM:\n%s", pg.path, w, dom)
				}
			}
			if n := strings.Count(dom, `class="uplot`); n < pg.canvases || strings.Count(dom, "<canvas") < pg.canvases {
				t.Errorf("%s: %d charts drawn, want at least %d:\n%s", pg.path, n, pg.canvases, dom)
			}
			if strings.Contains(dom, `id="warnings"`) && pg.canvases > 0 {
				t.Logf("%s: warnings in the page", pg.path)
			}
			runChromium(t, chromium, "--screenshot="+filepath.Join(shots, pg.name+".png"), "--window-size=1280,900", base+pg.path)
			if readme != "" && !strings.Contains(pg.name, "-") {
				out, err := filepath.Abs(filepath.Join(readme, pg.name+".png"))
				if err != nil {
					t.Fatal(err)
				}
				runChromium(t, chromium, "--screenshot="+out, "--window-size=1024,700", base+pg.path)
				if err := shrinkPNG(out); err != nil {
					t.Fatal(err)
				}
			}
		})
	}
}

// gaugeOf gives the gauges etcdfleet fills with random values those of
// a healthy cluster: every member has a leader, the first one (.10) is
// it, quotas are 8 GiB and db sizes up to 1 GB.
func gaugeOf(s etcdfleet.Sample) float64 {
	switch s.Labels.Get("__name__") {
	case "etcd_server_has_leader":
		return 1
	case "etcd_server_is_leader":
		if strings.HasSuffix(s.Labels.Get("instance"), ".10:2379") {
			return 1
		}
		return 0
	case "etcd_server_quota_backend_bytes":
		return 8 << 30
	case "etcd_mvcc_db_total_size_in_bytes", "etcd_mvcc_db_total_size_in_use_in_bytes":
		return s.V * 1000
	}
	return s.V
}

// shrinkPNG rewrites the PNG at path with a palette of its 128 most
// frequent colors, each other color mapped to the nearest of them: the
// pages are flat colors and anti-aliased text, so the README's
// screenshots stay a few tens of KiB each.
func shrinkPNG(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	img, err := png.Decode(f)
	f.Close()
	if err != nil {
		return err
	}
	b := img.Bounds()
	count := map[color.RGBA]int{}
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			count[color.RGBAModel.Convert(img.At(x, y)).(color.RGBA)]++
		}
	}
	colors := slices.Collect(maps.Keys(count))
	slices.SortFunc(colors, func(x, y color.RGBA) int {
		return cmp.Or(count[y]-count[x], cmp.Compare(uint32(x.R)<<16|uint32(x.G)<<8|uint32(x.B), uint32(y.R)<<16|uint32(y.G)<<8|uint32(y.B)))
	})
	pal := make(color.Palette, 0, 128)
	for _, c := range colors[:min(len(colors), 128)] {
		pal = append(pal, c)
	}
	out := image.NewPaletted(b, pal)
	nearest := map[color.RGBA]uint8{}
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			c := color.RGBAModel.Convert(img.At(x, y)).(color.RGBA)
			i, ok := nearest[c]
			if !ok {
				i = uint8(pal.Index(c))
				nearest[c] = i
			}
			out.SetColorIndex(x, y, i)
		}
	}
	w, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := (&png.Encoder{CompressionLevel: png.BestCompression}).Encode(w, out); err != nil {
		w.Close()
		return err
	}
	return w.Close()
}

// runChromium runs one headless Chromium with a fresh profile, bounded
// by a timeout, and returns its standard output.
func runChromium(t *testing.T, chromium string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	all := append([]string{"--headless", "--disable-gpu", "--no-sandbox", "--hide-scrollbars", "--user-data-dir=" + t.TempDir()}, args...)
	cmd := exec.CommandContext(ctx, chromium, all...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("chromium %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return string(out)
}
