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
	waitAcceptQueue(within, func() bool {
		empty := true
		_ = rc.Control(func(fd uintptr) { empty = acceptQueueEmpty(int(fd)) })
		return empty
	})
}

// DrainAcceptQueueFD is DrainAcceptQueue for the listening socket fd.
func DrainAcceptQueueFD(fd int, within time.Duration) {
	waitAcceptQueue(within, func() bool { return acceptQueueEmpty(fd) })
}

func waitAcceptQueue(within time.Duration, empty func() bool) {
	for deadline := time.Now().Add(within); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		if empty() {
			return
		}
	}
}

// acceptQueueEmpty says whether the kernel holds no connection for the listening socket
// fd that was not accepted yet (or cannot tell).
func acceptQueueEmpty(fd int) bool {
	info, err := unix.GetsockoptTCPInfo(fd, unix.IPPROTO_TCP, unix.TCP_INFO)
	return err != nil || info.Unacked == 0
}
