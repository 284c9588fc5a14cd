package notifier

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/model/labels"
)

// Options configure a Manager.
type Options struct {
	// Alertmanagers are base URLs ("http://am:9093", with any path
	// prefix); alerts go to every one of them.
	Alertmanagers []string
	// ExternalLabels are added to every alert (an alert's own label of
	// the same name wins).
	ExternalLabels labels.Labels
	// QueueCapacity bounds the alerts waiting to be sent; past it the
	// oldest are dropped. MaxBatchSize bounds one request.
	QueueCapacity int
	MaxBatchSize  int
	// Timeout bounds one request; a failed request is retried up to
	// MaxRetries times, RetryBackoff apart (doubling).
	Timeout      time.Duration
	MaxRetries   int
	RetryBackoff time.Duration
	Client       *http.Client
	// Clients are per Alertmanager URL (TLS, basic auth, bearer token of
	// its alertmanagers entry); an Alertmanager not in it uses Client.
	// They are replaced by ApplyConfig.
	Clients    map[string]*http.Client
	Registerer prometheus.Registerer
	Logger     *slog.Logger
}

// DefaultOptions returns Prometheus's notifier defaults, plus retries.
func DefaultOptions() Options {
	return Options{QueueCapacity: 10000, MaxBatchSize: 256, Timeout: 10 * time.Second, MaxRetries: 3, RetryBackoff: 500 * time.Millisecond}
}

// Validate checks the bounds and the Alertmanager URLs.
func (o Options) Validate() error {
	if o.QueueCapacity <= 0 || o.MaxBatchSize <= 0 || o.Timeout <= 0 || o.MaxRetries < 0 || o.RetryBackoff < 0 {
		return errors.New("notifier: queue capacity, batch size and timeout must be positive, retries and backoff not negative")
	}
	for _, am := range o.Alertmanagers {
		u, err := url.Parse(am)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("notifier: alertmanager %q: want an http(s) URL such as http://alertmanager:9093", am)
		}
	}
	return nil
}

// Manager queues alerts and sends them in batches to every Alertmanager.
type Manager struct {
	metrics *metrics
	client  *http.Client
	logger  *slog.Logger
	more    chan struct{} // signalled when the queue gains alerts

	mu    sync.Mutex // guards opts and queue
	opts  Options
	queue []*Alert

	// Lifecycle: Run returns when stop is closed, then closes done.
	stop chan struct{}
	done chan struct{}
}

// New returns a manager; Run starts sending.
func New(opts Options) (*Manager, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	m := &Manager{opts: opts, client: opts.Client, more: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
	if m.client == nil {
		m.client = &http.Client{}
	}
	m.logger = opts.Logger
	if m.logger == nil {
		m.logger = slog.New(slog.DiscardHandler)
	}
	m.metrics = newMetrics(opts.Registerer, func() float64 { return float64(m.queueLen()) }, func() float64 {
		m.mu.Lock()
		defer m.mu.Unlock()
		return float64(len(m.opts.Alertmanagers))
	})
	m.metrics.queueCap.Set(float64(opts.QueueCapacity))
	return m, nil
}

// ApplyConfig swaps Alertmanagers, external labels and bounds (a reload);
// queued alerts stay queued.
func (m *Manager) ApplyConfig(opts Options) error {
	if err := opts.Validate(); err != nil {
		return err
	}
	m.mu.Lock()
	opts.Client, opts.Registerer, opts.Logger = m.opts.Client, m.opts.Registerer, m.opts.Logger
	old := m.opts.Clients
	m.opts = opts
	m.metrics.queueCap.Set(float64(opts.QueueCapacity))
	m.mu.Unlock()
	// The replaced clients' idle connections would linger until their
	// idle timeout; a send in flight keeps its busy ones.
	for _, c := range old {
		c.CloseIdleConnections()
	}
	return nil
}

func (m *Manager) queueLen() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.queue)
}

// Send queues alerts with the external labels added. When the queue is
// full the oldest alerts are dropped (and counted): newer state wins.
func (m *Manager) Send(alerts ...*Alert) {
	m.mu.Lock()
	for _, a := range alerts {
		m.queue = append(m.queue, m.withExternalLabelsLocked(a))
	}
	if over := len(m.queue) - m.opts.QueueCapacity; over > 0 {
		m.metrics.dropped.Add(float64(over))
		m.logger.Warn("alert queue full, dropping oldest alerts", "dropped", over)
		m.queue = append(m.queue[:0], m.queue[over:]...)
	}
	m.mu.Unlock()
	select {
	case m.more <- struct{}{}:
	default:
	}
}

