package multihost

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"regexp"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/dynogrid/dynogrid/router"
)

// RequestTimeout bounds one request of the load; the router answers H12 after 30 s.
const RequestTimeout = 60 * time.Second

// Result is what became of one request of the load.
type Result struct {
	ID     string
	Sent   time.Time
	Done   time.Time
	Status int    // 0 when no answer came (Err says why)
	Code   string // the router's error code (H13, ...) of a coded answer
	Dyno   string // the dyno that answered 200
	Err    error
	// Router is the router address the request was sent to.
	Router string
	// Path is the request's path when it is not the load's.
	Path string
	// Refused: no router listened (connection refused at connect): the request was
	// never accepted by a router.
	Refused bool
	// Stale: the router marked its answer X-Dyno-Router-Stale (its table may be old).
	Stale bool
}

// Load sends an open-loop stream of requests through the routers: one every interval,
// each in its own goroutine whatever the earlier ones do, each with its own X-Request-Id,
// to the routers in turn.
type Load struct {
	routers    []string
	host, path string
	client     *http.Client
	stop       chan struct{}
	done       chan struct{}
	mu         sync.Mutex
	results    []*Result
	wg         sync.WaitGroup
	answered   atomic.Int64
	stopOnce   sync.Once
}

// StartLoad starts sending GET path with Host host to the router at rate requests per
// second.
func StartLoad(routerAddr, host, path string, rate int) *Load {
	return StartLoadOn([]string{routerAddr}, host, path, rate)
}

// StartLoadOn starts sending GET path with Host host at rate requests per second,
// spread evenly over the routers (one after the other). The load has its own
// connections, kept alive.
func StartLoadOn(routers []string, host, path string, rate int) *Load {
	l := &Load{routers: routers, host: host, path: path, stop: make(chan struct{}), done: make(chan struct{}),
		client: &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}}
	run := fmt.Sprintf("%x", time.Now().UnixNano())
	go func() {
		defer close(l.done)
		tick := time.NewTicker(time.Second / time.Duration(rate))
		defer tick.Stop()
		for n := 1; ; n++ {
			select {
			case <-l.stop:
				return
			case <-tick.C:
			}
			l.launch(&Result{ID: fmt.Sprintf("multihost-%s-%08d", run, n), Sent: time.Now(), Router: l.routers[n%len(l.routers)]})
		}
	}()
	return l
}

// launch records r and sends it in its own goroutine.
func (l *Load) launch(r *Result) {
	l.mu.Lock()
	l.results = append(l.results, r)
	l.mu.Unlock()
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		l.send(r)
		l.answered.Add(1)
	}()
}

var (
	codeRe = regexp.MustCompile(`\bH\d\d\b`)
	dynoRe = regexp.MustCompile(`on (\S+)\n?$`)
)

func (l *Load) send(r *Result) {
	ctx, cancel := context.WithTimeout(context.Background(), RequestTimeout)
	defer cancel()
	path := l.path
	if r.Path != "" {
		path = r.Path
	}
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+r.Router+path, nil)
	req.Host = l.host
	req.Header.Set("X-Request-Id", r.ID)
	resp, err := l.client.Do(req)
	if err != nil {
		r.Err, r.Done = err, time.Now()
		r.Refused = refused(err)
		return
	}
	r.Stale = resp.Header.Get(router.StaleHeader) == "true"
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	r.Done, r.Status = time.Now(), resp.StatusCode
	if err != nil {
		// The router cut the response off (H18).
		r.Err, r.Code = err, "H18"
		return
	}
	if resp.StatusCode == http.StatusOK {
		if m := dynoRe.FindStringSubmatch(string(body)); m != nil {
			r.Dyno = m[1]
		}
		return
	}
	r.Code = codeRe.FindString(string(body))
}

// Burst sends n requests of GET path at once, beside the steady stream, to the first
// router; they are accounted for with the others.
func (l *Load) Burst(n int, path string) {
	run := fmt.Sprintf("%x", time.Now().UnixNano())
	for i := 1; i <= n; i++ {
		l.launch(&Result{ID: fmt.Sprintf("multihost-burst-%s-%02d", run, i), Sent: time.Now(), Router: l.routers[0], Path: path})
	}
}

// refused reports whether err is a connection refused at connect: nothing was sent.
func refused(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial" && errors.Is(err, syscall.ECONNREFUSED)
}

// Answered is how many requests have had their outcome so far.
func (l *Load) Answered() int { return int(l.answered.Load()) }

// Stop stops sending, waits for every request sent to end, and returns the results.
func (l *Load) Stop() []*Result {
	l.stopOnce.Do(func() { close(l.stop) })
	<-l.done
	l.wg.Wait()
	l.client.CloseIdleConnections()
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]*Result{}, l.results...)
}

// Summary counts the results of a load.
type Summary struct {
	Sent, OK int
	// Failed counts the requests not answered 200 by code ("H13", "503", "refused": no
	// router listened, "no answer": the connection broke after it was accepted).
	Failed     map[string]int
	ByDyno     map[string]int
	MaxLatency time.Duration
}

// Summarize counts results.
func Summarize(results []*Result) Summary {
	s := Summary{Sent: len(results), Failed: map[string]int{}, ByDyno: map[string]int{}}
	for _, r := range results {
		if d := r.Done.Sub(r.Sent); d > s.MaxLatency {
			s.MaxLatency = d
		}
		switch {
		case r.Status == http.StatusOK && r.Err == nil:
			s.OK++
			s.ByDyno[r.Dyno]++
		case r.Code != "":
			s.Failed[r.Code]++
		case r.Status != 0:
			s.Failed[fmt.Sprint(r.Status)]++
		case r.Refused:
			s.Failed["refused"]++
		default:
			s.Failed["no answer"]++
		}
	}
	return s
}

// FailedTotal is the number of requests that were not answered 200.
func (s Summary) FailedTotal() int { return s.Sent - s.OK }

func (s Summary) String() string {
	return fmt.Sprintf("sent=%d answered_200=%d failed=%d by_code=%s by_dyno=%s max_latency=%s",
		s.Sent, s.OK, s.FailedTotal(), formatCounts(s.Failed), formatCounts(s.ByDyno), s.MaxLatency.Round(time.Millisecond))
}

func formatCounts(m map[string]int) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var parts []string
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s:%d", k, m[k]))
	}
	return "{" + strings.Join(parts, ",") + "}"
}
