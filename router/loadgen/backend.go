package loadgen

import (
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// Backend is a single-request server, like a one-process dyno: it works on one request
// at a time for the request's service time; others wait in line for it. It speaks just
// enough HTTP/1.1 for a proxy in front of it (see serveConn), with a goroutine per
// connection and no more: a hand-off, from one response going out to the next request
// starting, costs it one wake-up, so that what the benchmarks measure is the proxy's.
type Backend struct {
	Addr     string
	ln       net.Listener
	conns    sync.Map // net.Conn → struct{}: open connections, closed by StopBackends
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
	d                        []atomic.Int64
	handOffSum, handOffCount atomic.Int64
}

func (m *Measured) handOff(d time.Duration) {
	m.handOffSum.Add(int64(d))
	m.handOffCount.Add(1)
}

// handOffMargin is how long before a response went out the next request must have been
// due for the gap between them to count as a hand-off: long enough for the request to
// have reached the proxy by then whatever held it up in the client (a connection to
// dial, a late wake-up), so that the gap is the proxy's and the backend's alone.
const handOffMargin = time.Millisecond

// HandOff is the mean time backends sat idle between sending a response and starting
// on their next request, over the hand-offs only: the times the next request was due
// (see DueHeader) well before the response went out (handOffMargin), so that it waited
// at the proxy for this backend. It is the dead time a proxy adds to each request when
// requests wait for backends, which at high load matters more than any other overhead
// (0.5 ms per 10 ms request turns a 0.9 load into 0.945). Idle time with no request
// around is not in it.
func (m *Measured) HandOff() time.Duration {
	if n := m.handOffCount.Load(); n > 0 {
		return time.Duration(m.handOffSum.Load() / n)
	}
	return 0
}

// HandOffs is how many hand-offs HandOff averages.
func (m *Measured) HandOffs() int64 { return m.handOffCount.Load() }

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
	m.handOffSum.Store(0)
	m.handOffCount.Store(0)
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
		b := &Backend{Addr: ln.Addr().String(), ln: ln}
		go b.accept()
		bs = append(bs, b)
	}
	return bs, nil
}

// StopBackends closes them and their connections.
func StopBackends(bs []*Backend) {
	for _, b := range bs {
		b.ln.Close()
		b.conns.Range(func(c, _ any) bool {
			c.(net.Conn).Close()
			return true
		})
	}
}

func (b *Backend) accept() {
	for {
		c, err := b.ln.Accept()
		if err != nil {
			return // closed by StopBackends
		}
		b.conns.Store(c, struct{}{})
		go func() {
			defer b.conns.Delete(c)
			defer c.Close()
			b.serveConn(c)
		}()
	}
}

// serve works on one request, whose head is h, and writes its response with w. It holds
// the backend for the request's service time and until the response has gone out.
func (b *Backend) serve(h head, w func([]byte) error) error {
	if b.inflight.Add(1) > 1 {
		b.Overlaps.Add(1)
	}
	defer b.inflight.Add(-1)
	b.mu.Lock()
	defer b.mu.Unlock()
	start := time.Now()
	m := b.Served
	if m != nil && !b.lastEnd.IsZero() && h.due > 0 && h.due < b.lastEnd.Add(-handOffMargin).UnixNano() {
		m.handOff(start.Sub(b.lastEnd))
	}
	if h.serviceUs > 0 {
		b.sleeper.until(start.Add(time.Duration(h.serviceUs) * time.Microsecond))
	}
	// What is measured is stored before the response goes out, so a run that has read
	// every response sees all of it.
	if m != nil && h.index >= 0 && h.index < len(m.d) {
		m.d[h.index].Store(int64(time.Since(start)))
	}
	err := w(okResponse)
	b.lastEnd = time.Now()
	return err
}
