package loadgen

import (
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Backend is a single-request server, like a one-process dyno: it works on one request
// at a time for the request's service time; others wait in line for it.
type Backend struct {
	Addr     string
	srv      *http.Server
	mu       sync.Mutex
	sleeper  sleeper
	lastEnd  time.Time // when the last response went out (under mu)
	inflight atomic.Int32
	Overlaps atomic.Int32 // times a request arrived while another was being served
	// Served records how long each trace request really took on the backend, by its
	// index, when set (see Measured).
	Served *Measured
}

// Measured holds the service times backends really spent, by trace index: sleeping
// overshoots, and more on a loaded machine, so an ideal computed from them separates
// the router's queueing from the environment's slowness.
type Measured struct {
	d              []atomic.Int64
	gapSum, gapCnt atomic.Int64
}

// turnaroundBound tells a backend's short idle gaps, when the proxy had the next request
// waiting for it, from idle time with no request around (at 0.9 and above, most gaps
// under it are the first kind).
const turnaroundBound = 3 * time.Millisecond

func (m *Measured) gap(d time.Duration) {
	if d >= 0 && d < turnaroundBound {
		m.gapSum.Add(int64(d))
		m.gapCnt.Add(1)
	}
}

// Turnaround is the mean time backends sat idle between sending a response and starting
// on their next request, over gaps shorter than 3 ms: the dead time a proxy adds to each
// request when requests wait for backends, which at high load matters more than any
// other overhead (0.5 ms per 10 ms request turns a 0.9 load into 0.95).
func (m *Measured) Turnaround() time.Duration {
	if n := m.gapCnt.Load(); n > 0 {
		return time.Duration(m.gapSum.Load() / n)
	}
	return 0
}

// NewMeasured has room for n requests.
func NewMeasured(n int) *Measured { return &Measured{d: make([]atomic.Int64, n)} }

// Apply returns t with the measured service times (the trace's where none was seen).
func (m *Measured) Apply(t Trace) Trace {
	out := make(Trace, len(t))
	for i, r := range t {
		out[i] = r
		if i < len(m.d) {
			if d := m.d[i].Load(); d > 0 {
				out[i].Service = time.Duration(d)
			}
		}
	}
	return out
}

// Reset forgets what was measured.
func (m *Measured) Reset() {
	for i := range m.d {
		m.d[i].Store(0)
	}
	m.gapSum.Store(0)
	m.gapCnt.Store(0)
}

// StartBackends starts n backends on loopback.
func StartBackends(n int) ([]*Backend, error) {
	var bs []*Backend
	for i := 0; i < n; i++ {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			StopBackends(bs)
			return nil, err
		}
		b := &Backend{Addr: ln.Addr().String()}
		b.srv = &http.Server{Handler: b, ReadHeaderTimeout: 10 * time.Second}
		go func() { _ = b.srv.Serve(ln) }() // returns ErrServerClosed on StopBackends
		bs = append(bs, b)
	}
	return bs, nil
}

// StopBackends closes them.
func StopBackends(bs []*Backend) {
	for _, b := range bs {
		b.srv.Close()
	}
}

func (b *Backend) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if b.inflight.Add(1) > 1 {
		b.Overlaps.Add(1)
	}
	defer b.inflight.Add(-1)
	b.mu.Lock()
	defer b.mu.Unlock()
	start := time.Now()
	if us, err := strconv.ParseInt(r.Header.Get(ServiceHeader), 10, 64); err == nil && us > 0 {
		b.sleeper.until(start.Add(time.Duration(us) * time.Microsecond))
	}
	if m := b.Served; m != nil {
		if i, err := strconv.Atoi(r.Header.Get(IndexHeader)); err == nil && i >= 0 && i < len(m.d) {
			m.d[i].Store(int64(time.Since(start)))
		}
	}
	w.Header().Set("Content-Length", "2")
	_, _ = w.Write([]byte("ok")) // a client that hung up is the load generator's to count
	w.(http.Flusher).Flush()
	if m := b.Served; m != nil && !b.lastEnd.IsZero() {
		m.gap(start.Sub(b.lastEnd))
	}
	b.lastEnd = time.Now()
}
