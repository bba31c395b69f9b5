package router

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/dynogrid/dynogrid/router/logapi"
)

// Each app's router lines are kept in a ring of their own, which the logs endpoint serves
// (logserve.go): at most ringLines lines and ringBytes bytes of them, the oldest dropped
// first.
const (
	ringLines = 1000
	ringBytes = 256 << 10
)

// logRing holds the last router lines of one app, in a circular buffer: adding a line
// costs the same when the ring is full.
type logRing struct {
	mu      sync.Mutex
	buf     []logapi.Line // grows up to ringLines, then wraps
	head    int           // index of the oldest line in buf
	n       int           // lines held
	bytes   int
	next    uint64        // the sequence number of the next line
	changed chan struct{} // closed and replaced when a line is added, if watched
	watched bool          // a reader waits on changed
	readers atomic.Int32  // requests of the logs endpoint served now (waiting on changed or answered)
}

func newLogRing() *logRing { return &logRing{next: 1, changed: make(chan struct{})} }

// at is the i-th oldest line held.
func (g *logRing) at(i int) *logapi.Line { return &g.buf[(g.head+i)%len(g.buf)] }

func (g *logRing) add(t time.Time, line string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	for g.n > 0 && (g.n == ringLines || g.bytes+len(line) > ringBytes) {
		g.bytes -= len(g.at(0).Line)
		*g.at(0) = logapi.Line{}
		g.head = (g.head + 1) % len(g.buf)
		g.n--
	}
	l := logapi.Line{Seq: g.next, Time: t, Line: line}
	if g.n < len(g.buf) {
		*g.at(g.n) = l
	} else {
		// buf is full only while it is shorter than ringLines: unwrap it and grow it.
		grown := make([]logapi.Line, 0, min(max(2*len(g.buf), 16), ringLines))
		for i := 0; i < g.n; i++ {
			grown = append(grown, *g.at(i))
		}
		g.buf, g.head = append(grown, l), 0
		g.buf = g.buf[:cap(g.buf)]
	}
	g.n++
	g.next++
	g.bytes += len(line)
	if g.watched {
		close(g.changed)
		g.changed, g.watched = make(chan struct{}), false
	}
}

// since returns up to max lines after sequence number after (the last max lines when
// after is 0), the number to ask after next time, and a channel closed when a line is
// added.
func (g *logRing) since(after uint64, max int) ([]logapi.Line, uint64, <-chan struct{}) {
	g.mu.Lock()
	defer g.mu.Unlock()
	i := 0
	if after > 0 && g.n > 0 {
		// Sequence numbers are consecutive: the first line after after is at a known place.
		if first := g.at(0).Seq; after >= first {
			i = int(min(after-first+1, uint64(g.n)))
		}
	}
	end := g.n
	if end-i > max {
		if after == 0 {
			i = end - max
		} else {
			end = i + max
		}
	}
	out := make([]logapi.Line, 0, end-i)
	for ; i < end; i++ {
		out = append(out, *g.at(i))
	}
	last := g.next - 1
	if len(out) > 0 {
		last = out[len(out)-1].Seq
	}
	g.watched = true
	return out, last, g.changed
}

// logRings are the rings of every app the router logged a line for.
type logRings struct {
	mu    sync.Mutex
	rings map[string]*logRing
}

func (l *logRings) add(app string, t time.Time, line string) { l.ring(app).add(t, line) }

// ring returns the app's ring, made empty if it has none: a reader waiting for the app's
// first line waits on it.
func (l *logRings) ring(app string) *logRing {
	l.mu.Lock()
	defer l.mu.Unlock()
	g := l.rings[app]
	if g == nil {
		if l.rings == nil {
			l.rings = make(map[string]*logRing)
		}
		g = newLogRing()
		l.rings[app] = g
	}
	return g
}

// keep drops the rings of apps for which exists says false.
func (l *logRings) keep(exists func(app string) bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for app := range l.rings {
		if !exists(app) {
			delete(l.rings, app)
		}
	}
}
