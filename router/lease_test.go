package router

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// leaseRig is one app of a router that is not serving, for driving leases directly.
// A dyno's back-off is an hour, so a dyno settled down stays down.
type leaseRig struct {
	t       *testing.T
	r       *Router
	a       *app
	doubles atomic.Int32 // leases settled again
}

func newLeaseRig(t *testing.T, insts ...Instance) *leaseRig {
	t.Helper()
	r, err := New(Config{Listen: "127.0.0.1:0", Logger: testLogger(t), DownBackoff: time.Hour, MaxDownBackoff: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	rig := &leaseRig{t: t, r: r}
	r.hooks.doubleSettle = func(lease, outcome) { rig.doubles.Add(1) }
	r.SetApp("lease", insts)
	rig.a = r.appRef("lease")
	t.Cleanup(r.closeIdle)
	return rig
}

// deadDyno is an instance nothing listens on; the tests that use it never dial it.
func deadDyno(i int) Instance {
	return Instance{ID: fmt.Sprint("d", i), Dyno: fmt.Sprint("web.", i), Address: "127.0.0.1", Port: 1}
}

// liveDyno is an instance listening on loopback; accept returns the dyno's side of
// each connection the router opens.
func liveDyno(t *testing.T, name string) (Instance, func() net.Conn) {
	ln := listen(t)
	t.Cleanup(func() { ln.Close() })
	addr := ln.Addr().(*net.TCPAddr)
	in := Instance{ID: "svc-" + name, Dyno: name, Address: "127.0.0.1", Port: addr.Port}
	return in, func() net.Conn {
		t.Helper()
		c, err := ln.Accept()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
}

// get takes an idle dyno's lease, which must be there.
func (rig *leaseRig) get() lease {
	rig.t.Helper()
	l, _, qe := rig.a.acquire(context.Background(), false, hold{}, time.Second, nil, nil)
	if qe != nil {
		rig.t.Fatalf("no dyno: %s", qe.code.Name)
	}
	return l
}

// wait queues a request for a dyno in its own goroutine, once the queue is as long as
// it was plus one; the lease (or the queue's error) comes on the channel.
func (rig *leaseRig) wait(ahead *sendAhead) <-chan lease {
	rig.t.Helper()
	_, _, _, _, before := rig.a.stats()
	got := make(chan lease, 1)
	go func() {
		l, _, qe := rig.a.acquire(context.Background(), false, hold{}, time.Minute, ahead, nil)
		if qe != nil {
			rig.t.Errorf("the waiting request got %s", qe.code.Name)
		}
		got <- l
	}()
	waitFor(rig.t, "the request queued", func() bool { _, _, _, _, w := rig.a.stats(); return w == before+1 })
	return got
}

type counts struct{ up, idle, busy, waiting int }

func (rig *leaseRig) counts() counts {
	_, up, idle, busy, waiting := rig.a.stats()
	return counts{up, idle, busy, waiting}
}

func (rig *leaseRig) want(when string, c counts) {
	rig.t.Helper()
	if got := rig.counts(); got != c {
		rig.t.Errorf("%s: %+v, want %+v", when, got, c)
	}
}

// conn is the dyno's kept-alive connection, read under the app's lock.
func (rig *leaseRig) conn(d *dyno) *dynoConn {
	rig.a.mu.Lock()
	defer rig.a.mu.Unlock()
	return d.conn
}

// tracked says whether the router's shutdown would wait for dc.
func (rig *leaseRig) tracked(dc *dynoConn) bool {
	rig.r.connMu.Lock()
	defer rig.r.connMu.Unlock()
	_, ok := rig.r.conns[dc.c]
	return ok
}

// connect opens the router's connection to the dyno of l, as a request does, and
// returns it with the dyno's side.
func connect(t *testing.T, l lease, accept func() net.Conn) (*dynoConn, net.Conn) {
	t.Helper()
	dc, _, err := l.d.take(context.Background(), (&net.Dialer{}).DialContext, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(dc.close)
	if accept == nil { // a kept connection
		return dc, nil
	}
	return dc, accept()
}

// A request path that panics abandons its lease: the dyno is free again, its
// connection closed, and a lease that had settled is left as it was, unreported.
func TestAbandonSettlesOnlyAnOpenLease(t *testing.T) {
	t.Parallel()
	in, accept := liveDyno(t, "web.1")
	rig := newLeaseRig(t, in)
	l := rig.get()
	dc, dyno := connect(t, l, accept)
	l.abandon(dc)
	rig.want("abandoned", counts{up: 1, idle: 1})
	if _, err := dyno.Read(make([]byte, 1)); err != io.EOF {
		t.Errorf("the connection of an abandoned lease was not closed: the dyno read %v", err)
	}
	l.abandon(dc)
	l = rig.get()
	l.settle(succeeded)
	l.abandon(dc)
	rig.want("abandoned after its settle", counts{up: 1, idle: 1})
	if n := rig.doubles.Load(); n != 0 {
		t.Errorf("abandoning settled leases reported %d repeated settles", n)
	}
}

// Concurrent settles of one lease: exactly one takes effect, whatever the outcomes, and
// every other is reported. A lease settled after its dyno was handed out again changes
// nothing either.
func TestLeaseSettlesOnce(t *testing.T) {
	t.Parallel()
	rig := newLeaseRig(t, deadDyno(1))
	outcomes := []outcome{succeeded, ended, down}
	const settlers = 8
	var doubles int32
	for i := 0; i < 200; i++ {
		l := rig.get()
		var start, wg sync.WaitGroup
		start.Add(1)
		for j := 0; j < settlers; j++ {
			wg.Add(1)
			go func(o outcome) {
				defer wg.Done()
				start.Wait()
				l.settle(o)
			}(outcomes[(i+j)%len(outcomes)])
		}
		start.Done()
		wg.Wait()
		doubles += settlers - 1
		if n := rig.doubles.Load(); n != doubles {
			t.Fatalf("round %d: %d settles reported as repeated, want %d", i, n, doubles)
		}
		if l.d.down {
			rig.want(fmt.Sprintf("round %d, settled down", i), counts{up: 0})
			rig.a.revive(l.d)
		}
		rig.want(fmt.Sprintf("round %d", i), counts{up: 1, idle: 1})
	}

	old := rig.get()
	old.settle(ended)
	cur := rig.get()
	if cur.d != old.d || cur.n != old.n+1 {
		t.Fatalf("the dyno's next lease is %d of %s, want %d of %s", cur.n, cur.d.name, old.n+1, old.d.name)
	}
	old.settle(succeeded)
	old.settle(down)
	if n := rig.doubles.Load(); n != doubles+2 {
		t.Errorf("a lease settled after its dyno was handed out again: %d repeats reported, want %d", n-doubles, 2)
	}
	rig.want("after settling an old lease", counts{up: 1, busy: 1})
	cur.settle(ended)
	rig.want("after settling the current lease", counts{up: 1, idle: 1})
}

// Each outcome's effect on the app's dynos, with nobody waiting and with a request
// waiting.
func TestLeaseOutcomes(t *testing.T) {
	t.Parallel()
	t.Run("succeeded", func(t *testing.T) {
		t.Parallel()
		rig := newLeaseRig(t, deadDyno(1))
		l := rig.get()
		l.d.failures.Store(3)
		rig.want("leased", counts{up: 1, busy: 1})
		l.settle(succeeded)
		rig.want("settled", counts{up: 1, idle: 1})
		if f := l.d.failures.Load(); f != 0 {
			t.Errorf("failure streak %d after a success, want 0", f)
		}
	})
	t.Run("ended", func(t *testing.T) {
		t.Parallel()
		rig := newLeaseRig(t, deadDyno(1))
		l := rig.get()
		l.d.failures.Store(3)
		l.settle(ended)
		rig.want("settled", counts{up: 1, idle: 1})
		if f := l.d.failures.Load(); f != 3 {
			t.Errorf("failure streak %d after a request that ended, want it kept (3)", f)
		}
	})
	t.Run("down", func(t *testing.T) {
		t.Parallel()
		in, accept := liveDyno(t, "web.1")
		rig := newLeaseRig(t, in)
		l := rig.get()
		dc, _ := connect(t, l, accept)
		l.d.keep(dc)
		l.settle(down)
		rig.want("settled", counts{up: 0})
		if !l.d.down || l.d.failures.Load() != 1 {
			t.Errorf("down %v with failure streak %d, want down with 1", l.d.down, l.d.failures.Load())
		}
		if rig.conn(l.d) != nil {
			t.Errorf("a dyno settled down keeps its connection")
		}
		if _, _, qe := rig.a.acquire(context.Background(), false, hold{}, time.Second, nil, nil); qe == nil || qe.code != H10 {
			t.Errorf("with its only dyno down, the app gave a request %v, want H10", qe)
		}
		rig.a.revive(l.d)
		rig.want("revived", counts{up: 1, idle: 1})
	})
	t.Run("draining", func(t *testing.T) {
		t.Parallel()
		in, accept := liveDyno(t, "web.1")
		rig := newLeaseRig(t, in)
		l := rig.get()
		dc, dyno := connect(t, l, accept)
		io.WriteString(dc, "GET /given-up HTTP/1.1\r\nHost: x\r\n\r\n")
		l.drain(dc, nil, "GET", 0)
		rig.want("draining", counts{up: 1, busy: 1})
		l.settle(ended)
		if rig.doubles.Load() != 1 {
			t.Errorf("settling a draining lease again was not reported")
		}
		br := bufio.NewReader(dyno)
		if line, _ := br.ReadString('\n'); line != "GET /given-up HTTP/1.1\r\n" {
			t.Fatalf("the dyno read %q", line)
		}
		io.WriteString(dyno, "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n12345")
		rig.want("half the body drained", counts{up: 1, busy: 1})
		io.WriteString(dyno, "67890")
		waitFor(t, "the dyno free once the response is over", func() bool { return rig.counts() == counts{up: 1, idle: 1} })
		if rig.conn(l.d) != dc {
			t.Errorf("the connection of a response drained cleanly was not kept")
		}
		if rig.tracked(dc) {
			t.Errorf("a connection drained and kept is still tracked once its dyno is free")
		}
		// The next lease gives up on a request over the same connection: the router's
		// shutdown must know of the second drain too.
		l = rig.get()
		if again, _ := connect(t, l, nil); again != dc {
			t.Fatalf("the next lease did not take the kept connection")
		}
		io.WriteString(dc, "GET /given-up-too HTTP/1.1\r\nHost: x\r\n\r\n")
		l.drain(dc, nil, "GET", 0)
		if !rig.tracked(dc) {
			t.Errorf("the second drain of a kept connection is not tracked")
		}
		for { // the rest of the first request's head
			if line, err := br.ReadString('\n'); err != nil || line == "\r\n" {
				break
			}
		}
		if line, _ := br.ReadString('\n'); line != "GET /given-up-too HTTP/1.1\r\n" {
			t.Fatalf("the dyno read %q", line)
		}
		io.WriteString(dyno, "HTTP/1.1 204 No Content\r\n\r\n")
		waitFor(t, "the dyno free after the second drain", func() bool { return rig.counts() == counts{up: 1, idle: 1} })
		rig.r.bg.Wait()
	})
	t.Run("draining, the dyno closes", func(t *testing.T) {
		t.Parallel()
		in, accept := liveDyno(t, "web.1")
		rig := newLeaseRig(t, in)
		l := rig.get()
		dc, dyno := connect(t, l, accept)
		l.drain(dc, nil, "GET", 0)
		dyno.Close()
		waitFor(t, "the dyno free once it closed", func() bool { return rig.counts() == counts{up: 1, idle: 1} })
		if rig.conn(l.d) != nil {
			t.Errorf("a closed connection was kept")
		}
		rig.r.bg.Wait()
	})
	t.Run("succeeded, a request waiting", func(t *testing.T) {
		t.Parallel()
		rig := newLeaseRig(t, deadDyno(1))
		l := rig.get()
		got := rig.wait(nil)
		l.settle(succeeded)
		rig.want("settled", counts{up: 1, busy: 1})
		next := <-got
		if next.d != l.d || next.n != l.n+1 {
			t.Errorf("the waiting request got lease %d of %v, want %d of %s", next.n, next.d, l.n+1, l.d.name)
		}
		next.settle(ended)
		rig.want("the second lease settled", counts{up: 1, idle: 1})
	})
	t.Run("down, a request waiting", func(t *testing.T) {
		t.Parallel()
		rig := newLeaseRig(t, deadDyno(1), deadDyno(2))
		l1, l2 := rig.get(), rig.get()
		got := rig.wait(nil)
		l1.settle(down)
		rig.want("one settled down", counts{up: 1, busy: 1, waiting: 1})
		l2.settle(succeeded)
		if next := <-got; next.d != l2.d {
			t.Errorf("the waiting request got %s, want %s", next.d.name, l2.d.name)
		} else {
			next.settle(ended)
		}
		rig.want("done", counts{up: 1, idle: 1})
	})
	t.Run("draining, a request waiting", func(t *testing.T) {
		t.Parallel()
		in, accept := liveDyno(t, "web.1")
		rig := newLeaseRig(t, in)
		l := rig.get()
		dc, dyno := connect(t, l, accept)
		l.drain(dc, nil, "GET", 0)
		got := rig.wait(nil)
		rig.want("draining", counts{up: 1, busy: 1, waiting: 1})
		io.WriteString(dyno, "HTTP/1.1 204 No Content\r\n\r\n")
		next := <-got
		if next.d != l.d {
			t.Fatalf("the waiting request got %s", next.d.name)
		}
		rig.want("handed over after the drain", counts{up: 1, busy: 1})
		next.settle(succeeded)
		rig.r.bg.Wait()
	})
	t.Run("a dyno that left", func(t *testing.T) {
		t.Parallel()
		in := deadDyno(1)
		rig := newLeaseRig(t, in)
		l := rig.get()
		rig.r.SetApp("lease", nil)
		gone := rig.a.drained(in.key())
		select {
		case <-gone:
			t.Fatal("a busy dyno that left counts as drained")
		default:
		}
		l.settle(succeeded)
		select {
		case <-gone:
		default:
			t.Error("a dyno that left is not drained once its lease settled")
		}
		rig.want("settled", counts{})
	})
}

// A request waiting for a dyno gets it from the goroutine that settles the dyno's
// lease, with its request already written to the dyno's kept-alive connection: when
// settle returns, the dyno has the request, before the waiting goroutine has run.
func TestSettleHandsTheDynoToTheWaitingRequest(t *testing.T) {
	t.Parallel()
	in, accept := liveDyno(t, "web.1")
	rig := newLeaseRig(t, in)
	l := rig.get()
	dc, dyno := connect(t, l, accept)
	l.d.keep(dc) // the first request is over, its connection kept

	wire := "POST /next HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello"
	ahead := &sendAhead{wire: []byte(wire), method: "POST", timeout: 10 * time.Second}
	got := rig.wait(ahead)
	l.settle(succeeded)
	// This goroutine has sent the request (the waiting one only reads ahead once it has
	// the lease: with -race, a send by another goroutine fails here as a race).
	if ahead.dc != dc || ahead.at.IsZero() || ahead.err != nil {
		t.Fatalf("when settle returned, the waiting request was not sent on the kept connection (%p, want %p; error %v)", ahead.dc, dc, ahead.err)
	}
	rig.want("settle returned", counts{up: 1, busy: 1})
	dyno.SetReadDeadline(time.Now().Add(10 * time.Second))
	buf := make([]byte, len(wire))
	if _, err := io.ReadFull(dyno, buf); err != nil || string(buf) != wire {
		t.Fatalf("the dyno read %q, %v", buf, err)
	}
	next := <-got
	if next.d != l.d || next.n != l.n+1 {
		t.Fatalf("the waiting request got lease %d of %s, want %d of %s", next.n, next.d.name, l.n+1, l.d.name)
	}
	next.settle(succeeded)
	rig.want("done", counts{up: 1, idle: 1})
	if n := rig.doubles.Load(); n != 0 {
		t.Errorf("%d leases settled twice", n)
	}
}
