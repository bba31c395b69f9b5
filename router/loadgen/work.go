package loadgen

import (
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// sleeper waits until a given time as closely as the machine allows. Go's timers wake
// on the runtime's millisecond-grained poller (0.7 ms late on average here: 7% of a
// 10 ms service time, which pushes a 0.9 load past 0.95), so a sleeper sleeps in the
// kernel (nanosleep) and aims early by the lateness it has seen lately. Backends use one
// to spend service times, the load generator to send requests on schedule.
type sleeper struct {
	late atomic.Int64 // moving average of how late a sleep woke, in ns
}

// until returns at about t.
func (s *sleeper) until(t time.Time) {
	aim := time.Until(t) - time.Duration(s.late.Load())
	if aim <= 0 {
		return
	}
	start := time.Now()
	ts := unix.NsecToTimespec(int64(aim))
	for unix.Nanosleep(&ts, &ts) == unix.EINTR {
	}
	over := int64(time.Since(start) - aim)
	if over < 0 || over > int64(5*time.Millisecond) {
		return // a stall of the machine, not the sleep's usual lateness
	}
	old := s.late.Load()
	s.late.Store(old + (over-old)/16)
}
