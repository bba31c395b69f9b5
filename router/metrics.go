package router

import (
	"encoding/json"
	"net"
	"net/http"
	"net/http/pprof"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// metrics are the router's Prometheus series, in a registry of its own (no globals).
// Per-app gauges (queue depth, busy and idle dynos) are read from the apps at scrape
// time, so the request path pays nothing for them.
type metrics struct {
	reg       *prometheus.Registry
	responses *prometheus.CounterVec
	wait      *prometheus.HistogramVec
	dispatch  prometheus.Histogram
	stale     prometheus.Gauge
	tlsFailed prometheus.Counter
	// The logs endpoint: requests refused because LogsMaxReaders were served, and
	// readers dropped because a write to them did not end in LogsWriteTimeout.
	logsRefused prometheus.Counter
	logsStalled prometheus.Counter
	// foreignInstances counts instances of an app's service that Nomad says are not
	// dynos of the app's own job (provenance.go).
	foreignInstances *prometheus.CounterVec
	// admittedByProbe counts instances routed because the router's own probe found them
	// answering before Consul had run their check (probe.go).
	admittedByProbe *prometheus.CounterVec
}

var (
	descDepth = prometheus.NewDesc("dyno_router_queue_depth", "Requests waiting for a dyno, per app.", []string{"app"}, nil)
	descBusy  = prometheus.NewDesc("dyno_router_busy_dynos", "Dynos holding a request, per app.", []string{"app"}, nil)
	descIdle  = prometheus.NewDesc("dyno_router_idle_dynos", "Dynos ready for a request, per app.", []string{"app"}, nil)
	descUp    = prometheus.NewDesc("dyno_router_dynos_up", "Routable dynos (passing and not marked down), per app.", []string{"app"}, nil)
)

func newMetrics(r *Router) *metrics {
	m := &metrics{reg: prometheus.NewRegistry()}
	m.responses = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "dyno_router_responses_total",
		Help: "Responses by app, router code (empty for a dyno's own answer) and HTTP status.",
	}, []string{"app", "code", "status"})
	m.wait = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "dyno_router_queue_wait_seconds",
		Help:    "Time requests waited in their app's queue for an idle dyno.",
		Buckets: []float64{.0001, .0005, .001, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
	}, []string{"app"})
	m.dispatch = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "dyno_router_dispatch_seconds",
		Help:    "Time from a request's arrival to its dispatch to a dyno (queue wait included).",
		Buckets: []float64{.00001, .00005, .0001, .0005, .001, .005, .01, .05, .1, .5, 1, 5, 30},
	})
	m.stale = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "dyno_router_consul_stale",
		Help: "1 while the routing table could not be refreshed from Consul.",
	})
	m.tlsFailed = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "dyno_router_tls_handshake_failures_total",
		Help: "TLS handshakes that failed: old versions or ciphers, no certificate for the server name, clients gone or too slow.",
	})
	m.logsRefused = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "dyno_router_logs_refused_total",
		Help: "Requests to the logs endpoint answered 503 because it served its most readers at once.",
	})
	m.logsStalled = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "dyno_router_logs_stalled_total",
		Help: "Readers of the logs endpoint dropped because they did not read an answer in time.",
	})
	m.foreignInstances = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "dyno_router_foreign_instances_total",
		Help: "Instances of an app's web service that are not dynos of the app's own job in its namespace, as Nomad says: never routed.",
	}, []string{"app"})
	m.admittedByProbe = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "dyno_router_instances_admitted_by_probe_total",
		Help: "Instances of an app's web service routed because the router's probe found them answering before Consul had run their health check.",
	}, []string{"app"})
	readers := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "dyno_router_logs_readers",
		Help: "Requests the logs endpoint serves now (waiting for a line or being answered).",
	}, func() float64 { return float64(r.logReaders.Load()) })
	m.reg.MustRegister(m.responses, m.wait, m.dispatch, m.stale, m.tlsFailed, m.logsRefused, m.logsStalled, m.foreignInstances, m.admittedByProbe, readers, appCollector{r},
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

func (m *metrics) tlsHandshakeFailed() { m.tlsFailed.Inc() }

func (m *metrics) dispatched(a *app, sinceArrival, waited time.Duration) {
	m.dispatch.Observe(sinceArrival.Seconds())
	o := a.waitObs.Load()
	if o == nil {
		h := m.wait.WithLabelValues(a.name)
		o = &h
		a.waitObs.Store(o)
	}
	(*o).Observe(waited.Seconds())
}

// responseKey names one series of dyno_router_responses_total within an app.
type responseKey struct {
	code   *Code
	status int
}

func (m *metrics) response(rec *record) {
	if rec.app == nil {
		code := ""
		if rec.code != nil {
			code = rec.code.Name
		}
		m.responses.WithLabelValues("", code, strconv.Itoa(rec.status)).Inc()
		return
	}
	k := responseKey{rec.code, rec.status}
	if c, ok := rec.app.responses.Load(k); ok {
		c.(prometheus.Counter).Inc()
		return
	}
	code := ""
	if rec.code != nil {
		code = rec.code.Name
	}
	c := m.responses.WithLabelValues(rec.app.name, code, strconv.Itoa(rec.status))
	rec.app.responses.Store(k, c)
	c.Inc()
}

func (m *metrics) setStale(stale bool) {
	if stale {
		m.stale.Set(1)
	} else {
		m.stale.Set(0)
	}
}

// appCollector reports per-app gauges straight from the apps' state.
type appCollector struct{ r *Router }

func (c appCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descDepth
	ch <- descBusy
	ch <- descIdle
	ch <- descUp
}

func (c appCollector) Collect(ch chan<- prometheus.Metric) {
	for _, a := range c.r.appList() {
		_, up, idle, busy, waiting := a.stats()
		ch <- prometheus.MustNewConstMetric(descDepth, prometheus.GaugeValue, float64(waiting), a.name)
		ch <- prometheus.MustNewConstMetric(descBusy, prometheus.GaugeValue, float64(busy), a.name)
		ch <- prometheus.MustNewConstMetric(descIdle, prometheus.GaugeValue, float64(idle), a.name)
		ch <- prometheus.MustNewConstMetric(descUp, prometheus.GaugeValue, float64(up), a.name)
	}
}

func (r *Router) appList() []*app {
	r.mu.Lock()
	defer r.mu.Unlock()
	list := make([]*app, 0, len(r.apps))
	for _, a := range r.apps {
		list = append(list, a)
	}
	return list
}

// AppStatus is one app in the /status document.
type AppStatus struct {
	Dynos   int `json:"dynos"`
	Up      int `json:"up"`
	Idle    int `json:"idle"`
	Busy    int `json:"busy"`
	Waiting int `json:"waiting"`
	// UpDynos are the service IDs of the dynos up, sorted.
	UpDynos []string `json:"up_dynos"`
}

// Status is the /status document of the metrics listener.
type Status struct {
	Stale      bool                 `json:"stale"`
	StaleSince int64                `json:"stale_since,omitempty"` // Unix seconds
	Apps       map[string]AppStatus `json:"apps"`
}

// Status reports the router's state.
func (r *Router) Status() Status {
	s := Status{Stale: r.stale.Load(), StaleSince: r.staleSince.Load(), Apps: map[string]AppStatus{}}
	for _, a := range r.appList() {
		d, up, idle, busy, waiting := a.stats()
		s.Apps[a.name] = AppStatus{Dynos: d, Up: up, Idle: idle, Busy: busy, Waiting: waiting, UpDynos: a.upIDs()}
	}
	return s
}

// metricsHandler serves /metrics, /status and Go's /debug/pprof/ profiles, these to
// loopback clients only: the metrics address may be the host's own (the autoscaler
// reads it from other hosts), and a profile or trace costs the router CPU.
func (r *Router) metricsHandler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(r.metrics.reg, promhttp.HandlerOpts{}))
	mux.Handle("/debug/pprof/", loopbackOnly(pprof.Index))
	mux.Handle("/debug/pprof/profile", loopbackOnly(pprof.Profile))
	mux.Handle("/debug/pprof/trace", loopbackOnly(pprof.Trace))
	mux.HandleFunc("/status", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		st := r.Status()
		if st.Stale {
			w.Header().Set(StaleHeader, "true")
			w.WriteHeader(http.StatusServiceUnavailable)
		}
		_ = json.NewEncoder(w).Encode(st)
	})
	return mux
}

// loopbackOnly serves h to clients on the loopback, and 403 to others.
func loopbackOnly(h http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		host, _, err := net.SplitHostPort(req.RemoteAddr)
		if ip := net.ParseIP(host); err != nil || ip == nil || !ip.IsLoopback() {
			http.Error(w, "profiles are served to loopback clients only", http.StatusForbidden)
			return
		}
		h(w, req)
	})
}
