package drain

import "github.com/prometheus/client_golang/prometheus"

var (
	sentDesc = prometheus.NewDesc("dynogrid_logdrain_sent_lines_total",
		"Lines sent to a drain.", []string{"app", "drain"}, nil)
	droppedDesc = prometheus.NewDesc("dynogrid_logdrain_dropped_lines_total",
		"Lines dropped because the drain was down or slow and its buffer full.", []string{"app", "drain"}, nil)
	bufferedDesc = prometheus.NewDesc("dynogrid_logdrain_buffered_lines",
		"Lines waiting to be sent to a drain.", []string{"app", "drain"}, nil)
)

// Collector reports the shipper's counts per app and drain (by its token, not its URL,
// which may hold a password).
type Collector struct{ Shipper *Shipper }

// Describe implements prometheus.Collector.
func (c Collector) Describe(ch chan<- *prometheus.Desc) {
	ch <- sentDesc
	ch <- droppedDesc
	ch <- bufferedDesc
}

// Collect implements prometheus.Collector.
func (c Collector) Collect(ch chan<- prometheus.Metric) {
	for app, senders := range c.Shipper.Senders() {
		for _, s := range senders {
			st := s.Status()
			ch <- prometheus.MustNewConstMetric(sentDesc, prometheus.CounterValue, float64(st.Sent), app, s.Drain.Token)
			ch <- prometheus.MustNewConstMetric(droppedDesc, prometheus.CounterValue, float64(st.Dropped), app, s.Drain.Token)
			ch <- prometheus.MustNewConstMetric(bufferedDesc, prometheus.GaugeValue, float64(st.Buffered), app, s.Drain.Token)
		}
	}
}
