package router

import (
	"context"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/dynogrid/dynogrid/router/internal/http1"
)

// app is the long-lived state of one app: its dynos, which of them are idle, and the FIFO
// queue of requests waiting for one. It outlives routing tables: a new table points at the
// same *app, so a table swap never loses a queued request or a busy mark.
//
// Invariant (under mu): the idle list is non-empty only when the queue is empty, because a dyno
// that frees up or joins is handed to the oldest waiter before it may become idle.
type app struct {
	name string
	r    *Router

	settings atomicSettings

	// Cached metric series of the app, so the request path skips label lookups.
	waitObs   atomic.Pointer[prometheus.Observer]
	responses sync.Map // responseKey -> prometheus.Counter

	mu    sync.Mutex
	dynos map[string]*dyno // by key, routable or down
	// leaving are dynos that left the table while busy: still holding a request, so
	// never to be handed another (and revived as they are if they come back).
	leaving map[string]*dyno
	// Idle dynos in the order they freed up: a doubly linked list, so that any can leave
	// in O(1). The most recently freed goes next: its connection and caches are warm,
	// and dispatch touches the same few dynos however many an app has.
	idleHead, idleTail *dyno
	nidle              int
	up                 int     // dynos neither removed nor down
	busy               int     // dynos holding a request
	head               *waiter // oldest waiting request
	tail               *waiter
	nwait              int
	// moves counts the times the app's queue moved to another router (redirect): a
	// request held on a view of the members older than the last move must route again.
	moves uint64
}

// hold lets a request wait while the app has no dyno up here, because its dynos are on
// their way (cluster mode). moves is the app's count of queue moves when the request
// last looked at who owns the app.
type hold struct {
	on    bool
	moves uint64
}

// waiter is one queued request. The lease of the dyno handed to it (none when the queue
// moved, see redirect) is in l once state is handed; how the waiting goroutine learns
// it depends on how it waits: parked on its client's connection (park, see parker), or
// on ch.
type waiter struct {
	prev, next *waiter
	queued     bool
	ahead      *sendAhead
	park       parker
	// loop, when set, is a request of the event loop: woken by a call, on no channel.
	loop interface{ wake() }
	// ch, buffered, is made (under the app's mutex, while queued) when the request
	// waits on it rather than parked.
	ch    chan struct{}
	l     lease
	state atomic.Int32 // waiting, waking (Unpark in progress), handed
	// wakeup is held from the moment the waiter is taken off the queue to be woken
	// (see takeToWake) until its wake is over: a wait that ends meanwhile blocks on it
	// rather than spin while the waker writes a request ahead.
	wakeup sync.Mutex
}

// Waiter states.
const (
	waiting int32 = iota
	waking
	handed
)

// parker parks a queued request's goroutine on its client's connection, which notices
// the client leaving at no cost of its own (http1.Response). ClientGone says whether
// the client left, for a request Park could not watch.
type parker interface {
	Park(until time.Time, woken *atomic.Int32) http1.ParkResult
	Unpark()
	WatchLeave()
	ClientGone() bool
}

// unwatchedParker is the parker of a request whose body streams: its connection holds
// the body, so it cannot be parked on or watched while queued; only asked whether the
// client left before a dyno takes the request.
type unwatchedParker struct{ gone func() bool }

func (unwatchedParker) Park(time.Time, *atomic.Int32) http1.ParkResult { return http1.Unwatched }
func (unwatchedParker) Unpark()                                        {}
func (unwatchedParker) WatchLeave()                                    {}
func (p unwatchedParker) ClientGone() bool                             { return p.gone() }

// unwatched says whether the request waits on ch with its client not watched by Park
// (it sent more bytes, or its body is yet to stream): whether the client left is then
// asked (park.ClientGone) before a dyno takes the request. Read under the app's mutex,
// or after the waiter left the queue.
func (w *waiter) unwatched() bool { return w.park != nil && w.ch != nil }

// wake hands the lease l (none: the queue moved) to the waiter, once: it is off the
// queue, and the caller is the only one to wake it.
func (w *waiter) wake(l lease) {
	defer w.wakeup.Unlock()
	w.l = l
	if w.loop != nil {
		w.state.Store(handed)
		w.loop.wake()
		return
	}
	if w.ch != nil {
		w.state.Store(handed)
		w.ch <- struct{}{}
		return
	}
	w.state.Store(waking)
	w.park.Unpark()
	w.state.Store(handed)
}

// handedOver waits for a wake in progress to end and returns the lease.
func (w *waiter) handedOver() lease {
	w.wakeup.Lock()
	defer w.wakeup.Unlock()
	return w.l
}

