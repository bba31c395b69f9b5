package main

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

var (
	probePath = []byte("/app/tmp/seccomp-probe\x00")
	probeFS   = []byte("tmpfs\x00")
)

// sysProbe is a system call the dyno's seccomp filter must refuse with want. Its
// arguments would do nothing harmful even if the call went through.
type sysProbe struct {
	name string
	nr   uintptr
	args [6]uintptr
	want unix.Errno
}

func sysProbes() []sysProbe {
	path := uintptr(unsafe.Pointer(&probePath[0]))
	fs := uintptr(unsafe.Pointer(&probeFS[0]))
	pid := uintptr(os.Getpid())
	bad := ^uintptr(0)
	probes := []sysProbe{
		{"unshare(CLONE_NEWUSER)", unix.SYS_UNSHARE, [6]uintptr{unix.CLONE_NEWUSER}, unix.EPERM},
		{"unshare(CLONE_NEWNS)", unix.SYS_UNSHARE, [6]uintptr{unix.CLONE_NEWNS}, unix.EPERM},
		{"unshare(CLONE_NEWNET)", unix.SYS_UNSHARE, [6]uintptr{unix.CLONE_NEWNET}, unix.EPERM},
		{"unshare(CLONE_NEWPID)", unix.SYS_UNSHARE, [6]uintptr{unix.CLONE_NEWPID}, unix.EPERM},
		// The kernel refuses CLONE_NEWUSER with CLONE_FS (EINVAL): nothing is forked even
		// without the filter.
		{"clone(CLONE_NEWUSER|CLONE_FS)", unix.SYS_CLONE, [6]uintptr{unix.CLONE_NEWUSER | unix.CLONE_FS | uintptr(unix.SIGCHLD)}, unix.EPERM},
		{"clone3", unix.SYS_CLONE3, [6]uintptr{0, 0}, unix.ENOSYS},
		{"setns", unix.SYS_SETNS, [6]uintptr{bad, 0}, unix.EPERM},
		{"mount", unix.SYS_MOUNT, [6]uintptr{fs, path, fs, 0, 0}, unix.EPERM},
		{"umount2", unix.SYS_UMOUNT2, [6]uintptr{path, 0}, unix.EPERM},
		{"pivot_root", unix.SYS_PIVOT_ROOT, [6]uintptr{path, path}, unix.EPERM},
		{"move_mount", unix.SYS_MOVE_MOUNT, [6]uintptr{bad, path, bad, path, 0}, unix.EPERM},
		{"open_tree", unix.SYS_OPEN_TREE, [6]uintptr{bad, path, 0}, unix.EPERM},
		{"fsopen", unix.SYS_FSOPEN, [6]uintptr{fs, 0}, unix.EPERM},
		{"keyctl", unix.SYS_KEYCTL, [6]uintptr{unix.KEYCTL_GET_KEYRING_ID, bad, 0}, unix.EPERM},
		{"add_key", unix.SYS_ADD_KEY, [6]uintptr{0, 0, 0, 0, 0}, unix.EPERM},
		{"request_key", unix.SYS_REQUEST_KEY, [6]uintptr{0, 0, 0, 0}, unix.EPERM},
		{"bpf", unix.SYS_BPF, [6]uintptr{bad, 0, 0}, unix.EPERM},
		{"perf_event_open", unix.SYS_PERF_EVENT_OPEN, [6]uintptr{0, 0, bad, bad, 0}, unix.EPERM},
		{"kexec_load", unix.SYS_KEXEC_LOAD, [6]uintptr{0, 0, 0, 0x100}, unix.EPERM},
		{"kexec_file_load", unix.SYS_KEXEC_FILE_LOAD, [6]uintptr{bad, bad, 0, 0, 0x100}, unix.EPERM},
		{"init_module", unix.SYS_INIT_MODULE, [6]uintptr{0, 0, 0}, unix.EPERM},
		{"finit_module", unix.SYS_FINIT_MODULE, [6]uintptr{bad, 0, 0}, unix.EPERM},
		{"delete_module", unix.SYS_DELETE_MODULE, [6]uintptr{path, 0}, unix.EPERM},
		{"reboot", unix.SYS_REBOOT, [6]uintptr{0, 0, 0, 0}, unix.EPERM},
		{"swapon", unix.SYS_SWAPON, [6]uintptr{path, 0}, unix.EPERM},
		{"swapoff", unix.SYS_SWAPOFF, [6]uintptr{path}, unix.EPERM},
		{"acct", unix.SYS_ACCT, [6]uintptr{path}, unix.EPERM},
		{"settimeofday", unix.SYS_SETTIMEOFDAY, [6]uintptr{0, 0}, unix.EPERM},
		{"clock_settime", unix.SYS_CLOCK_SETTIME, [6]uintptr{unix.CLOCK_REALTIME, 0}, unix.EPERM},
		{"adjtimex", unix.SYS_ADJTIMEX, [6]uintptr{0}, unix.EPERM},
		{"userfaultfd", unix.SYS_USERFAULTFD, [6]uintptr{unix.O_CLOEXEC | 1}, unix.EPERM}, // UFFD_USER_MODE_ONLY
		{"open_by_handle_at", unix.SYS_OPEN_BY_HANDLE_AT, [6]uintptr{bad, 0, 0}, unix.EPERM},
		{"name_to_handle_at", unix.SYS_NAME_TO_HANDLE_AT, [6]uintptr{bad, path, 0, 0, 0}, unix.EPERM},
		{"process_vm_readv", unix.SYS_PROCESS_VM_READV, [6]uintptr{pid, 0, 0, 0, 0, 0}, unix.EPERM},
		{"process_vm_writev", unix.SYS_PROCESS_VM_WRITEV, [6]uintptr{pid, 0, 0, 0, 0, 0}, unix.EPERM},
		{"kcmp", unix.SYS_KCMP, [6]uintptr{pid, pid, 0, 0, 0}, unix.EPERM}, // KCMP_FILE
		{"syslog", unix.SYS_SYSLOG, [6]uintptr{10, 0, 0}, unix.EPERM},      // SYSLOG_ACTION_SIZE_BUFFER
		{"quotactl", unix.SYS_QUOTACTL, [6]uintptr{0, 0, 0, 0}, unix.EPERM},
		{"nfsservctl", unix.SYS_NFSSERVCTL, [6]uintptr{0, 0, 0}, unix.EPERM},
		{"lookup_dcookie", unix.SYS_LOOKUP_DCOOKIE, [6]uintptr{0, 0, 0}, unix.EPERM},
		{"sethostname", unix.SYS_SETHOSTNAME, [6]uintptr{path, 1 << 20}, unix.EPERM},
		{"socket(AF_ALG)", unix.SYS_SOCKET, [6]uintptr{unix.AF_ALG, unix.SOCK_SEQPACKET | unix.SOCK_CLOEXEC, 0}, unix.EPERM},
		{"socket(AF_VSOCK)", unix.SYS_SOCKET, [6]uintptr{unix.AF_VSOCK, unix.SOCK_STREAM | unix.SOCK_CLOEXEC, 0}, unix.EPERM},
		{"personality(ADDR_NO_RANDOMIZE)", unix.SYS_PERSONALITY, [6]uintptr{0x0040000}, unix.EPERM},
	}
	return append(probes, archProbes()...)
}

