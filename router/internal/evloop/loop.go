// Package evloop runs an event loop: one goroutine that waits for the readiness of
// many sockets at once in an epoll set of its own, and calls each socket's handler,
// which reads and writes it with raw system calls. Unlike a goroutine per connection
// parked in Go's poller, a handler is told what its socket holds, so it never makes a
// read that finds nothing (Go's poller needs one before every wait), and a request's
// turn from one socket to the next costs a function call instead of a goroutine
// switch.
//
// The loop's goroutine does not hold a thread while it waits: the epoll set's own
// descriptor is registered in Go's poller, and the goroutine parks there until the set
// has an event, a timer is due, or another goroutine posts work (Post).
package evloop

import (
	"errors"
	"os"
	"runtime"
	"sync"
	"syscall"
	"time"
	"unsafe"
)

// Events a handler is told of: the epoll bits.
const (
	In    = syscall.EPOLLIN
	Out   = syscall.EPOLLOUT
	Ended = syscall.EPOLLRDHUP | syscall.EPOLLHUP | syscall.EPOLLERR
)

// edge is how every socket is registered: edge-triggered, for reads, writes and the
// peer's end, so a handler hears of each change once and must read (or write) until
// EAGAIN before it hears again.
const edge = syscall.EPOLLIN | syscall.EPOLLOUT | syscall.EPOLLRDHUP | syscall.EPOLLET&0xffffffff

// Handler is what owns one descriptor in the loop.
type Handler interface {
	// Ready is called on the loop with the events that arrived (In, Out, Ended bits).
	Ready(events uint32)
}

// Loop is one event loop. Add, Remove, After and the Timer methods are for the loop's
// own goroutine (handlers, timer and posted functions); Post and Close for any.
type Loop struct {
	ep       int
	file     *os.File // ep, in Go's poller
	rc       syscall.RawConn
	wake     int // an eventfd in the set: Post's signal
	handlers []Handler
	events   []syscall.EpollEvent
	timers   timerHeap
	deadline time.Time // the file's read deadline in force (zero: none)
	pollFn   func(fd uintptr) bool
	// holds: the loop waits in epoll_pwait on its own thread (NewHolding), not parked in
	// Go's poller.
	holds bool

	mu      sync.Mutex
	posted  []func()
	running []func()
	woken   bool // the eventfd was written since the loop last read it
	// awake: the loop is in its turn and runs what is posted before it waits again, so
	// a Post needs no signal (most posts come from the loop's own handlers).
	awake  bool
	closed bool
}

// New makes a loop; Run runs it.
func New() (*Loop, error) { return newLoop(false) }

func newLoop(holds bool) (*Loop, error) {
	ep, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
	if err != nil {
		return nil, os.NewSyscallError("epoll_create1", err)
	}
	// Non-blocking, so that os.NewFile registers it in Go's poller; a holding loop's
	// is not there, so that its events do not wake the runtime's poller too.
	if err := syscall.SetNonblock(ep, !holds); err != nil {
		syscall.Close(ep)
		return nil, os.NewSyscallError("fcntl", err)
	}
	wake, _, errno := syscall.RawSyscall(syscall.SYS_EVENTFD2, 0, syscall.O_NONBLOCK|syscall.O_CLOEXEC, 0)
	if errno != 0 {
		syscall.Close(ep)
		return nil, os.NewSyscallError("eventfd2", errno)
	}
	l := &Loop{ep: ep, wake: int(wake), events: make([]syscall.EpollEvent, 128), holds: holds}
	if err := syscall.EpollCtl(ep, syscall.EPOLL_CTL_ADD, l.wake, &syscall.EpollEvent{Events: edge, Fd: int32(l.wake)}); err != nil {
		syscall.Close(ep)
		syscall.Close(l.wake)
		return nil, os.NewSyscallError("epoll_ctl", err)
	}
	l.file = os.NewFile(uintptr(ep), "epoll")
	rc, err := l.file.SyscallConn()
	if err != nil {
		l.file.Close()
		syscall.Close(l.wake)
		return nil, err
	}
	l.rc = rc
	l.pollFn = l.poll
	return l, nil
}

