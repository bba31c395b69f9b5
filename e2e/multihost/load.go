package multihost

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"
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
}

// Load sends an open-loop stream of requests through the router: one every interval,
// each in its own goroutine whatever the earlier ones do, each with its own X-Request-Id.
type Load struct {
	router, host, path string
	stop               chan struct{}
	done               chan struct{}
	mu                 sync.Mutex
	results            []*Result
	wg                 sync.WaitGroup
	answered           atomic.Int64
	stopOnce           sync.Once
}

// StartLoad starts sending GET path with Host host to the router at rate requests per
// second.
func StartLoad(routerAddr, host, path string, rate int) *Load {
	l := &Load{router: routerAddr, host: host, path: path, stop: make(chan struct{}), done: make(chan struct{})}
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
			r := &Result{ID: fmt.Sprintf("multihost-%s-%08d", run, n), Sent: time.Now()}
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
	}()
	return l
}

var (
	codeRe = regexp.MustCompile(`\bH\d\d\b`)
	dynoRe = regexp.MustCompile(`on (\S+)\n?$`)
)

func (l *Load) send(r *Result) {
	ctx, cancel := context.WithTimeout(context.Background(), RequestTimeout)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+l.router+l.path, nil)
	req.Host = l.host
	req.Header.Set("X-Request-Id", r.ID)
	resp, err := httpClient.Do(req)
	if err != nil {
		r.Err, r.Done = err, time.Now()
		return
	}
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

// Answered is how many requests have had their outcome so far.
func (l *Load) Answered() int { return int(l.answered.Load()) }

// Stop stops sending, waits for every request sent to end, and returns the results.
func (l *Load) Stop() []*Result {
	l.stopOnce.Do(func() { close(l.stop) })
	<-l.done
	l.wg.Wait()
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]*Result{}, l.results...)
}

// Summary counts the results of a load.
type Summary struct {
	Sent, OK   int
	Failed     map[string]int // by code ("H13", "503", "no answer")
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
