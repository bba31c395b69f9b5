package evloop

import (
	"bytes"
	"sync"
	"syscall"
	"testing"
	"time"
)

// start runs a loop for the test and stops it at cleanup.
func start(t *testing.T, mk maker) *Loop {
	t.Helper()
	l, stop := run(t, mk)
	t.Cleanup(stop)
	return l
}

// run runs a loop; stop closes it and checks that Run returns, without error.
func run(t *testing.T, mk maker) (l *Loop, stop func()) {
	t.Helper()
	l, err := mk()
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- l.Run() }()
	return l, func() {
		l.Close()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Error("Run did not return after Close")
		}
	}
}

// maker makes a loop: New or NewHolding.
type maker func() (*Loop, error)

// bothWaits runs a test on a loop parked in Go's poller and on one that holds its
// thread.
func bothWaits(t *testing.T, test func(*testing.T, maker)) {
	t.Run("parked", func(t *testing.T) { test(t, New) })
	t.Run("holding", func(t *testing.T) { test(t, NewHolding) })
}

// on runs f on the loop and waits for it.
func on(t *testing.T, l *Loop, f func()) {
	t.Helper()
	done := make(chan struct{})
	if !l.Post(func() { f(); close(done) }) {
		t.Fatal("loop closed")
	}
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("a posted function did not run in 10 s")
	}
}

func TestPostedFunctionsRunInOrderOnTheLoop(t *testing.T) {
	bothWaits(t, testPostedFunctionsRunInOrderOnTheLoop)
}

func testPostedFunctionsRunInOrderOnTheLoop(t *testing.T, mk maker) {
	l := start(t, mk)
	const posters, each = 8, 500
	var mu sync.Mutex
	seen := make([][]int, posters)
	var wg sync.WaitGroup
	for p := range posters {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				l.Post(func() {
					mu.Lock()
					seen[p] = append(seen[p], i)
					mu.Unlock()
				})
			}
		}()
	}
	wg.Wait()
	on(t, l, func() {}) // after every function posted above
	for p, s := range seen {
		if len(s) != each {
			t.Fatalf("poster %d: %d of %d functions ran", p, len(s), each)
		}
		for i, v := range s {
			if v != i {
				t.Fatalf("poster %d: function %d ran as number %d", p, v, i)
			}
		}
	}
}

// reader reads its socket until it would block, and counts reads that found nothing.
type reader struct {
	fd    int
	got   chan []byte
	empty int
	ended bool
}

func (r *reader) Ready(ev uint32) {
	if ev&(In|Ended) == 0 {
		return // room to write: not the reader's business
	}
	buf := make([]byte, 4096)
	for {
		n, err := syscall.Read(r.fd, buf)
		if err == syscall.EAGAIN {
			r.empty++
			return
		}
		if n <= 0 {
			r.ended = true
			r.got <- nil
			return
		}
		r.got <- bytes.Clone(buf[:n])
		if n < len(buf) {
			return // a short read left nothing behind
		}
	}
}

func socketPair(t *testing.T) (a, b int) {
	t.Helper()
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_NONBLOCK|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Close(fds[0]); syscall.Close(fds[1]) })
	return fds[0], fds[1]
}

func TestHandlerHearsOfInputAndTheEndWithoutEmptyReads(t *testing.T) {
	bothWaits(t, testHandlerHearsOfInputAndTheEndWithoutEmptyReads)
}

