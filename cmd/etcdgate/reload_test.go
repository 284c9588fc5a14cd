package main

import (
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/golang/snappy"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/prompb"

	"golang.org/x/crypto/bcrypt"

	"github.com/etcdgate/etcdgate/api"
	"github.com/etcdgate/etcdgate/evaluator/rules"
)

// reloadFixture is a gateway started in-process on a config directory,
// its store open and its rules running.
type reloadFixture struct {
	dir string
	g   *gateway
}

func (f *reloadFixture) write(t *testing.T, name, s string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(f.dir, name), []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
}

// ruleGroups renders n groups of one recording rule each, named by
// prefix, for a rule file.
func ruleGroups(prefix string, n int) string {
	var b strings.Builder
	b.WriteString("groups:\n")
	for i := range n {
		fmt.Fprintf(&b, "  - name: %s%d\n    rules:\n      - record: %s:up:sum%d\n        expr: sum(up)\n", prefix, i, prefix, i)
	}
	return b.String()
}

// startReloadFixture starts a gateway on config and files; a file named
// web.yml among them is its --web.config.file.
func startReloadFixture(t *testing.T, config string, files map[string]string) *reloadFixture {
	t.Helper()
	f := &reloadFixture{dir: t.TempDir()}
	for name, s := range files {
		f.write(t, name, s)
	}
	f.write(t, "etcdgate.yml", "data_dir: "+f.dir+"\n"+config)
	flags := serveFlags{configFile: filepath.Join(f.dir, "etcdgate.yml")}
	if _, ok := files["web.yml"]; ok {
		flags.webConfigFile = filepath.Join(f.dir, "web.yml")
	}
	cfg, err := flags.load()
	if err != nil {
		t.Fatal(err)
	}
	f.g, err = newGateway(cfg, flags, slog.New(slog.DiscardHandler), new(slog.LevelVar))
	if err != nil {
		t.Fatal(err)
	}
	if err := f.g.openStore(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		f.g.rules.stop()
		if err := f.g.db.Close(); err != nil {
			t.Error(err)
		}
	})
	return f
}

// runtimeState is what a reload may change, as the running parts see it.
type runtimeState struct {
	groups  []*rules.Group
	product string // from the registry
	job     string // "" once relabel_configs drop it
	maxLbls int
	query   *rules.QueryFunc
	level   slog.Level
	cfg     string
	auth    *api.AuthPolicy
}

func (f *reloadFixture) state() runtimeState {
	out, _, _ := f.g.relabel.Relabel(labels.FromStrings("__name__", "up", "cluster", "a", "job", "etcd"))
	f.g.mu.Lock()
	cfg := fmt.Sprintf("%+v %+v %+v %v", f.g.cfg.Limits, f.g.cfg.Query, f.g.cfg.Registry, f.g.cfg.RuleFiles)
	f.g.mu.Unlock()
	return runtimeState{groups: f.g.rules.Groups(), product: out.Get("product"), job: out.Get("job"),
		maxLbls: f.g.ingest.Limits().MaxLabelsPerSeries, query: f.g.rules.query.Load(), level: f.g.level.Level(), cfg: cfg, auth: f.g.auth.policy.Load()}
}

func sameState(a, b runtimeState) bool {
	if len(a.groups) != len(b.groups) {
		return false
	}
	for i := range a.groups {
		if a.groups[i] != b.groups[i] {
			return false
		}
	}
	return a.product == b.product && a.job == b.job && a.maxLbls == b.maxLbls && a.query == b.query &&
		a.level == b.level && a.cfg == b.cfg && a.auth == b.auth
}

