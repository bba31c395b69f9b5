package router

import (
	"syscall"
	"unsafe"
)

// The event loop's reads and writes are raw system calls: a socket that is ready never
// blocks them, and a call that tells the runtime it may block (syscall.Read) wakes the
// runtime's monitor, which may take the loop's processor away and hand it back through
// another thread.

// rawRead reads from the nonblocking socket fd into p.
func rawRead(fd int, p []byte) (int, syscall.Errno) {
	if len(p) == 0 {
		return 0, 0
	}
	r, _, e := syscall.RawSyscall(syscall.SYS_READ, uintptr(fd), uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)))
	return int(r), e
}

// rawSend writes p to the nonblocking socket fd; a peer that closed makes it fail with
// EPIPE, no signal.
func rawSend(fd int, p []byte) (int, syscall.Errno) {
	if len(p) == 0 {
		return 0, 0
	}
	r, _, e := syscall.RawSyscall6(syscall.SYS_SENDTO, uintptr(fd), uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)), syscall.MSG_NOSIGNAL, 0, 0)
	return int(r), e
}
