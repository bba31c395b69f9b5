package cli

import (
	"container/heap"
	"context"
	"sync"
	"time"

	"github.com/dynogrid/dynogrid/internal/logstream"
)

// mergeHold is how long `dyno logs --tail` holds each line before it prints it, so that a
// line that comes a little later from another source but is older still goes first.
const mergeHold = time.Second

// logLine is a line `dyno logs` prints: when it happened (the router's time for a router
// line, the time it was read for a dyno's), its source's prefix and its text.
type logLine struct {
	at      time.Time
	prefix  string
	text    string
	arrived time.Time
	n       uint64 // order of arrival: lines of one time keep it
}

// logMerger prints lines from several sources in time order.
type logMerger struct {
	mu   sync.Mutex
	h    lineHeap
	n    uint64
	out  func(string)
	hold time.Duration
}

func newLogMerger(out func(string)) *logMerger { return &logMerger{out: out, hold: mergeHold} }

func (m *logMerger) add(l logLine) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.n++
	l.n, l.arrived = m.n, time.Now()
	heap.Push(&m.h, l)
}

// run prints each line once it has been held for m.hold, oldest first, until ctx ends.
func (m *logMerger) run(ctx context.Context) {
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			m.flush(now.Add(-m.hold))
		}
	}
}

// flush prints, in time order, the lines at the front that arrived before until (all of
// them when until is zero), with their control characters made visible.
func (m *logMerger) flush(until time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for m.h.Len() > 0 && (until.IsZero() || !m.h[0].arrived.After(until)) {
		l := heap.Pop(&m.h).(logLine)
		m.out(logstream.Printable(l.prefix + ": " + l.text))
	}
}

type lineHeap []logLine

func (h lineHeap) Len() int { return len(h) }
func (h lineHeap) Less(i, j int) bool {
	if !h[i].at.Equal(h[j].at) {
		return h[i].at.Before(h[j].at)
	}
	return h[i].n < h[j].n
}
func (h lineHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *lineHeap) Push(x any)   { *h = append(*h, x.(logLine)) }
func (h *lineHeap) Pop() any {
	old := *h
	l := old[len(old)-1]
	*h = old[:len(old)-1]
	return l
}
