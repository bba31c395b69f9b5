package autoscale

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Metrics are the autoscaler's Prometheus series, in a registry of their own.
type Metrics struct {
	Registry  *prometheus.Registry
	decisions *prometheus.CounterVec
	dynos     *prometheus.GaugeVec
	ceiling   *prometheus.GaugeVec
	wait      *prometheus.GaugeVec
	target    *prometheus.GaugeVec
	errors    *prometheus.CounterVec
	routers   prometheus.Gauge
}

// NewMetrics registers the autoscaler's series.
func NewMetrics() *Metrics {
	app := []string{"app"}
	m := &Metrics{
		Registry: prometheus.NewRegistry(),
		decisions: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "dyno_autoscaler_decisions_total",
			Help: "Decisions by app and kind (up, down, hold, capped)."}, []string{"app", "kind"}),
		dynos: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "dyno_autoscaler_dynos",
			Help: "Web dynos the last decision chose, per app."}, app),
		ceiling: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "dyno_autoscaler_ceiling_dynos",
			Help: "Most web dynos the app's max and cost cap allow, per app."}, app),
		wait: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "dyno_autoscaler_queue_wait_p95_seconds",
			Help: "p95 queue wait over the window at the last decision, per app."}, app),
		target: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "dyno_autoscaler_queue_wait_target_seconds",
			Help: "The policy's p95 queue wait target, per app."}, app),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "dyno_autoscaler_scale_errors_total",
			Help: "Scales Nomad refused, per app."}, app),
		routers: prometheus.NewGauge(prometheus.GaugeOpts{Name: "dyno_autoscaler_routers_scraped",
			Help: "Routers whose metrics were read at the last tick."}),
	}
	m.Registry.MustRegister(m.decisions, m.dynos, m.ceiling, m.wait, m.target, m.errors, m.routers,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

func (m *Metrics) record(p Policy, d Decision, o Observation, t Tuning, f Formation) {
	m.decisions.WithLabelValues(p.App, d.Kind).Inc()
	m.dynos.WithLabelValues(p.App).Set(float64(d.To))
	hi, _ := ceiling(p, t, f)
	m.ceiling.WithLabelValues(p.App).Set(float64(hi))
	m.target.WithLabelValues(p.App).Set(p.Target.Seconds())
	if o.OK {
		m.wait.WithLabelValues(p.App).Set(o.P95.Seconds())
	}
}

// forget drops the series of an app whose policy is gone.
func (m *Metrics) forget(app string) {
	for _, v := range []*prometheus.GaugeVec{m.dynos, m.ceiling, m.wait, m.target} {
		v.DeleteLabelValues(app)
	}
	m.errors.DeleteLabelValues(app)
	m.decisions.DeletePartialMatch(prometheus.Labels{"app": app})
}
