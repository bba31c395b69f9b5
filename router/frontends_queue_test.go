package router

import (
	"io"
	"net"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"
)

// The queue answers H11, H10, H12 at the app's timeout and H80 alike on both front ends.
func TestBothFrontEndsAnswerFromTheQueueAlike(t *testing.T) {
	t.Parallel()
	const queueWait = 500 * time.Millisecond
	type seen struct {
		answers, lines []string
		metrics        map[string]float64
	}
	g, l := onBothFrontEnds(t, func(t *testing.T, loop bool) seen {
		release, late := make(chan struct{}), make(chan struct{})
		b := newBackend(t, func(w http.ResponseWriter, r *http.Request) {
			switch r.URL.Path {
			case "/hold":
				<-release
			case "/slow":
				<-late
			}
			io.WriteString(w, r.URL.Path)
		})
		var releaseOnce, lateOnce sync.Once
		tr := startFrontEnd(t, loop, func(c *Config) {
			c.MaxQueueDepth = 2
			c.MaxQueueWait = queueWait
			c.RequestTimeout = 5 * time.Second
		})
		inst := b.instance("web.1")
		tr.SetApp("qa", []Instance{inst})
		var s seen
		var mu sync.Mutex
		var wg sync.WaitGroup
		defer func() { // also when the test ends early
			releaseOnce.Do(func() { close(release) })
			lateOnce.Do(func() { close(late) })
			wg.Wait()
		}()
		send := func(path string) {
			wg.Add(1)
			go func() {
				defer wg.Done()
				answer := exchange(t, tr.Addr(), "GET "+path+" HTTP/1.1\r\nHost: qa.localhost\r\n\r\n", "GET")
				mu.Lock()
				s.answers = append(s.answers, path+": "+answer)
				mu.Unlock()
			}()
		}
		logged := func(paths ...string) func() bool {
			return func() bool {
				for _, p := range paths {
					if accessLineFor(tr, p) == "" {
						return false
					}
				}
				return true
			}
		}
		// The dyno is held; two requests wait, and the third finds the queue full.
		send("/hold")
		waitFor(t, "the dyno held", func() bool { return tr.appStats("qa").Busy == 1 })
		send("/q1")
		waitFor(t, "/q1 waiting", func() bool { return tr.waiting("qa") == 1 })
		send("/q2")
		waitFor(t, "/q2 waiting", func() bool { return tr.waiting("qa") == 2 })
		send("/full")
		waitFor(t, "/full, /q1 and /q2 answered", logged("/full", "/q1", "/q2"))
		// The dyno leaves the table while /gone waits for it.
		send("/gone")
		waitFor(t, "/gone waiting", func() bool { return tr.waiting("qa") == 1 })
		tr.SetApp("qa", nil)
		waitFor(t, "/gone answered", logged("/gone"))
		// It comes back, still busy: /back waits for it, and is served once it is free.
		tr.SetApp("qa", []Instance{inst})
		send("/back")
		waitFor(t, "/back waiting", func() bool { return tr.waiting("qa") == 1 })
		releaseOnce.Do(func() { close(release) })
		waitFor(t, "/back answered", logged("/back"))
		// The app's own timeout, shorter than -timeout.
		withTimeout := inst
		withTimeout.Timeout = 200 * time.Millisecond
		tr.SetApp("qa", []Instance{withTimeout})
		send("/slow")
		waitFor(t, "/slow answered", logged("/slow"))
		lateOnce.Do(func() { close(late) })
		waitAppIdle(t, tr, "qa")
		// Maintenance.
		maint := inst
		maint.Maintenance = true
		tr.SetApp("qa", []Instance{maint})
		send("/maint")
		wg.Wait()
		waitFor(t, "every request logged", func() bool { return len(accessLines(tr)) == 8 })
		waitAppIdle(t, tr, "qa")

		for _, w := range []struct {
			path, field    string
			atLeast, under time.Duration
		}{
			{"/full", "wait", 0, queueWait},
			{"/q1", "wait", queueWait, 5 * queueWait},
			{"/q2", "wait", queueWait, 5 * queueWait},
			{"/gone", "wait", queueWait, 5 * queueWait},
			{"/back", "wait", 0, queueWait},
			{"/slow", "service", withTimeout.Timeout, 5 * time.Second},
			{"/maint", "wait", 0, queueWait},
		} {
			v := accessField(t, accessLineFor(tr, w.path), w.field)
			if d, err := time.ParseDuration(v); err != nil || d < w.atLeast || d >= w.under {
				t.Errorf("%s: logged %s=%s, want at least %s and under %s", w.path, w.field, v, w.atLeast, w.under)
			}
		}
		for _, l := range accessLines(tr) {
			s.lines = append(s.lines, withoutTimings(l))
		}
		slices.Sort(s.lines)
		slices.Sort(s.answers)
		s.metrics = routerMetrics(t, tr.Router)
		return s
	})
	sameLines(t, "answer", g.answers, l.answers)
	sameLines(t, "access line (sorted)", g.lines, l.lines)
	sameMetrics(t, g.metrics, l.metrics)
}

// A queued client that closes or half-closes is H27 and never reaches the dyno, on both front ends.
func TestBothFrontEndsLetAQueuedClientLeaveAlike(t *testing.T) {
	t.Parallel()
	type seen struct {
		lines   []string
		metrics map[string]float64
	}
	g, l := onBothFrontEnds(t, func(t *testing.T, loop bool) seen {
		b, order, release := blockingBackend(t)
		tr := startFrontEnd(t, loop, nil)
		tr.SetApp("ql", []Instance{b.instance("web.1")})
		releaseHold := holdAtTheDyno(t, tr, order, release, "ql.localhost", "/hold")
		for _, how := range []string{"close", "halfclose"} {
			c, br := clientConnTo(t, tr.Addr())
			io.WriteString(c, "GET /"+how+" HTTP/1.1\r\nHost: ql.localhost\r\n\r\n")
			waitFor(t, "/"+how+" waiting", func() bool { return tr.waiting("ql") == 1 })
			if how == "close" {
				c.Close()
			} else {
				c.(*net.TCPConn).CloseWrite()
				expectClosed(t, c, br, 5*time.Second, "a queued client's half-closed connection")
			}
			waitFor(t, "/"+how+" gone from the queue", func() bool { return tr.waiting("ql") == 0 })
		}
		releaseHold()
		waitFor(t, "every request logged", func() bool { return len(accessLines(tr)) == 3 })
		waitAppIdle(t, tr, "ql")
		if n := b.served.Load(); n != 1 {
			t.Errorf("the dyno served %d requests, want /hold only", n)
		}
		for _, p := range []string{"/close", "/halfclose"} {
			if code := accessField(t, accessLineFor(tr, p), "code"); code != "H27" {
				t.Errorf("%s: logged code=%q, want H27", p, code)
			}
		}
		s := seen{metrics: routerMetrics(t, tr.Router)}
		for _, l := range accessLines(tr) {
			s.lines = append(s.lines, withoutTimings(l))
		}
		slices.Sort(s.lines)
		return s
	})
	sameLines(t, "access line (sorted)", g.lines, l.lines)
	sameMetrics(t, g.metrics, l.metrics)
}
