package router

import (
	"io"
	"net"
	"net/http"
	"time"

	"github.com/dynogrid/dynogrid/router/internal/http1"
)

// lease is one dyno handed to one request. The request holds the dyno busy until it
// settles the lease with the request's outcome; only a lease gives a dyno back, and a
// lease settles once: settling it again (or settling a lease of the dyno's that has
// already ended) changes nothing, and is reported to the router's doubleSettle hook.
//
// A lease is a value (the dyno and the number of this hand-out of it), so handing out a
// dyno allocates nothing. Settling lease n moves the dyno's count of settled leases from
// n-1 to n, under the app's mutex, which the settle takes anyway to give the dyno back:
// the dyno is handed out again only after lease n settled, so exactly one settle of
// lease n can do it.
type lease struct {
	d *dyno
	n uint64
}

// outcome is how a request ended for the dyno it held.
type outcome uint8

const (
	// succeeded: the dyno answered the request and its response is over. Its failure
	// streak ends, and it goes at once to the oldest waiting request, or becomes idle.
	succeeded outcome = iota + 1
	// ended: the request is over without a verdict on the dyno (H12 with part of a head,
	// H13, H17, H18, the end of an upgraded connection, a client that left before its
	// request was sent). The dyno goes to the oldest waiting request, or becomes idle;
	// its failure streak stays.
	ended
	// down: the dyno refused or reset the connection before it got any byte of the
	// request. It leaves rotation for its back-off (and the request may go to another).
	down
	// draining: the dyno's connection still carries the response to a request the router
	// gave up on (H12, the client left, its body failed); the dyno stays busy until that
	// response is over (see lease.drain), and then settles as ended.
	draining
)

func (o outcome) String() string {
	switch o {
	case succeeded:
		return "succeeded"
	case ended:
		return "ended"
	case down:
		return "down"
	case draining:
		return "draining"
	}
	return "none"
}

// testHooks let tests observe the request path and order its races. Every field is nil
// in production.
type testHooks struct {
	// doubleSettle is called when a lease that has already settled is settled again
	// (without it, the router logs an error).
	doubleSettle func(l lease, o outcome)
	// waitEnding is called when a queued request's wait ends by its client leaving
	// (H27) or by its queue wait running out (H11), before it takes the app's lock to
	// leave the queue: a dyno may be handed to it until then.
	waitEnding func(app string, code *Code)
}

// lend marks an idle or new dyno busy and returns the lease of this hand-out of it.
// Caller holds the app's mutex.
func (a *app) lend(d *dyno) lease {
	d.busy = true
	a.busy++
	d.leases++
	return lease{d: d, n: d.leases}
}

// claimLocked takes the lease's one settle; it says false when the lease has settled
// already. Caller holds the app's mutex.
func (l lease) claimLocked() bool {
	if l.d.settled != l.n-1 {
		return false
	}
	l.d.settled = l.n
	return true
}

// settledAgain reports a settle of a lease that had settled already, which changes
// nothing.
func (l lease) settledAgain(o outcome) {
	r := l.d.app.r
	if h := r.hooks.doubleSettle; h != nil {
		h(l, o)
	} else {
		r.log.Error("a dyno's request settled twice; ignored", "app", l.d.app.name, "dyno", l.d.name, "outcome", o.String())
	}
}

// settle ends the lease with outcome succeeded, ended or down: the dyno goes to the
// oldest waiting request (this goroutine writes that request to the dyno: see give), or
// becomes idle, or leaves rotation. Whoever settles has closed the dyno's connection,
// or kept it (dyno.keep) for the next request.
func (l lease) settle(o outcome) {
	l.d.app.mu.Lock()
	if !l.claimLocked() {
		l.d.app.mu.Unlock()
		l.settledAgain(o)
		return
	}
	l.freeLocked(o)
}

// abandon settles the lease as ended, closing dc, unless it has settled: for a request
// path that panicked, so that the dyno is not held busy for ever.
func (l lease) abandon(dc *dynoConn) {
	l.d.app.mu.Lock()
	open := l.d.settled == l.n-1
	l.d.app.mu.Unlock()
	if open { // and nobody else holds it to settle it
		dc.close()
		l.settle(ended)
	}
}