// TestFailedReloadChangesNothing reloads configs that change every
// reloadable part (rules, relabel_configs, registry, limits, query
// engine, log level, web config) and are broken in one part only, that
// part checked last or first: nothing at all changes, and the reload
// counts as failed. Then the same changes without the fault apply, all
// of them.
func TestFailedReloadChangesNothing(t *testing.T) {
	const start = "registry: {file: clusters.yml}\nrule_files: [a.yml]\nlimits: {max_labels_per_series: 10}\n"
	const changes = "relabel_configs: [{regex: job, action: labeldrop}]\nlimits: {max_labels_per_series: 3}\n" +
		"query: {timeout: 7s}\nlog_level: debug\n"
	for _, tc := range []struct {
		name   string
		config string            // the reloaded config, beside changes
		files  map[string]string // written before the reload
		want   string            // in the reload's error
	}{
		{
			// The rules are valid files, but the globs overlap: the rule
			// manager finds the same group twice, after the relabel part
			// and the limits were built.
			name:   "rules invalid",
			config: "registry: {file: clusters.yml}\nrule_files: [b.yml, 'b*.yml']\n",
			files:  map[string]string{"b.yml": ruleGroups("b", 2), "clusters.yml": "clusters: [{cluster: a, product: two}]\n"},
			want:   "defined twice",
		},
		{
			// The rules are valid and changed; the registry file in force
			// (registry.file changes only on restart) is broken.
			name:   "relabel invalid",
			config: "registry: {file: other.yml}\nrule_files: [b.yml]\n",
			files: map[string]string{"b.yml": ruleGroups("b", 2), "other.yml": "clusters: [{cluster: a, product: two}]\n",
				"clusters.yml": "clusters: [{cluster: a, product: two}, {cluster: a}]\n"},
			want: "duplicate cluster",
		},
		{
			// Rules, relabeling and limits valid and changed; the web
			// config file, re-read on reload, is broken.
			name:   "web config invalid",
			config: "registry: {file: clusters.yml}\nrule_files: [b.yml]\n",
			files: map[string]string{"b.yml": ruleGroups("b", 2), "clusters.yml": "clusters: [{cluster: a, product: two}]\n",
				"web.yml": "basic_auth_users: ["},
			want: "web.yml",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			hash, err := bcrypt.GenerateFromPassword([]byte("pw"), bcrypt.MinCost)
			if err != nil {
				t.Fatal(err)
			}
			web := "basic_auth_users: {alice: '" + string(hash) + "'}\n"
			f := startReloadFixture(t, start, map[string]string{"a.yml": ruleGroups("a", 3),
				"clusters.yml": "clusters: [{cluster: a, product: one}]\n", "web.yml": web})
			before := f.state()
			if len(before.groups) != 3 || before.product != "one" || before.job != "etcd" || before.maxLbls != 10 {
				t.Fatalf("start: %+v", before)
			}
			for name, s := range tc.files {
				f.write(t, name, s)
			}
			f.write(t, "etcdgate.yml", "data_dir: "+f.dir+"\n"+tc.config+changes)
			if err := f.g.reload(); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("reload error %v, want %q", err, tc.want)
			}
			if after := f.state(); !sameState(before, after) {
				t.Fatalf("a failed reload changed the runtime:\nbefore %+v\nafter  %+v", before, after)
			}
			if v := testutil.ToFloat64(f.g.reloads.success); v != 0 {
				t.Fatalf("etcdgate_config_last_reload_successful = %v", v)
			}

			// The same changes, without the fault.
			f.write(t, "clusters.yml", "clusters: [{cluster: a, product: two}]\n")
			f.write(t, "web.yml", web+"# edited\n")
			f.write(t, "etcdgate.yml", "data_dir: "+f.dir+"\nregistry: {file: clusters.yml}\nrule_files: [b.yml]\n"+changes)
			if err := f.g.reload(); err != nil {
				t.Fatal(err)
			}
			after := f.state()
			if len(after.groups) != 2 || after.product != "two" || after.job != "" || after.maxLbls != 3 ||
				after.query == before.query || after.level != slog.LevelDebug || after.auth == before.auth {
				t.Fatalf("a good reload did not apply every part: %+v", after)
			}
		})
	}
}

// TestReloadKeepsServing reloads 300 rule groups, every one of them
// changed each time, while writes and queries go on through the HTTP
// API: every write and query succeeds, and some complete while a reload
// is in progress.
func TestReloadKeepsServing(t *testing.T) {
	const groups = 300
	f := startReloadFixture(t, "rule_files: [rules.yml]\nevaluation_interval: 1s\n",
		map[string]string{"rules.yml": ruleGroups("a", groups)})
	srv := httptest.NewServer(f.g.api.Handler())
	defer srv.Close()

	var reloading atomic.Bool
	var duringWrites, duringQueries atomic.Int64
	stop := make(chan struct{})
	errs := make(chan error, 2)
	var wg sync.WaitGroup
	wg.Go(func() { errs <- keepWriting(srv.URL, stop, &reloading, &duringWrites) })
	wg.Go(func() { errs <- keepQuerying(srv.URL, stop, &reloading, &duringQueries) })

	reloads := 0
	for ; reloads < 100 && (reloads < 4 || duringWrites.Load() < 5 || duringQueries.Load() < 5); reloads++ {
		f.write(t, "rules.yml", ruleGroups(fmt.Sprintf("r%d_", reloads), groups))
		reloading.Store(true)
		err := f.g.reload()
		reloading.Store(false)
		if err != nil {
			t.Fatal(err)
		}
		if n := len(f.g.rules.Groups()); n != groups {
			t.Fatalf("%d groups after reload %d", n, reloads)
		}
	}
	close(stop)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("%d reloads of %d groups; %d writes and %d queries completed during them", reloads, groups,
		duringWrites.Load(), duringQueries.Load())
	if duringWrites.Load() < 5 || duringQueries.Load() < 5 {
		t.Fatalf("in %d reloads only %d writes and %d queries completed during one", reloads, duringWrites.Load(), duringQueries.Load())
	}
}

// keepWriting posts one sample after another until stop, counting those
// answered while reloading is set; any answer but 204 is an error.
func keepWriting(base string, stop <-chan struct{}, reloading *atomic.Bool, during *atomic.Int64) error {
	for i := 0; ; i++ {
		select {
		case <-stop:
			return nil
		default:
		}
		ts := prompb.TimeSeries{Labels: []prompb.Label{{Name: "__name__", Value: "up"}, {Name: "job", Value: "etcd"}},
			Samples: []prompb.Sample{{Value: 1, Timestamp: int64(1_700_000_000_000 + i)}}}
		raw, _ := (&prompb.WriteRequest{Timeseries: []prompb.TimeSeries{ts}}).Marshal()
		resp, err := http.Post(base+"/api/v1/write", "application/x-protobuf", strings.NewReader(string(snappy.Encode(nil, raw))))
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNoContent {
			return fmt.Errorf("write %d: status %d", i, resp.StatusCode)
		}
		if reloading.Load() {
			during.Add(1)
		}
	}
}

// keepQuerying is keepWriting for instant queries.
func keepQuerying(base string, stop <-chan struct{}, reloading *atomic.Bool, during *atomic.Int64) error {
	for i := 0; ; i++ {
		select {
		case <-stop:
			return nil
		default:
		}
		resp, err := http.Get(base + "/api/v1/query?query=" + url.QueryEscape("sum(up)"))
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("query %d: status %d", i, resp.StatusCode)
		}
		if reloading.Load() {
			during.Add(1)
		}
	}
}
