package autoscale

import (
	"fmt"
	"io"
	"math"
	"sort"
	"sync"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// The router's series the autoscaler reads (router/metrics.go).
const (
	waitSeries = "dyno_router_queue_wait_seconds"
	busySeries = "dyno_router_busy_dynos"
)

// MaxMetricsBytes bounds one router's /metrics answer.
const MaxMetricsBytes = 8 << 20

// sample is one scrape of one router: per app, its queue wait histogram and busy dynos.
type sample struct {
	at   time.Time
	apps map[string]appSample
}

type appSample struct {
	// bounds and counts are the histogram's buckets: counts[i] requests waited at most
	// bounds[i] (cumulative, +Inf last).
	bounds, counts []float64
	busy           float64
}

// Window keeps each router's recent scrapes and turns them into Observations: the
// queue wait of the requests dispatched within the window, summed over routers.
type Window struct {
	// Span is how far back an Observation looks.
	Span time.Duration

	mu      sync.Mutex
	history map[string][]sample // router -> its scrapes, oldest first
}

// NewWindow keeps span of scrapes.
func NewWindow(span time.Duration) *Window {
	return &Window{Span: span, history: map[string][]sample{}}
}

// Add records router's /metrics answer, read at at. A malformed answer is an error
// and is not kept.
func (w *Window) Add(router string, at time.Time, body io.Reader) error {
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(io.LimitReader(body, MaxMetricsBytes))
	if err != nil {
		return fmt.Errorf("router %s: malformed metrics: %w", router, err)
	}
	s := sample{at: at, apps: map[string]appSample{}}
	if f := fams[waitSeries]; f != nil {
		for _, m := range f.GetMetric() {
			h := m.GetHistogram()
			app := label(m, "app")
			if h == nil || app == "" {
				continue
			}
			a := s.apps[app]
			for _, b := range h.GetBucket() {
				a.bounds = append(a.bounds, b.GetUpperBound())
				a.counts = append(a.counts, float64(b.GetCumulativeCount()))
			}
			if n := len(a.bounds); n == 0 || !math.IsInf(a.bounds[n-1], 1) {
				a.bounds = append(a.bounds, math.Inf(1))
				a.counts = append(a.counts, float64(h.GetSampleCount()))
			}
			if !validHistogram(a.bounds, a.counts) {
				return fmt.Errorf("router %s: app %s: queue wait histogram is not cumulative", router, app)
			}
			s.apps[app] = a
		}
	}
	if f := fams[busySeries]; f != nil {
		for _, m := range f.GetMetric() {
			app, v := label(m, "app"), m.GetGauge().GetValue()
			if a, ok := s.apps[app]; ok && v >= 0 && !math.IsInf(v, 0) && !math.IsNaN(v) {
				a.busy = v
				s.apps[app] = a
			}
		}
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	h := append(w.history[router], s)
	for len(h) > 1 && at.Sub(h[1].at) >= w.Span {
		h = h[1:]
	}
	w.history[router] = h
	return nil
}

// Forget drops the scrapes of routers not in live.
func (w *Window) Forget(live []string) {
	keep := map[string]bool{}
	for _, r := range live {
		keep[r] = true
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	for r := range w.history {
		if !keep[r] {
			delete(w.history, r)
		}
	}
}

// Observe is what the routers measured of app's requests over the window ending at
// now. A router counts when it was scraped twice within the window, the last time
// within fresh of now.
func (w *Window) Observe(app string, now time.Time, fresh time.Duration) Observation {
	w.mu.Lock()
	defer w.mu.Unlock()
	var sum []float64
	var bounds []float64
	o := Observation{}
	for _, h := range w.history {
		if len(h) < 2 || now.Sub(h[len(h)-1].at) > fresh {
			continue
		}
		first, last := h[0].apps[app], h[len(h)-1].apps[app]
		if len(last.counts) == 0 {
			o.OK = true // the router saw no request of the app
			continue
		}
		if len(first.counts) == 0 {
			first = appSample{bounds: last.bounds, counts: make([]float64, len(last.counts))}
		}
		if !sameBounds(first.bounds, last.bounds) || first.counts[len(first.counts)-1] > last.counts[len(last.counts)-1] {
			continue // the router restarted or changed its buckets: no delta
		}
		if bounds == nil {
			bounds, sum = last.bounds, make([]float64, len(last.counts))
		} else if !sameBounds(bounds, last.bounds) {
			continue
		}
		for i := range sum {
			sum[i] += max(last.counts[i]-first.counts[i], 0)
		}
		o.OK = true
		for _, s := range h {
			o.Busy = max(o.Busy, s.apps[app].busy)
		}
	}
	if !o.OK {
		o.Missing = "no router scraped twice within the window"
		return o
	}
	if sum != nil {
		o.Requests = sum[len(sum)-1]
		o.P95 = quantile(0.95, bounds, sum)
	}
	return o
}

// quantile estimates the q-quantile of a cumulative histogram, interpolating linearly
// within the bucket that holds it (as Prometheus's histogram_quantile does). A quantile
// in the +Inf bucket is the largest finite bound.
func quantile(q float64, bounds, counts []float64) time.Duration {
	total := counts[len(counts)-1]
	if total <= 0 {
		return 0
	}
	rank := q * total
	i := sort.Search(len(counts), func(i int) bool { return counts[i] >= rank })
	if i >= len(bounds)-1 {
		if len(bounds) < 2 {
			return 0
		}
		return seconds(bounds[len(bounds)-2])
	}
	lo, below := 0.0, 0.0
	if i > 0 {
		lo, below = bounds[i-1], counts[i-1]
	}
	in := counts[i] - below
	if in <= 0 {
		return seconds(bounds[i])
	}
	return seconds(lo + (bounds[i]-lo)*(rank-below)/in)
}

func seconds(s float64) time.Duration { return time.Duration(s * float64(time.Second)) }

func validHistogram(bounds, counts []float64) bool {
	for i := range counts {
		if math.IsNaN(counts[i]) || counts[i] < 0 || math.IsNaN(bounds[i]) ||
			(i > 0 && (counts[i] < counts[i-1] || bounds[i] <= bounds[i-1])) {
			return false
		}
	}
	return len(bounds) > 1 && !math.IsInf(bounds[len(bounds)-2], 0) && bounds[0] >= 0
}

func sameBounds(a, b []float64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func label(m *dto.Metric, name string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}