// sendAhead is a queued request ready to go on the wire. The request that frees a dyno
// writes it to that dyno before it wakes the waiting one, so the dyno gets its next
// request without waiting for a goroutine to be scheduled: on a busy host that wait is
// most of the time a dyno would otherwise sit idle between two requests.
type sendAhead struct {
	wire    []byte // request head and whole body
	method  string
	timeout time.Duration
	// Set by the hand-off when it sent the request; dc is nil when it did not (no
	// kept-alive connection: the waiter dials).
	dc  *dynoConn
	at  time.Time
	err error
	// w is the waiter of the request while it is queued (one allocation less).
	w waiter
}

// maxSendAhead bounds what a hand-off writes for another request: well within a fresh
// socket's send buffer (16 KiB on Linux), so that the request settling the dyno never
// blocks on it. Larger requests are sent by their own goroutine.
const maxSendAhead = 8 << 10

// queueError is why a request got no dyno.
type queueError struct {
	code   *Code
	waited time.Duration
	// moved: the app's queue moved to another router in cluster mode (see redirect);
	// the request was never sent and may go there.
	moved bool
}

func newApp(r *Router, name string) *app {
	return &app{name: name, r: r, dynos: make(map[string]*dyno), leaving: make(map[string]*dyno)}
}

// acquire returns the lease of an idle dyno for one request, queueing the request (at
// the back, or at the front for a request being redispatched) until one frees up. It
// fails with H10 when the app has no dyno up, H11 when the queue is full or the request
// waited maxWait, and H27 when the client left (ctx ended). depth is how many requests
// were ahead of this one when it arrived. When ahead is not nil and the request waited,
// the dyno may come with the request already sent (ahead.dc set). The caller settles the
// lease when the request is over. With h.on, the request waits even when the app has no
// dyno up (its dynos are expected to join), unless the queue moved since h.moves (H10,
// moved). park, when set, is the request's client
// connection: a queued request parks on it, and notices the client leaving while it
// waits; when it cannot (the client sent more) the request waits on a channel, and when
// the connection cannot be parked on at all, on a channel with its client watched by
// park.WatchLeave.
func (a *app) acquire(ctx context.Context, front bool, h hold, maxWait time.Duration, ahead *sendAhead, park parker) (l lease, depth int, qe *queueError) {
	a.mu.Lock()
	if l, depth, qe, wait := a.admitLocked(front, h); !wait {
		a.mu.Unlock()
		return l, depth, qe
	}
	var w *waiter
	if ahead != nil {
		// Nobody holds the request's waiter of an earlier attempt any more: it was
		// unlinked from the queue, or handed its lease (wake is over).
		w = &ahead.w
		w.prev, w.next, w.queued, w.ch, w.l = nil, nil, false, nil, lease{}
		w.state.Store(waiting)
	} else {
		w = new(waiter)
	}
	w.ahead, w.park = ahead, park
	if park == nil {
		w.ch = make(chan struct{}, 1)
	}
	depth = a.nwait
	a.enqueue(w, front)
	a.mu.Unlock()

	start := time.Now()
	until := start.Add(maxWait)
	var code *Code
	if park != nil {
		switch park.Park(until, &w.state) {
		case http1.Woken:
			if w.state.Load() != waiting {
				return a.handed(w, depth, start, nil)
			}
			code = H11
		case http1.Left:
			code = H27
		case http1.Unwatched:
			// Wait on a channel, when still queued (a lease handed meanwhile comes by
			// Unpark: wait for that to be over).
			a.mu.Lock()
			if !w.queued {
				a.mu.Unlock()
				return a.handed(w, depth, start, leftCode(park))
			}
			w.ch = make(chan struct{}, 1)
			a.mu.Unlock()
			// A connection that cannot be parked on is watched by a goroutine.
			park.WatchLeave()
		}
	}
	if code == nil {
		timer := time.NewTimer(time.Until(until))
		defer timer.Stop()
		select {
		case <-w.ch:
			if w.unwatched() {
				return a.handed(w, depth, start, leftCode(park))
			}
			return a.handed(w, depth, start, nil)
		case <-ctx.Done():
			code = H27
		case <-timer.C:
			code = H11
		}
	}
	if h := a.r.hooks.waitEnding; h != nil {
		h(a.name, code)
	}
	a.mu.Lock()
	if w.queued {
		a.unlink(w)
		if code == H11 && a.up == 0 {
			code = H10
		}
		a.mu.Unlock()
		return lease{}, depth, &queueError{code: code, waited: time.Since(start)}
	}
	a.mu.Unlock()
	// A dyno was handed over at the same moment, or the queue moved.
	return a.handed(w, depth, start, code)
}