// NewHolding makes a loop that waits in epoll_pwait itself, as a raw system call that
// the runtime does not see: its goroutine keeps its thread and its processor (P) while
// it waits, and each wake-up costs one system call instead of the three or so of a
// park in Go's poller (the runtime's wait, its non-blocking poll when it goes idle, and
// the loop's collection). The process needs another processor for its other
// goroutines: Run adds one to GOMAXPROCS while it runs (a collection, and anything else
// that needs the loop's processor, interrupts the wait with a signal; the wait is also
// bounded by maxHoldingWait).
func NewHolding() (*Loop, error) { return newLoop(true) }

// maxHoldingWait bounds a holding loop's wait, so that a runtime that asks for its
// processor without a signal (GODEBUG=asyncpreemptoff=1) waits no longer than this.
const maxHoldingWait = 50 * time.Millisecond

// Add puts fd in the loop with its handler. The loop does not own fd: Remove it before
// closing it.
func (l *Loop) Add(fd int, h Handler) error {
	if fd < 0 {
		return errors.New("evloop: negative descriptor")
	}
	for fd >= len(l.handlers) {
		l.handlers = append(l.handlers, make([]Handler, len(l.handlers)+64)...)
	}
	if err := syscall.EpollCtl(l.ep, syscall.EPOLL_CTL_ADD, fd, &syscall.EpollEvent{Events: edge, Fd: int32(fd)}); err != nil {
		return os.NewSyscallError("epoll_ctl", err)
	}
	l.handlers[fd] = h
	return nil
}

// Remove takes fd out of the loop: its handler hears of nothing more, also of events
// already collected in the same wait.
func (l *Loop) Remove(fd int) {
	if fd < 0 || fd >= len(l.handlers) || l.handlers[fd] == nil {
		return
	}
	l.handlers[fd] = nil
	_ = syscall.EpollCtl(l.ep, syscall.EPOLL_CTL_DEL, fd, nil)
}

// Post runs f on the loop, soon, from any goroutine. It says false when the loop is
// closed (f will not run).
func (l *Loop) Post(f func()) bool {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return false
	}
	l.posted = append(l.posted, f)
	signal := !l.woken && !l.awake
	if signal {
		l.woken = true
	}
	l.mu.Unlock()
	if signal {
		one := uint64(1)
		_, _, _ = syscall.RawSyscall(syscall.SYS_WRITE, uintptr(l.wake), uintptr(unsafe.Pointer(&one)), 8)
	}
	return true
}

// Close makes Run return once it has run what was posted before, from any goroutine.
func (l *Loop) Close() {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return
	}
	l.closed = true
	l.woken = true
	l.mu.Unlock()
	one := uint64(1)
	_, _, _ = syscall.RawSyscall(syscall.SYS_WRITE, uintptr(l.wake), uintptr(unsafe.Pointer(&one)), 8)
}

// Run runs the loop until Close, then releases its descriptors (not the handlers').
func (l *Loop) Run() error {
	defer func() {
		l.file.Close()
		syscall.Close(l.wake)
	}()
	if l.holds {
		return l.runHolding()
	}
	for {
		err := l.rc.Read(l.pollFn)
		if l.isClosed() {
			l.runPosted()
			return nil
		}
		if errors.Is(err, os.ErrDeadlineExceeded) {
			// A timer is due. A deadline that passed fails every wait before it
			// begins: clear it; the next poll runs the timers and sets the next one.
			l.deadline = time.Time{}
			_ = l.file.SetReadDeadline(time.Time{})
			continue
		}
		if err != nil {
			return err
		}
	}
}