func testHandlerHearsOfInputAndTheEndWithoutEmptyReads(t *testing.T, mk maker) {
	l := start(t, mk)
	a, b := socketPair(t)
	r := &reader{fd: a, got: make(chan []byte, 16)}
	on(t, l, func() {
		if err := l.Add(a, r); err != nil {
			t.Error(err)
		}
	})
	for _, msg := range []string{"one", "two", "three"} {
		if _, err := syscall.Write(b, []byte(msg)); err != nil {
			t.Fatal(err)
		}
		select {
		case got := <-r.got:
			if string(got) != msg {
				t.Fatalf("handler read %q, want %q", got, msg)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("handler did not hear of %q in 10 s", msg)
		}
	}
	syscall.Shutdown(b, syscall.SHUT_WR)
	select {
	case got := <-r.got:
		if got != nil {
			t.Fatalf("handler read %q, want the end", got)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("handler did not hear of the end in 10 s")
	}
	on(t, l, func() {
		if r.empty != 0 {
			t.Errorf("%d reads found nothing; the loop called the handler only with input", r.empty)
		}
		if !r.ended {
			t.Error("the handler did not see the end")
		}
	})
}

func TestRemovedDescriptorHearsNothing(t *testing.T) { bothWaits(t, testRemovedDescriptorHearsNothing) }

func testRemovedDescriptorHearsNothing(t *testing.T, mk maker) {
	l := start(t, mk)
	a, b := socketPair(t)
	r := &reader{fd: a, got: make(chan []byte, 16)}
	on(t, l, func() {
		if err := l.Add(a, r); err != nil {
			t.Error(err)
		}
	})
	on(t, l, func() { l.Remove(a) })
	syscall.Write(b, []byte("x"))
	// A timer after the write's event would have been dispatched: a poll runs it.
	fired := make(chan struct{})
	on(t, l, func() { l.After(20*time.Millisecond, func() { close(fired) }) })
	<-fired
	select {
	case got := <-r.got:
		t.Fatalf("a removed handler read %q", got)
	default:
	}
}

func TestTimersRunWhenDueInOrderUnlessStopped(t *testing.T) {
	bothWaits(t, testTimersRunWhenDueInOrderUnlessStopped)
}

func testTimersRunWhenDueInOrderUnlessStopped(t *testing.T, mk maker) {
	l := start(t, mk)
	type run struct {
		name string
		at   time.Time
	}
	ran := make(chan run, 8)
	due := map[string]time.Time{}
	var stopped, moved *Timer
	on(t, l, func() {
		now := time.Now()
		for _, tc := range []struct {
			name string
			d    time.Duration
		}{{"c", 150 * time.Millisecond}, {"a", 30 * time.Millisecond}, {"b", 80 * time.Millisecond}} {
			due[tc.name] = now.Add(tc.d)
			l.After(tc.d, func() { ran <- run{tc.name, time.Now()} })
		}
		stopped = l.After(50*time.Millisecond, func() { ran <- run{"stopped", time.Now()} })
		moved = l.After(10*time.Millisecond, func() { ran <- run{"moved", time.Now()} })
		due["moved"] = now.Add(200 * time.Millisecond)
		moved.Reset(200 * time.Millisecond)
		if !stopped.Stop() {
			t.Error("Stop of a pending timer said it was not pending")
		}
	})
	var order []string
	for range 4 {
		select {
		case r := <-ran:
			if r.at.Before(due[r.name]) {
				t.Errorf("timer %s ran %s early", r.name, due[r.name].Sub(r.at))
			}
			order = append(order, r.name)
		case <-time.After(10 * time.Second):
			t.Fatalf("timers ran: %v; the others not in 10 s", order)
		}
	}
	if got := string(bytes.Join([][]byte{[]byte(order[0]), []byte(order[1]), []byte(order[2]), []byte(order[3])}, []byte(","))); got != "a,b,c,moved" {
		t.Fatalf("timers ran in the order %s, want a,b,c,moved", got)
	}
	on(t, l, func() {
		if stopped.Stop() {
			t.Error("Stop of a stopped timer said it was pending")
		}
	})
}

func TestClosedLoopRefusesWork(t *testing.T) { bothWaits(t, testClosedLoopRefusesWork) }

func testClosedLoopRefusesWork(t *testing.T, mk maker) {
	l, stop := run(t, mk)
	ran := make(chan struct{})
	l.Post(func() { close(ran) })
	stop()
	select {
	case <-ran:
	default:
		t.Fatal("a function posted before Close did not run")
	}
	if l.Post(func() {}) {
		t.Fatal("Post after Close said the function would run")
	}
}
