package notifier

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/prometheus/model/labels"
)

// recorder is an Alertmanager stand-in that answers with the status codes
// it is given in turn (then 200) and records the alerts posted.
type recorder struct {
	mu     sync.Mutex
	codes  []int
	posts  atomic.Int32
	alerts []postableAlert
	got    chan struct{}
}

func (r *recorder) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	r.posts.Add(1)
	if req.URL.Path != "/prefix/api/v2/alerts" || req.Header.Get("Content-Type") != "application/json" {
		http.Error(w, "wrong path or type "+req.URL.Path, http.StatusNotFound)
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.codes) > 0 {
		code := r.codes[0]
		r.codes = r.codes[1:]
		w.WriteHeader(code)
		r.got <- struct{}{}
		return
	}
	body, _ := io.ReadAll(req.Body)
	var batch []postableAlert
	if err := json.Unmarshal(body, &batch); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	r.alerts = append(r.alerts, batch...)
	r.got <- struct{}{}
}

func newRecorder(t *testing.T, codes ...int) (*recorder, string) {
	r := &recorder{codes: codes, got: make(chan struct{}, 100)}
	srv := httptest.NewServer(r)
	t.Cleanup(srv.Close)
	return r, srv.URL + "/prefix/"
}

func testManager(t *testing.T, reg prometheus.Registerer, ams ...string) *Manager {
	opts := DefaultOptions()
	opts.Alertmanagers, opts.Registerer = ams, reg
	opts.RetryBackoff, opts.MaxBatchSize = time.Millisecond, 2
	opts.ExternalLabels = labels.FromStrings("region", "eu", "cluster", "external")
	m, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func alertNamed(name string) *Alert {
	return &Alert{Labels: labels.FromStrings("alertname", name, "cluster", "c1"), StartsAt: time.Unix(100, 0)}
}

func waitPosts(t *testing.T, r *recorder, n int) {
	t.Helper()
	for range n {
		select {
		case <-r.got:
		case <-time.After(10 * time.Second):
			t.Fatalf("only %d posts", r.posts.Load())
		}
	}
}

func TestBatchesAndExternalLabels(t *testing.T) {
	r, url := newRecorder(t)
	m := testManager(t, nil, url)
	m.Send(alertNamed("A"), alertNamed("B"), alertNamed("C"))
	go m.Run()
	defer m.Stop()
	waitPosts(t, r, 2) // batches of at most 2
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.alerts) != 3 {
		t.Fatalf("got %d alerts", len(r.alerts))
	}
	a := r.alerts[0]
	if a.Labels["region"] != "eu" || a.Labels["cluster"] != "c1" || a.StartsAt.Unix() != 100 || !a.EndsAt.IsZero() {
		t.Fatalf("alert sent as %+v: external labels must not override the alert's", a)
	}
}

func TestRetriesServerErrorsNotClientErrors(t *testing.T) {
	reg := prometheus.NewRegistry()
	r, url := newRecorder(t, 503, 500)
	m := testManager(t, reg, url)
	go m.Run()
	defer m.Stop()
	m.Send(alertNamed("A"))
	waitPosts(t, r, 3)
	r.mu.Lock()
	n := len(r.alerts)
	r.mu.Unlock()
	if n != 1 {
		t.Fatalf("delivered %d alerts after two 5xx", n)
	}
	if v := testutil.ToFloat64(m.metrics.retries.WithLabelValues(url)); v != 2 {
		t.Fatalf("retries = %v", v)
	}

	r.mu.Lock()
	r.codes = []int{400}
	r.mu.Unlock()
	m.Send(alertNamed("B"))
	waitPosts(t, r, 1)
	time.Sleep(50 * time.Millisecond) // a retry would post again within the backoff
	if p := r.posts.Load(); p != 4 {
		t.Fatalf("400 retried: %d posts", p)
	}
	deadline := time.Now().Add(5 * time.Second)
	for testutil.ToFloat64(m.metrics.dropped) != 1 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if v := testutil.ToFloat64(m.metrics.errors.WithLabelValues(url)); v != 1 {
		t.Fatalf("errors = %v", v)
	}
}

func TestQueueDropsOldest(t *testing.T) {
	opts := DefaultOptions()
	opts.QueueCapacity = 2
	m, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	m.Send(alertNamed("A"), alertNamed("B"), alertNamed("C"))
	batch, _, _ := m.nextBatch()
	if len(batch) != 2 || batch[0].Labels.Get("alertname") != "B" || testutil.ToFloat64(m.metrics.dropped) != 1 {
		t.Fatalf("queue kept %v", batch)
	}
}

func TestValidate(t *testing.T) {
	f := func(mod func(*Options), want string) {
		t.Helper()
		o := DefaultOptions()
		mod(&o)
		if err := o.Validate(); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("got %v, want %q", err, want)
		}
	}
	f(func(o *Options) { o.Alertmanagers = []string{"am:9093"} }, `alertmanager "am:9093": want an http(s) URL`)
	f(func(o *Options) { o.Alertmanagers = []string{"ftp://x"} }, "want an http(s) URL")
	f(func(o *Options) { o.QueueCapacity = 0 }, "must be positive")
	f(func(o *Options) { o.MaxRetries = -1 }, "not negative")
	if err := DefaultOptions().Validate(); err != nil {
		t.Fatal(err)
	}
}
