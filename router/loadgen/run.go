package loadgen

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// ServiceHeader carries a request's service time (microseconds) to the backend.
const ServiceHeader = "X-Service-Us"

// IndexHeader carries a request's index in its trace.
const IndexHeader = "X-Trace-Index"

// DueHeader carries the time a request was scheduled to be sent (Unix nanoseconds), by
// which a backend tells a request that waited for it from one that came to it idle.
const DueHeader = "X-Trace-Due"

// Target is where a run sends its requests.
type Target struct {
	Name string
	URL  string // "http://127.0.0.1:8080/"
	// URLs, when set, replaces URL: several routers in front of the same backends,
	// request i goes to URLs[i%len(URLs)], and a request whose router refuses the
	// connection goes to the next one, as a load balancer in front of them would send it.
	URLs []string
	Host string // Host header ("" keeps the URL's)
	// Queue, when set, replaces URL: requests go straight to the backends, through a
	// single queue in the load generator (see ClientQueue).
	Queue *ClientQueue
}

// ClientQueue is the peer with no proxy at all: the load generator itself keeps one FIFO
// queue and sends each request over a direct kept-alive connection to an idle backend,
// handing a backend over the moment its response is read. It is as close to the ideal
// single queue as the machine itself allows (its scheduling and wake-up delays included),
// which tells a proxy's cost from the machine's.
type ClientQueue struct{ free chan string }

// NewClientQueue queues for the backends at addrs (host:port).
func NewClientQueue(addrs []string) *ClientQueue {
	q := &ClientQueue{free: make(chan string, len(addrs))}
	for _, a := range addrs {
		q.free <- a
	}
	return q
}

// take waits for an idle backend. Receivers blocked on a channel are served in the order
// they came, and a freed backend goes to a blocked receiver before the buffer, so the
// queue is FIFO.
func (q *ClientQueue) take(ctx context.Context) (string, error) {
	select {
	case a := <-q.free:
		return a, nil
	case <-ctx.Done():
		return "", ctx.Err()
	}
}

func (q *ClientQueue) give(addr string) { q.free <- addr }

// Client returns an HTTP client fit for open-loop runs: many kept-alive connections.
func Client() *http.Client {
	return &http.Client{Timeout: 60 * time.Second, Transport: &http.Transport{
		MaxIdleConns: 4096, MaxIdleConnsPerHost: 4096, IdleConnTimeout: 90 * time.Second,
		DisableCompression: true,
	}}
}

// Run replays t against target open-loop: request i is sent at start+t[i].At whether or
// not earlier ones finished, and its latency is measured from that scheduled time. It
// returns the latencies of the requests answered 200, and how many were not.
func Run(ctx context.Context, c *http.Client, target Target, t Trace) ([]time.Duration, int, error) {
	lat := make([]time.Duration, len(t))
	ok := make([]bool, len(t))
	var wg sync.WaitGroup
	var errMu sync.Mutex
	var firstErr error
	var pace sleeper
	start := time.Now().Add(20 * time.Millisecond)
	for i := range t {
		if ctx.Err() != nil {
			wg.Wait()
			return nil, 0, ctx.Err()
		}
		due := start.Add(t[i].At)
		pace.until(due)
		wg.Add(1)
		go func(i int, due time.Time) {
			defer wg.Done()
			url := target.URL
			if n := len(target.URLs); n > 0 {
				url = target.URLs[i%n]
			}
			if q := target.Queue; q != nil {
				addr, err := q.take(ctx)
				if err != nil {
					return
				}
				defer q.give(addr)
				url = "http://" + addr + "/"
			}
			resp, err := send(ctx, c, target, url, i, t[i].Service, due)
			for try := 1; err != nil && refused(err) && try < len(target.URLs); try++ {
				resp, err = send(ctx, c, target, target.URLs[(i+try)%len(target.URLs)], i, t[i].Service, due)
			}
			if err != nil {
				errMu.Lock()
				if firstErr == nil {
					firstErr = err
				}
				errMu.Unlock()
				return
			}
			_, rerr := io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			lat[i] = time.Since(due)
			ok[i] = resp.StatusCode == http.StatusOK && rerr == nil
			if !ok[i] {
				errMu.Lock()
				if firstErr == nil {
					firstErr = fmt.Errorf("status %d, body read: %v", resp.StatusCode, rerr)
				}
				errMu.Unlock()
			}
		}(i, due)
	}
	wg.Wait()
	out := make([]time.Duration, 0, len(t))
	errs := 0
	for i := range t {
		if ok[i] {
			out = append(out, lat[i])
		} else {
			errs++
		}
	}
	return out, errs, firstErr
}

// send sends trace request i, of the given service time and due at due, to url.
func send(ctx context.Context, c *http.Client, target Target, url string, i int, service time.Duration, due time.Time) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	if target.Host != "" {
		req.Host = target.Host
	}
	req.Header.Set(ServiceHeader, strconv.FormatInt(service.Microseconds(), 10))
	req.Header.Set(IndexHeader, strconv.Itoa(i))
	req.Header.Set(DueHeader, strconv.FormatInt(due.UnixNano(), 10))
	return c.Do(req)
}

// refused says whether err is a refused connection: the target got nothing.
func refused(err error) bool {
	var oe *net.OpError
	return errors.As(err, &oe) && oe.Op == "dial"
}

// Warm sends n sequential requests with no service time, to open connections.
func Warm(c *http.Client, target Target, n int) error {
	_, err := Sequential(c, target, n)
	return err
}

// Sequential sends n requests with no service time one after the other (one client,
// like a browser tab or a script) and returns how long each took, from sending its
// request to reading its whole body.
func Sequential(c *http.Client, target Target, n int) ([]time.Duration, error) {
	lat := make([]time.Duration, 0, n)
	for i := 0; i < n; i++ {
		url := target.URL
		if m := len(target.URLs); m > 0 {
			url = target.URLs[i%m]
		}
		if q := target.Queue; q != nil {
			addr, _ := q.take(context.Background())
			q.give(addr)
			url = "http://" + addr + "/"
		}
		req, _ := http.NewRequest(http.MethodGet, url, nil)
		if target.Host != "" {
			req.Host = target.Host
		}
		start := time.Now()
		resp, err := c.Do(req)
		if err != nil {
			return lat, fmt.Errorf("request %d to %s failed: %w", i, target.Name, err)
		}
		_, err = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if err != nil {
			return lat, fmt.Errorf("request %d to %s failed reading its body: %w", i, target.Name, err)
		}
		lat = append(lat, time.Since(start))
	}
	return lat, nil
}
