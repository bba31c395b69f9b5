package autoscale

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	nomadapi "github.com/hashicorp/nomad/api"

	"github.com/dynogrid/dynogrid/internal/deploy"
)

// Config is an autoscaler's.
type Config struct {
	Nomad   *nomadapi.Client
	Routers Routers
	Tuning  Tuning
	// Interval is how often the routers are scraped and the policies decided.
	Interval time.Duration
	// Window is how far back the queue wait is measured.
	Window time.Duration
	Log    hclog.Logger
	// Now is the clock; time.Now when nil.
	Now func() time.Time
}

// Autoscaler follows the autoscale policies in Nomad and scales their process types.
type Autoscaler struct {
	cfg      Config
	window   *Window
	http     *http.Client
	policies policyCache
	states   map[string]*tracked
	Metrics  *Metrics
}

// tracked is one policy's state and its last decision, to log changes once.
type tracked struct {
	State
	last Decision
}

// New makes an autoscaler.
func New(cfg Config) *Autoscaler {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Log == nil {
		cfg.Log = hclog.NewNullLogger()
	}
	return &Autoscaler{cfg: cfg, window: NewWindow(cfg.Window), policies: policyCache{},
		states: map[string]*tracked{}, Metrics: NewMetrics(),
		http: &http.Client{Timeout: min(cfg.Interval, 5*time.Second)}}
}

// Run scrapes and decides every Interval until ctx ends.
func (a *Autoscaler) Run(ctx context.Context) {
	t := time.NewTicker(a.cfg.Interval)
	defer t.Stop()
	for {
		a.Tick(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Tick scrapes the routers once and decides every policy once.
func (a *Autoscaler) Tick(ctx context.Context) {
	a.scrape(ctx)
	ps, skipped, err := a.policies.policies(ctx, a.cfg.Nomad)
	if err != nil {
		a.cfg.Log.Error("cannot read the autoscale policies", "error", err)
		return
	}
	for app, err := range skipped {
		a.cfg.Log.Warn("ignoring an invalid autoscale policy", "app", app, "error", err)
	}
	live := map[string]bool{}
	for _, p := range ps {
		live[p.App] = true
		a.decide(ctx, p)
	}
	for app := range a.states {
		if !live[app] {
			delete(a.states, app)
			a.Metrics.forget(app)
		}
	}
}

// scrape reads every router's metrics into the window, concurrently.
func (a *Autoscaler) scrape(ctx context.Context) {
	routers, err := a.cfg.Routers(ctx)
	if err != nil {
		a.cfg.Log.Warn("cannot find the routers", "error", err)
		return
	}
	a.window.Forget(routers)
	var wg sync.WaitGroup
	var mu sync.Mutex
	ok := 0
	for _, r := range routers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := a.scrapeOne(ctx, r); err != nil {
				a.cfg.Log.Warn("cannot read a router's metrics", "router", r, "error", err)
				return
			}
			mu.Lock()
			ok++
			mu.Unlock()
		}()
	}
	wg.Wait()
	a.Metrics.routers.Set(float64(ok))
}

func (a *Autoscaler) scrapeOne(ctx context.Context, r string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+r+"/metrics", nil)
	if err != nil {
		return err
	}
	resp, err := a.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET /metrics: %s", resp.Status)
	}
	return a.window.Add(r, a.cfg.Now(), resp.Body)
}

// decide reads the app's formation, decides, and scales or records the decision.
func (a *Autoscaler) decide(ctx context.Context, p Policy) {
	log := a.cfg.Log.With("app", p.App, "process", p.Group)
	st, _, err := a.cfg.Nomad.Jobs().ScaleStatus(p.App, (&nomadapi.QueryOptions{Namespace: p.App}).WithContext(ctx))
	if err != nil {
		log.Error("cannot read the app's formation", "error", err)
		return
	}
	if st.JobStopped {
		return
	}
	// The app's one-off dynos count towards its cost cap: its jobs, with their meta
	// and the counts of their allocations (not their definitions).
	jobs, _, err := a.cfg.Nomad.Jobs().ListOptions(&nomadapi.JobListOptions{Fields: &nomadapi.JobListFields{Meta: true}},
		(&nomadapi.QueryOptions{Namespace: p.App}).WithContext(ctx))
	if err != nil {
		log.Error("cannot list the app's one-off dynos", "error", err)
		return
	}
	f := formationOf(p.App, p.Group, st, jobs)
	tr := a.states[p.App]
	if tr == nil {
		tr = &tracked{}
		a.states[p.App] = tr
	}
	now := a.cfg.Now()
	o := a.window.Observe(p.App, now, 3*a.cfg.Interval)
	before := tr.State
	d := tr.Decide(now, p, a.cfg.Tuning, f, o)
	a.Metrics.record(p, d, o, a.cfg.Tuning, f)
	changed := d.Kind != tr.last.Kind || d.From != tr.last.From || d.To != tr.last.To
	tr.last = d
	args := []any{"decision", d.Kind, "from", d.From, "to", d.To, "reason", d.Reason,
		"p95_queue_wait", o.P95, "requests", o.Requests, "other_dynos", f.Others, "one_off_dynos", f.OneOffs}
	switch {
	case d.To != d.From:
		log.Info("scaling", args...)
		if !a.post(ctx, log, p, d, &d.To) {
			// Not scaled (a deployment of the app runs, say): no cooldown starts.
			tr.State = before
		}
	case changed:
		log.Info("holding", args...)
		if d.Kind == Capped || !o.OK {
			a.post(ctx, log, p, d, nil)
		}
	default:
		log.Debug("holding", args...)
	}
}

// post writes the decision to Nomad's job scale API: with a count, a scale; without,
// an event in the group's scaling history (`dyno autoscale` shows both). It says
// whether Nomad took it.
func (a *Autoscaler) post(ctx context.Context, log hclog.Logger, p Policy, d Decision, count *int) bool {
	meta := map[string]any{"Source": deploy.AutoscalerSource, "Decision": d.Kind}
	_, _, err := a.cfg.Nomad.Jobs().Scale(p.App, p.Group, count, d.Reason, false, meta,
		(&nomadapi.WriteOptions{Namespace: p.App}).WithContext(ctx))
	if err != nil {
		a.Metrics.errors.WithLabelValues(p.App).Inc()
		log.Error("Nomad refused the scale", "to", d.To, "error", err)
		return false
	}
	return true
}