// admitLocked takes an idle dyno for a request, or refuses it (no dyno up: H10; the
// queue moved: H10, moved; the queue is full: H11), or says it is to wait. Caller holds
// the app's mutex.
func (a *app) admitLocked(front bool, h hold) (l lease, depth int, qe *queueError, wait bool) {
	switch {
	case a.idleTail != nil:
		return a.popIdle(), 0, nil, false
	case a.up == 0 && !h.on:
		return lease{}, 0, &queueError{code: H10}, false
	case h.on && a.moves != h.moves:
		return lease{}, 0, &queueError{code: H10, moved: true}, false
	case !front && a.nwait >= a.r.cfg.MaxQueueDepth:
		return lease{}, a.nwait, &queueError{code: H11}, false
	}
	return lease{}, 0, nil, true
}

// acquireLoop is acquire for a request of the event loop, which never blocks: it
// returns the lease of an idle dyno, or refuses the request, or queues w (queued): the
// lease comes later through w.loop.wake, unless the wait ends first (the caller
// unlinks w).
func (a *app) acquireLoop(w *waiter, front bool) (l lease, depth int, qe *queueError, queued bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if l, depth, qe, wait := a.admitLocked(front, hold{}); !wait {
		return l, depth, qe, false
	}
	w.prev, w.next, w.queued, w.l = nil, nil, false, lease{}
	w.state.Store(waiting)
	depth = a.nwait
	a.enqueue(w, front)
	return lease{}, depth, nil, true
}

// leftCode is H27 when the client of a request that waited unwatched has left (a dyno
// must not take it), nil otherwise.
func leftCode(park parker) *Code {
	if park.ClientGone() {
		return H27
	}
	return nil
}

// handed ends the wait of a request taken off the queue by a hand-off (or by the queue
// moving) as the wait ended for the reason code (nil: the hand-off woke it).
func (a *app) handed(w *waiter, depth int, start time.Time, code *Code) (lease, int, *queueError) {
	l := w.handedOver()
	if l.d == nil {
		if code == nil || code == H11 {
			return lease{}, depth, &queueError{code: H10, waited: time.Since(start), moved: true}
		}
		return lease{}, depth, &queueError{code: code, waited: time.Since(start)}
	}
	if code == nil || code == H11 {
		// The wait ran out as the dyno came: the client is still there, serve it.
		return l, depth, nil
	}
	// The client left: give the dyno to the next in line, once it answered the request
	// when that was already sent.
	switch ahead := w.ahead; {
	case ahead == nil || ahead.dc == nil:
		l.settle(ended)
	case ahead.err != nil:
		ahead.dc.close()
		l.settle(ended)
	default:
		l.drain(ahead.dc, nil, ahead.method, 0)
	}
	return lease{}, depth, &queueError{code: code, waited: time.Since(start)}
}

// give hands the lease of a dyno to the waiter, sending its request first when it can
// (see sendAhead). Called by the goroutine that settled the dyno's last lease, without
// the app's mutex: the dyno and its connection belong to the waiter now, and nobody
// else touches them.
func give(w *waiter, l lease) {
	if ah := w.ahead; ah != nil && len(ah.wire) <= maxSendAhead && !(w.unwatched() && w.park.ClientGone()) {
		if dc := l.d.reuse(ah.timeout); dc != nil {
			ah.dc, ah.at = dc, time.Now()
			_, ah.err = dc.Write(ah.wire)
		}
	}
	w.wake(l)
}

// redirect takes every waiting request off the queue and hands it back with no dyno
// (acquire answers moved): in cluster mode the app's queue now belongs to another
// router, and they go there.
func (a *app) redirect() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.moves++
	n := 0
	for w := a.head; w != nil; w = a.head {
		a.takeToWake(w)
		w.wake(lease{})
		n++
	}
	return n
}

// revive puts a dyno that was marked down back into rotation on probation.
func (a *app) revive(d *dyno) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if d.removed || !d.down {
		return
	}
	d.down = false
	a.up++
	if !d.busy {
		a.handoff(d)
	}
}

// handoff gives a free dyno to the oldest waiter, or makes it idle. Caller holds mu.
func (a *app) handoff(d *dyno) {
	if w, l := a.next(d); w != nil {
		w.wake(l)
	}
}

// next takes the oldest waiter off the queue and lends d to it, or makes d idle when
// nobody waits (and returns no waiter). Caller holds mu.
func (a *app) next(d *dyno) (*waiter, lease) {
	if w := a.head; w != nil {
		a.takeToWake(w)
		return w, a.lend(d)
	}
	d.isIdle = true
	d.idlePrev, d.idleNext = a.idleTail, nil
	if a.idleTail != nil {
		a.idleTail.idleNext = d
	} else {
		a.idleHead = d
	}
	a.idleTail = d
	a.nidle++
	return nil, lease{}
}

