package router

import (
	"context"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// inEMFILEChild is set in the environment of the test binary that
// TestLoopAcceptRetriesOncePerBackOffOutOfDescriptors runs: that process lowers its own
// descriptor limit, which no other test may share.
const inEMFILEChild = "DYNO_ROUTER_TEST_EMFILE_CHILD"

// acceptRetriesWithin is how many times the loop may try accept in d from its first
// failure, once per back-off (5 ms, doubling up to a second).
func acceptRetriesWithin(d time.Duration) int {
	n, at, backoff := 1, time.Duration(0), time.Duration(0)
	for {
		backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
		if at += backoff; at > d {
			return n
		}
		n++
	}
}

// While the process is out of descriptors, the loop retries accept about once per
// back-off, not once per connection that arrives, and serves every waiting client once
// descriptors free up.
func TestLoopAcceptRetriesOncePerBackOffOutOfDescriptors(t *testing.T) {
	if os.Getenv(inEMFILEChild) == "" {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^"+t.Name()+"$", "-test.count=1", "-test.v", "-test.timeout=30s")
		cmd.Env = append(os.Environ(), inEMFILEChild+"=1")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("the test in its own process: %v\n%s", err, out)
		}
		if strings.Contains(string(out), "--- SKIP") {
			t.Skipf("skipped in its own process:\n%s", out)
		}
		for _, l := range strings.Split(string(out), "\n") {
			if _, figures, ok := strings.Cut(l, "loop_emfile_test.go:"); ok {
				_, figures, _ = strings.Cut(figures, ": ")
				t.Log("in its own process: " + figures)
			}
		}
		return
	}

	// In the child process: a router on the loop, a client's request served, and the
	// dyno's connection kept for the next.
	b := newBackend(t, nil)
	tr := startLoopRouter(t, nil)
	tr.SetApp("mf", []Instance{b.instance("web.1")})
	c, br := clientConnTo(t, tr.Addr())
	c.Write([]byte("GET / HTTP/1.1\r\nHost: mf.localhost\r\nConnection: close\r\n\r\n"))
	if resp, _ := readResp(t, br, "GET"); resp.StatusCode != 200 {
		t.Fatalf("first request: %d", resp.StatusCode)
	}
	c.Close()
	_, ps, _ := net.SplitHostPort(tr.Addr())
	port, _ := strconv.Atoi(ps)

	// The clients are sockets made before the limit is lowered, and moved above it
	// (where they go on working), so that they need no descriptor of their own.
	var top int
	es, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skipf("cannot list open descriptors: %v", err)
	}
	for _, e := range es {
		n, _ := strconv.Atoi(e.Name())
		top = max(top, n)
	}
	const clients = 100
	limit, parkAt := uint64(top+64), top+128
	var old syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &old); err != nil {
		t.Fatal(err)
	}
	if old.Cur < uint64(parkAt+2*clients) {
		t.Skipf("descriptor limit %d: too low to park %d clients above %d", old.Cur, clients, parkAt)
	}
	var socks []int
	defer func() {
		for _, fd := range socks {
			unix.Close(fd)
		}
	}()
	for range clients {
		fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			t.Fatal(err)
		}
		hi, err := unix.FcntlInt(uintptr(fd), unix.F_DUPFD_CLOEXEC, parkAt)
		unix.Close(fd)
		if err != nil {
			t.Fatal(err)
		}
		socks = append(socks, hi)
		if err := unix.SetsockoptTimeval(hi, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &unix.Timeval{Sec: 10}); err != nil {
			t.Fatal(err)
		}
	}

	// Out of descriptors: the limit lowered, and every descriptor below it taken.
	lowered := old
	lowered.Cur = limit
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lowered); err != nil {
		t.Fatal(err)
	}
	var fill []int
	freed := false
	free := func() {
		if !freed {
			freed = true
			for _, fd := range fill {
				unix.Close(fd)
			}
			fill = nil
			if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &old); err != nil {
				t.Errorf("restoring the descriptor limit: %v", err)
			}
		}
	}
	defer free()
	for {
		fd, err := unix.Open("/dev/null", unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			break
		}
		fill = append(fill, fd)
	}

	const warning = "failed to accept a connection"
	warnings := func() int { return strings.Count(tr.logs.String(), warning) }
	before := warnings()
	start := time.Now()
	sa := &unix.SockaddrInet4{Port: port, Addr: [4]byte{127, 0, 0, 1}}
	req := []byte("GET / HTTP/1.1\r\nHost: mf.localhost\r\n\r\n")
	for _, fd := range socks {
		if err := unix.Connect(fd, sa); err != nil {
			free()
			t.Fatalf("connect: %v", err)
		}
		unix.Write(fd, req)
		time.Sleep(2 * time.Millisecond) // a listener event each
	}
	arrived := time.Since(start)
	// The back-off has grown to over half a second: several retries, each of which failed.
	waitFor(t, "eight failed accepts", func() bool { return warnings()-before >= 8 })
	elapsed, got := time.Since(start), warnings()-before
	free()
	t.Logf("%d clients arrived in %v while out of descriptors: %d accept failures in %v (at most %d retries at the back-off)",
		clients, arrived.Round(time.Millisecond), got, elapsed.Round(time.Millisecond), acceptRetriesWithin(elapsed))
	if most := acceptRetriesWithin(elapsed) + 2; got > most {
		t.Errorf("accept failed %d times in %v while %d clients arrived: it retries per connection, not once per back-off (at most %d)",
			got, elapsed.Round(time.Millisecond), clients, most)
	}

	// Descriptors free: every client is answered.
	answered := 0
	for _, fd := range socks {
		var buf [64]byte
		n := 0
		for n < len("HTTP/1.1 200") {
			m, err := unix.Read(fd, buf[n:])
			if err != nil || m == 0 {
				break
			}
			n += m
		}
		if strings.HasPrefix(string(buf[:n]), "HTTP/1.1 200") {
			answered++
		}
	}
	t.Logf("%d of %d clients answered %v after descriptors freed up", answered, clients, (time.Since(start) - elapsed).Round(time.Millisecond))
	if answered != clients {
		t.Errorf("%d of %d clients answered once descriptors freed up", answered, clients)
	}
}