func (m *Manager) withExternalLabelsLocked(a *Alert) *Alert {
	if m.opts.ExternalLabels.IsEmpty() {
		return a
	}
	c := *a
	lb := labels.NewBuilder(a.Labels)
	m.opts.ExternalLabels.Range(func(l labels.Label) {
		if a.Labels.Get(l.Name) == "" {
			lb.Set(l.Name, l.Value)
		}
	})
	c.Labels = lb.Labels()
	return &c
}

// nextBatch takes up to MaxBatchSize alerts off the queue, with the
// Alertmanagers to send them to.
func (m *Manager) nextBatch() ([]*Alert, []string, Options) {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := min(len(m.queue), m.opts.MaxBatchSize)
	batch := append([]*Alert(nil), m.queue[:n]...)
	m.queue = append(m.queue[:0], m.queue[n:]...)
	return batch, m.opts.Alertmanagers, m.opts
}

// Run sends queued alerts until Stop. Each batch goes to all
// Alertmanagers at once; the next batch waits for the slowest.
func (m *Manager) Run() {
	defer close(m.done)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-m.stop:
		case <-m.done:
		}
		cancel()
	}()
	for {
		select {
		case <-m.stop:
			return
		case <-m.more:
		}
		for {
			batch, ams, opts := m.nextBatch()
			if len(batch) == 0 {
				break
			}
			m.sendAll(ctx, batch, ams, opts)
			if ctx.Err() != nil {
				return
			}
		}
	}
}

// Stop ends Run; alerts still queued are not sent.
func (m *Manager) Stop() {
	select {
	case <-m.stop:
	default:
		close(m.stop)
	}
	<-m.done
}

func (m *Manager) sendAll(ctx context.Context, batch []*Alert, ams []string, opts Options) {
	if len(ams) == 0 {
		return
	}
	body, err := encodeBatch(batch)
	if err != nil {
		m.logger.Error("encode alerts", "err", err)
		m.metrics.dropped.Add(float64(len(batch)))
		return
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	delivered := false
	for _, am := range ams {
		wg.Go(func() {
			if err := m.sendOne(ctx, am, body, opts); err != nil {
				m.metrics.errors.WithLabelValues(am).Add(float64(len(batch)))
				m.logger.Error("sending alerts to Alertmanager failed", "alertmanager", am, "alerts", len(batch), "err", err)
				return
			}
			m.metrics.sent.WithLabelValues(am).Add(float64(len(batch)))
			mu.Lock()
			delivered = true
			mu.Unlock()
		})
	}
	wg.Wait()
	if !delivered {
		m.metrics.dropped.Add(float64(len(batch)))
	}
}

// sendOne posts body to one Alertmanager, retrying network errors and
// 5xx with a doubling backoff. 4xx is the batch's fault and not retried.
func (m *Manager) sendOne(ctx context.Context, am string, body []byte, opts Options) error {
	u := strings.TrimSuffix(am, "/") + "/api/v2/alerts"
	client := m.client
	if c := opts.Clients[am]; c != nil {
		client = c
	}
	backoff := opts.RetryBackoff
	var err error
	for attempt := 0; ; attempt++ {
		var retry bool
		retry, err = m.post(ctx, client, am, u, body, opts.Timeout)
		if err == nil || !retry || attempt >= opts.MaxRetries {
			return err
		}
		m.metrics.retries.WithLabelValues(am).Inc()
		select {
		case <-ctx.Done():
			return errors.Join(err, ctx.Err())
		case <-time.After(backoff):
		}
		backoff *= 2
	}
}

func (m *Manager) post(ctx context.Context, client *http.Client, am, u string, body []byte, timeout time.Duration) (retry bool, err error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, strings.NewReader(string(body)))
	if err != nil {
		return false, err
	}
	req.Header.Set("Content-Type", "application/json")
	start := time.Now()
	resp, err := client.Do(req)
	m.metrics.latency.WithLabelValues(am).Observe(time.Since(start).Seconds())
	if err != nil {
		return true, err
	}
	resp.Body.Close()
	if resp.StatusCode/100 == 2 {
		return false, nil
	}
	return resp.StatusCode/100 == 5 || resp.StatusCode == http.StatusTooManyRequests,
		fmt.Errorf("POST %s: %s", u, resp.Status)
}
