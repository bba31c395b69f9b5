package evloop

import (
	"container/heap"
	"time"
)

// deadlineSlack is how late a timer may run: the loop's wake-up deadline is set again
// only when a timer is due more than this much before it, so that timers pushed back on
// every request (idle and read timeouts) cost no runtime timer update each.
const deadlineSlack = 10 * time.Millisecond

// Timer runs a function on the loop when it is due, unless stopped first.
type Timer struct {
	l   *Loop
	at  time.Time
	f   func()
	idx int // in the loop's heap; -1 when not in it
}

// After makes a timer that runs f on the loop d from now (at most deadlineSlack late).
func (l *Loop) After(d time.Duration, f func()) *Timer {
	t := &Timer{l: l, f: f, idx: -1}
	t.Reset(d)
	return t
}

// Reset makes t due d from now, whether or not it ran or was stopped.
func (t *Timer) Reset(d time.Duration) {
	t.at = time.Now().Add(d)
	if t.idx >= 0 {
		heap.Fix(&t.l.timers, t.idx)
	} else {
		heap.Push(&t.l.timers, t)
	}
}

// Stop keeps t from running; it says whether it was pending.
func (t *Timer) Stop() bool {
	if t.idx < 0 {
		return false
	}
	heap.Remove(&t.l.timers, t.idx)
	return true
}

// runTimers runs the timers that are due.
func (l *Loop) runTimers() {
	if len(l.timers) == 0 {
		return
	}
	now := time.Now()
	for len(l.timers) > 0 && !l.timers[0].at.After(now) {
		t := heap.Pop(&l.timers).(*Timer)
		t.f()
	}
}

// armDeadline makes the loop's wait end when the first timer is due (or up to
// deadlineSlack after), setting the epoll file's read deadline only when it must move
// earlier or has passed.
func (l *Loop) armDeadline() {
	if len(l.timers) == 0 {
		return // a deadline in force only wakes the loop early, to no harm
	}
	at := l.timers[0].at
	now := time.Now()
	if !l.deadline.IsZero() && l.deadline.After(now) && !l.deadline.After(at.Add(deadlineSlack)) {
		return
	}
	l.deadline = at.Add(deadlineSlack)
	_ = l.file.SetReadDeadline(l.deadline)
}

type timerHeap []*Timer

func (h timerHeap) Len() int           { return len(h) }
func (h timerHeap) Less(i, j int) bool { return h[i].at.Before(h[j].at) }
func (h timerHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].idx, h[j].idx = i, j
}
func (h *timerHeap) Push(x any) {
	t := x.(*Timer)
	t.idx = len(*h)
	*h = append(*h, t)
}
func (h *timerHeap) Pop() any {
	old := *h
	t := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	t.idx = -1
	return t
}