// seccompFilter checks that the dyno runs under a seccomp filter that refuses each call
// of sysProbes with EPERM (clone3 with ENOSYS), namespaces asked for through clone, and
// tracing.
func seccompFilter() (string, error) {
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return "", fmt.Errorf("failed to read /proc/self/status: %w", err)
	}
	var errs []error
	mode := grepLine(string(status), "Seccomp:")
	if strings.Fields(mode + " x")[1] != "2" {
		errs = append(errs, fmt.Errorf("no seccomp filter: %q", mode))
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	probes := sysProbes()
	for _, p := range probes {
		_, _, e := unix.Syscall6(p.nr, p.args[0], p.args[1], p.args[2], p.args[3], p.args[4], p.args[5])
		if e != p.want {
			errs = append(errs, fmt.Errorf("%s: got %q, want %q", p.name, errnoText(e), errnoText(p.want)))
		}
	}
	for _, flag := range []uintptr{unix.CLONE_NEWUSER, unix.CLONE_NEWNS, unix.CLONE_NEWNET, unix.CLONE_NEWPID} {
		cmd := exec.Command("/bin/true")
		cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: flag}
		if err := cmd.Run(); !errors.Is(err, unix.EPERM) {
			errs = append(errs, fmt.Errorf("fork/exec with clone flag %#x: got %v, want EPERM", flag, err))
		}
	}
	errs = append(errs, ptraceProbes()...)
	return fmt.Sprintf("%s; %d calls refused, clone with 4 namespace flags refused, ptrace attach and traceme refused",
		strings.Join(strings.Fields(mode), " "), len(probes)), errors.Join(errs...)
}