// runHolding is Run for a loop that waits in epoll_pwait itself. It adds a processor
// to the runtime's (GOMAXPROCS) while it runs, so that the process's other goroutines
// keep as many as they had.
func (l *Loop) runHolding() error {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	addProcs(1)
	defer addProcs(-1)
	for {
		wait := maxHoldingWait
		if len(l.timers) > 0 {
			wait = min(wait, time.Until(l.timers[0].at))
		}
		l.mu.Lock()
		if l.closed {
			l.mu.Unlock()
			l.runPosted()
			return nil
		}
		if len(l.posted) > 0 {
			wait = 0
		}
		l.awake = wait == 0 // from here on a Post signals, unless the loop will not wait
		l.mu.Unlock()
		n, errno := epollWaitFor(l.ep, l.events, wait)
		l.mu.Lock()
		l.awake = true
		l.mu.Unlock()
		if errno != 0 && errno != syscall.EINTR {
			return os.NewSyscallError("epoll_pwait", errno)
		}
		l.dispatch(l.events[:max(n, 0)])
		l.runPosted()
		l.runTimers()
	}
}

var procsMu sync.Mutex

func addProcs(n int) {
	procsMu.Lock()
	defer procsMu.Unlock()
	runtime.GOMAXPROCS(max(1, runtime.GOMAXPROCS(0)+n))
}

// epollWaitFor waits up to d (rounded up to a millisecond) for events.
func epollWaitFor(ep int, events []syscall.EpollEvent, d time.Duration) (int, syscall.Errno) {
	ms := 0
	if d > 0 {
		ms = int((d + time.Millisecond - 1) / time.Millisecond)
	}
	r, _, e := syscall.RawSyscall6(syscall.SYS_EPOLL_PWAIT, uintptr(ep), uintptr(unsafe.Pointer(&events[0])), uintptr(len(events)), uintptr(ms), 0, 0)
	return int(r), e
}

func (l *Loop) isClosed() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.closed
}

// poll is the loop's turn, run each time Go's poller says the epoll set has something
// (or at once when the wait begins): it collects and dispatches events until none are
// left, runs what was posted and the timers that are due, and says false to wait again
// (true when the loop is closed).
func (l *Loop) poll(uintptr) bool {
	l.mu.Lock()
	l.awake = true
	l.mu.Unlock()
	for {
		n, errno := epollWait(l.ep, l.events)
		if errno == syscall.EINTR {
			continue
		}
		l.dispatch(l.events[:max(n, 0)])
		l.runPosted()
		l.runTimers()
		if n < len(l.events) && l.sleep() {
			break
		}
	}
	if l.isClosed() {
		return true
	}
	l.armDeadline()
	return false
}

// dispatch calls the handlers of the events.
func (l *Loop) dispatch(events []syscall.EpollEvent) {
	for _, ev := range events {
		fd := int(ev.Fd)
		if fd == l.wake {
			l.drainWake()
			continue
		}
		if fd < len(l.handlers) && l.handlers[fd] != nil {
			l.handlers[fd].Ready(ev.Events)
		}
	}
}

// epollWait collects the ready events without waiting: the wait itself is Go's.
func epollWait(ep int, events []syscall.EpollEvent) (int, syscall.Errno) {
	r, _, e := syscall.RawSyscall6(syscall.SYS_EPOLL_PWAIT, uintptr(ep), uintptr(unsafe.Pointer(&events[0])), uintptr(len(events)), 0, 0, 0)
	return int(r), e
}

// sleep ends the loop's turn unless something was posted since it last looked: from
// then on a Post signals.
func (l *Loop) sleep() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.posted) > 0 {
		return false
	}
	l.awake = false
	return true
}

func (l *Loop) drainWake() {
	var v uint64
	_, _, _ = syscall.RawSyscall(syscall.SYS_READ, uintptr(l.wake), uintptr(unsafe.Pointer(&v)), 8)
	l.mu.Lock()
	l.woken = false
	l.mu.Unlock()
}

// runPosted runs what was posted before it began. What those functions post runs in
// the next turn, after the events that came meanwhile: work that keeps posting more
// (a client's pipelined requests, a long response) takes turns with the other sockets.
func (l *Loop) runPosted() {
	l.mu.Lock()
	l.posted, l.running = l.running[:0], l.posted
	l.mu.Unlock()
	for i, f := range l.running {
		l.running[i] = nil
		f()
	}
}
