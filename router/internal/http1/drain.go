package http1

import (
	"net"
	"time"

	"golang.org/x/sys/unix"
)

// DrainAcceptQueue waits, up to within, until the kernel holds no connection for ln that
// the server has not accepted yet (TCP_INFO's unacked, on a listening socket). Closing a
// listening socket resets those connections, and their clients would see a request
// lost that they had sent; called just before the server closes its listener, while it
// goes on accepting, it leaves that only to connections arriving in the moment between.
// Listeners other than TCP are left as they are.
func DrainAcceptQueue(ln net.Listener, within time.Duration) {
	tl, ok := ln.(*net.TCPListener)
	if !ok {
		return
	}
	rc, err := tl.SyscallConn()
	if err != nil {
		return
	}
	_ = rc.Control(func(fd uintptr) { DrainAcceptQueueFD(int(fd), within) })
}

// DrainAcceptQueueFD is DrainAcceptQueue for the listening socket fd.
func DrainAcceptQueueFD(fd int, within time.Duration) {
	for deadline := time.Now().Add(within); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		info, err := unix.GetsockoptTCPInfo(fd, unix.IPPROTO_TCP, unix.TCP_INFO)
		if err != nil || info.Unacked == 0 {
			return
		}
	}
}