// ptraceProbes attaches to another process of the dyno and asks to be traced by its
// parent, from a child so that a traced process never execs.
func ptraceProbes() []error {
	var errs []error
	sleeper := exec.Command("/bin/sleep", "30")
	if err := sleeper.Start(); err != nil {
		return []error{fmt.Errorf("failed to start a process to trace: %w", err)}
	}
	defer func() { _ = sleeper.Process.Kill(); _ = sleeper.Wait() }()
	if err := unix.PtraceAttach(sleeper.Process.Pid); err != unix.EPERM {
		errs = append(errs, fmt.Errorf("ptrace(PTRACE_ATTACH) of pid %d: got %v, want EPERM", sleeper.Process.Pid, err))
	}
	self, _ := os.Executable()
	out, err := exec.Command(self, "traceme").CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "EPERM" {
		errs = append(errs, fmt.Errorf("ptrace(PTRACE_TRACEME): got %q (%v), want EPERM", out, err))
	}
	return errs
}

func traceme() {
	_, _, e := unix.RawSyscall(unix.SYS_PTRACE, unix.PTRACE_TRACEME, 0, 0)
	fmt.Println(errnoText(e))
}

func errnoText(e unix.Errno) string {
	if e == 0 {
		return "success"
	}
	return unix.ErrnoName(e)
}

// ordinaryCalls checks that what programs do every day still works under the filter:
// fork and exec, threads, TCP and Unix sockets, the personality query.
func ordinaryCalls() (string, error) {
	var errs []error
	if out, err := exec.Command("/bin/sh", "-c", "echo $(( 6 * 7 ))").Output(); err != nil || string(out) != "42\n" {
		errs = append(errs, fmt.Errorf("sh -c: %q, %v", out, err))
	}
	var wg sync.WaitGroup
	tids := make(chan int, 4)
	release := make(chan struct{})
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			runtime.LockOSThread()
			tids <- unix.Gettid()
			<-release
		}()
	}
	seen := map[int]bool{}
	for i := 0; i < 4; i++ {
		seen[<-tids] = true
	}
	close(release)
	wg.Wait()
	if len(seen) != 4 {
		errs = append(errs, fmt.Errorf("4 locked goroutines ran on %d threads", len(seen)))
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		errs = append(errs, fmt.Errorf("listen: %w", err))
	} else {
		go func() {
			if c, err := ln.Accept(); err == nil {
				_, _ = c.Write([]byte("hi"))
				c.Close()
			}
		}()
		c, err := net.DialTimeout("tcp", ln.Addr().String(), 5*time.Second)
		if err != nil {
			errs = append(errs, fmt.Errorf("connect: %w", err))
		} else {
			buf := make([]byte, 2)
			_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
			if _, err := c.Read(buf); err != nil || string(buf) != "hi" {
				errs = append(errs, fmt.Errorf("read over TCP: %q, %v", buf, err))
			}
			c.Close()
		}
		ln.Close()
	}
	if fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM, 0); err != nil {
		errs = append(errs, fmt.Errorf("socketpair: %w", err))
	} else {
		unix.Close(fds[0])
		unix.Close(fds[1])
	}
	if _, _, e := unix.Syscall(unix.SYS_PERSONALITY, 0xffffffff, 0, 0); e != 0 {
		errs = append(errs, fmt.Errorf("personality query: %v", e))
	}
	return "fork/exec, 4 threads, TCP connect, socketpair and personality query work", errors.Join(errs...)
}
