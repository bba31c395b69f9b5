package router

import (
	"sync"
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

// logRing holds the last router lines of one app.
type logRing struct {
	mu      sync.Mutex
	lines   []logapi.Line // oldest first
	bytes   int
	next    uint64        // the sequence number of the next line
	changed chan struct{} // closed and replaced when a line is added, if watched
	watched bool          // a reader waits on changed
}

func newLogRing() *logRing { return &logRing{next: 1, changed: make(chan struct{})} }

func (g *logRing) add(t time.Time, line string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.lines = append(g.lines, logapi.Line{Seq: g.next, Time: t, Line: line})
	g.next++
	g.bytes += len(line)
	drop := 0
	for len(g.lines)-drop > ringLines || (g.bytes > ringBytes && len(g.lines)-drop > 1) {
		g.bytes -= len(g.lines[drop].Line)
		drop++
	}
	if drop > 0 {
		// Copied rather than resliced, so that the array does not grow without end.
		g.lines = append(make([]logapi.Line, 0, len(g.lines)-drop+ringLines/4), g.lines[drop:]...)
	}
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
	if after > 0 {
		for i < len(g.lines) && g.lines[i].Seq <= after {
			i++
		}
	}
	out := g.lines[i:]
	if len(out) > max {
		if after == 0 {
			out = out[len(out)-max:]
		} else {
			out = out[:max]
		}
	}
	last := g.next - 1
	if len(out) > 0 {
		last = out[len(out)-1].Seq
	}
	g.watched = true
	return append([]logapi.Line(nil), out...), last, g.changed
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