// freeLocked gives the dyno back after its lease settled with outcome o, and unlocks
// the app's mutex, which the caller holds. Only the settle that claimed the lease calls
// it.
func (l lease) freeLocked(o outcome) {
	d := l.d
	a := d.app
	if o == succeeded && d.failures.Load() != 0 {
		d.failures.Store(0)
	}
	if o == down && !d.down && !d.removed {
		d.down = true
		a.up--
		f := d.failures.Add(1)
		backoff := a.r.cfg.DownBackoff << min(f-1, 5)
		if backoff > a.r.cfg.MaxDownBackoff {
			backoff = a.r.cfg.MaxDownBackoff
		}
		time.AfterFunc(backoff, func() { a.revive(d) })
	}
	d.busy = false
	a.busy--
	switch {
	case d.removed:
		d.closeConnLocked()
		if a.leaving[d.key] == d {
			delete(a.leaving, d.key)
			if d.gone != nil {
				close(d.gone)
			}
		}
	case d.down:
		d.closeConnLocked()
	default:
		if w, next := a.next(d); w != nil {
			a.mu.Unlock()
			give(w, next)
			return
		}
	}
	a.mu.Unlock()
}

// drain settles the lease busy until drained: the dyno stays busy until the response to
// a request the router gave up on (H12, the client left, or its body failed) is really
// over. The rest of the response is read and discarded (resp, or the whole response
// when resp is nil), and the connection kept when clean. A dyno that stays silent keeps
// its mark until it closes the connection, or, when idle is non-zero, until it sends
// nothing for that long. The router's shutdown closes such connections.
func (l lease) drain(dc *dynoConn, resp *http.Response, method string, idle time.Duration) {
	l.drainWith(dc, func() bool {
		var err error
		if resp == nil {
			if resp, err = http1.ReadResponse(dc.br, method); err != nil || resp.StatusCode == http.StatusSwitchingProtocols {
				return false
			}
		}
		if idle > 0 {
			_, err = io.Copy(io.Discard, idleReader{resp.Body, dc.c, idle})
		} else {
			_, err = io.Copy(io.Discard, resp.Body)
		}
		return err == nil && !resp.Close && dc.clean
	})
}

// drainUnframed settles the lease busy until drained, for a response the router gave
// up on where its end can no longer be found (H18 after the dyno went silent mid-body,
// H12 after part of a head), while the dyno may still be at work on the request. The
// router closes its side of the connection and waits for the dyno's next move: its own
// close (a server closes once done with the request, when it reads the end of the
// requests to come), or more of its response (it is at work again: the router closes
// the connection, so that its next write fails and it gives the request up), or
// unframedWait request timeouts. Then the dyno is free; the connection is not reused.
func (l lease) drainUnframed(dc *dynoConn, timeout time.Duration) {
	l.drainWith(dc, func() bool {
		closeWrite(dc.c)
		_ = dc.c.SetReadDeadline(time.Now().Add(unframedWait * timeout))
		var b [1]byte
		_, _ = dc.c.Read(b[:])
		return false
	})
}

// unframedWait bounds drainUnframed's wait, in request timeouts: a dyno hung that long
// has been restarted by its health check long before (deploy.HungAfter).
const unframedWait = 10

// drainWith is drain and drainUnframed: read runs in the background, then the dyno is
// freed, with its connection kept when read says so.
func (l lease) drainWith(dc *dynoConn, read func() (keep bool)) {
	a := l.d.app
	a.mu.Lock()
	if !l.claimLocked() {
		a.mu.Unlock()
		l.settledAgain(draining)
		return
	}
	a.mu.Unlock()
	r := a.r
	free := func() {
		a.mu.Lock()
		l.freeLocked(ended)
	}
	_ = dc.c.SetDeadline(time.Time{})
	if !r.track(dc.c) {
		dc.close()
		free()
		return
	}
	r.bg.Add(1)
	go func() {
		defer r.bg.Done()
		// Untracked before the dyno is free: its next lease may drain this same
		// connection, and must find it untracked to track it again.
		defer free()
		defer r.untrack(dc.c)
		if !read() {
			dc.close()
			return
		}
		_ = dc.c.SetDeadline(time.Time{})
		l.d.keep(dc)
	}()
}

// idleReader reads with a rolling read deadline on c.
type idleReader struct {
	r    io.Reader
	c    net.Conn
	idle time.Duration
}

func (ir idleReader) Read(p []byte) (int, error) {
	_ = ir.c.SetReadDeadline(time.Now().Add(ir.idle))
	return ir.r.Read(p)
}