// popIdle lends the most recently freed dyno. Caller holds mu.
func (a *app) popIdle() lease {
	d := a.idleTail
	a.removeIdle(d)
	return a.lend(d)
}

// removeIdle takes d out of the idle list in O(1). Caller holds mu.
func (a *app) removeIdle(d *dyno) {
	if !d.isIdle {
		return
	}
	if d.idlePrev != nil {
		d.idlePrev.idleNext = d.idleNext
	} else {
		a.idleHead = d.idleNext
	}
	if d.idleNext != nil {
		d.idleNext.idlePrev = d.idlePrev
	} else {
		a.idleTail = d.idlePrev
	}
	d.idlePrev, d.idleNext, d.isIdle = nil, nil, false
	a.nidle--
}

func (a *app) enqueue(w *waiter, front bool) {
	w.queued = true
	a.nwait++
	if a.head == nil {
		a.head, a.tail = w, w
		return
	}
	if front {
		w.next = a.head
		a.head.prev = w
		a.head = w
		return
	}
	w.prev = a.tail
	a.tail.next = w
	a.tail = w
}

// takeToWake takes w off the queue for a wake, which the caller owes it. Caller holds mu.
func (a *app) takeToWake(w *waiter) {
	a.unlink(w)
	w.wakeup.Lock()
}

func (a *app) unlink(w *waiter) {
	if w.prev != nil {
		w.prev.next = w.next
	} else {
		a.head = w.next
	}
	if w.next != nil {
		w.next.prev = w.prev
	} else {
		a.tail = w.prev
	}
	w.prev, w.next = nil, nil
	w.queued = false
	a.nwait--
}

// sync makes the app's dynos those of insts: new ones join (and take waiting requests),
// missing ones leave (at once when idle, after their request when busy).
func (a *app) sync(insts []Instance) {
	a.mu.Lock()
	defer a.mu.Unlock()
	seen := make(map[string]bool, len(insts))
	for _, in := range insts {
		k := in.key()
		seen[k] = true
		if _, ok := a.dynos[k]; ok {
			continue
		}
		if d := a.leaving[k]; d != nil {
			// Back before its last request ended: the same dyno, still busy.
			delete(a.leaving, k)
			d.removed = false
			a.dynos[k] = d
			if !d.down {
				a.up++
			}
			continue
		}
		d := &dyno{key: k, id: in.ID, name: in.Dyno, release: in.Release, addr: in.addr(), app: a}
		a.dynos[k] = d
		a.up++
		a.handoff(d)
	}
	for k, d := range a.dynos {
		if seen[k] {
			continue
		}
		delete(a.dynos, k)
		d.removed = true
		if !d.down {
			a.up--
		}
		if d.busy {
			a.leaving[k] = d
		} else {
			a.removeIdle(d)
			d.closeConnLocked()
		}
	}
}

var closedChan = func() chan struct{} { c := make(chan struct{}); close(c); return c }()

// drained returns a channel closed once the dyno with key holds no request of this
// router any more, after it left the table; nil while it is still in the table.
func (a *app) drained(key string) <-chan struct{} {
	a.mu.Lock()
	defer a.mu.Unlock()
	if d := a.leaving[key]; d != nil {
		if d.gone == nil {
			d.gone = make(chan struct{})
		}
		return d.gone
	}
	if _, ok := a.dynos[key]; ok {
		return nil
	}
	return closedChan
}

// holdHere returns the hold for a request that is to wait here, as of now: call it
// before looking at who owns the app.
func (a *app) holdHere() hold {
	a.mu.Lock()
	defer a.mu.Unlock()
	return hold{on: true, moves: a.moves}
}

// hasUp says whether the app has a dyno up here.
func (a *app) hasUp() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.up > 0
}

// stats reports the app's counts for status pages and tests.
func (a *app) stats() (dynos, up, idle, busy, waiting int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.dynos), a.up, a.nidle, a.busy, a.nwait
}

// upIDs are the service IDs of the dynos up (neither removed nor down), sorted.
func (a *app) upIDs() []string {
	a.mu.Lock()
	ids := make([]string, 0, len(a.dynos))
	for _, d := range a.dynos {
		if !d.removed && !d.down {
			ids = append(ids, d.id)
		}
	}
	a.mu.Unlock()
	slices.Sort(ids)
	return ids
}

// drainedID is drained for a dyno known by its service ID only.
func (a *app) drainedID(id string) <-chan struct{} {
	a.mu.Lock()
	key := ""
	for k, d := range a.leaving {
		if d.id == id {
			key = k
		}
	}
	a.mu.Unlock()
	if key == "" {
		return closedChan
	}
	return a.drained(key)
}
