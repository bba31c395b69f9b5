//go:build linux && cgo && seccomp

package sandbox

import (
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"
	"unsafe"

	lconfigs "github.com/opencontainers/runc/libcontainer/configs"
	lseccomp "github.com/opencontainers/runc/libcontainer/seccomp"
	"github.com/shoenig/test/must"
	"golang.org/x/sys/unix"
)

// filteredErrno stands in for EPERM in the filter TestSeccompFilter_Kernel loads, so that
// a refusal by the filter cannot be mistaken for one by the kernel.
const filteredErrno = unix.EHWPOISON

var (
	probePath = []byte("/nonexistent-dyno-seccomp-probe\x00")
	probeFS   = []byte("tmpfs\x00")
)

// kernelProbe is a call with arguments that do nothing even when the call is allowed
// and the caller is root (a missing path, a bad descriptor, bad flags).
type kernelProbe struct {
	name string
	nr   uintptr
	args [6]uintptr
	want string // "filtered", "ENOSYS" or "allowed"
}

func kernelProbes() []kernelProbe {
	path := uintptr(unsafe.Pointer(&probePath[0]))
	fs := uintptr(unsafe.Pointer(&probeFS[0]))
	pid := uintptr(os.Getpid())
	bad := ^uintptr(0) // -1
	fdcwd := unix.AT_FDCWD
	return []kernelProbe{
		// unshare(CLONE_NEWUSER) in a threaded process and clone with CLONE_NEWUSER|CLONE_FS
		// fail with EINVAL in the kernel.
		{"unshare(CLONE_NEWUSER)", unix.SYS_UNSHARE, [6]uintptr{unix.CLONE_NEWUSER}, "filtered"},
		{"clone(CLONE_NEWUSER)", unix.SYS_CLONE, [6]uintptr{unix.CLONE_NEWUSER | unix.CLONE_FS | uintptr(unix.SIGCHLD)}, "filtered"},
		{"clone3", unix.SYS_CLONE3, [6]uintptr{0, 0}, "ENOSYS"},
		{"setns", unix.SYS_SETNS, [6]uintptr{bad, 0}, "filtered"},
		{"mount", unix.SYS_MOUNT, [6]uintptr{fs, path, fs, 0, 0}, "filtered"},
		{"umount2", unix.SYS_UMOUNT2, [6]uintptr{path, 0}, "filtered"},
		{"pivot_root", unix.SYS_PIVOT_ROOT, [6]uintptr{path, path}, "filtered"},
		{"move_mount", unix.SYS_MOVE_MOUNT, [6]uintptr{bad, path, bad, path, 0}, "filtered"},
		{"open_tree", unix.SYS_OPEN_TREE, [6]uintptr{bad, path, 0}, "filtered"},
		{"fsopen", unix.SYS_FSOPEN, [6]uintptr{path, 0}, "filtered"},
		{"keyctl", unix.SYS_KEYCTL, [6]uintptr{unix.KEYCTL_GET_KEYRING_ID, bad, 0}, "filtered"}, // KEY_SPEC_THREAD_KEYRING is -1
		{"add_key", unix.SYS_ADD_KEY, [6]uintptr{0, 0, 0, 0, 0}, "filtered"},
		{"request_key", unix.SYS_REQUEST_KEY, [6]uintptr{0, 0, 0, 0}, "filtered"},
		{"bpf", unix.SYS_BPF, [6]uintptr{bad, 0, 0}, "filtered"},
		{"perf_event_open", unix.SYS_PERF_EVENT_OPEN, [6]uintptr{0, 0, bad, bad, 0}, "filtered"},
		{"ptrace(PTRACE_PEEKDATA)", unix.SYS_PTRACE, [6]uintptr{unix.PTRACE_PEEKDATA, bad, 0, 0}, "filtered"},
		{"process_vm_readv", unix.SYS_PROCESS_VM_READV, [6]uintptr{pid, 0, 0, 0, 0, 0}, "filtered"},
		{"kcmp", unix.SYS_KCMP, [6]uintptr{pid, pid, 0, 0, 0}, "filtered"},
		{"userfaultfd", unix.SYS_USERFAULTFD, [6]uintptr{bad}, "filtered"},
		// 0x100 is no kexec flag: EINVAL before anything is loaded or unloaded.
		{"kexec_load", unix.SYS_KEXEC_LOAD, [6]uintptr{0, 0, 0, 0x100}, "filtered"},
		{"kexec_file_load", unix.SYS_KEXEC_FILE_LOAD, [6]uintptr{bad, bad, 0, 0, 0x100}, "filtered"},
		{"init_module", unix.SYS_INIT_MODULE, [6]uintptr{0, 0, 0}, "filtered"},
		{"finit_module", unix.SYS_FINIT_MODULE, [6]uintptr{bad, 0, 0}, "filtered"},
		{"delete_module", unix.SYS_DELETE_MODULE, [6]uintptr{path, 0}, "filtered"},
		{"reboot", unix.SYS_REBOOT, [6]uintptr{0, 0, 0, 0}, "filtered"},
		{"swapon", unix.SYS_SWAPON, [6]uintptr{path, 0}, "filtered"},
		{"swapoff", unix.SYS_SWAPOFF, [6]uintptr{path}, "filtered"},
		{"acct", unix.SYS_ACCT, [6]uintptr{path}, "filtered"},
		{"settimeofday", unix.SYS_SETTIMEOFDAY, [6]uintptr{0, 0}, "filtered"},
		{"clock_settime", unix.SYS_CLOCK_SETTIME, [6]uintptr{unix.CLOCK_REALTIME, 0}, "filtered"},
		{"adjtimex", unix.SYS_ADJTIMEX, [6]uintptr{0}, "filtered"},
		{"syslog", unix.SYS_SYSLOG, [6]uintptr{10, 0, 0}, "filtered"}, // SYSLOG_ACTION_SIZE_BUFFER
		{"sethostname", unix.SYS_SETHOSTNAME, [6]uintptr{path, 1 << 20}, "filtered"},
		{"quotactl", unix.SYS_QUOTACTL, [6]uintptr{0, 0, 0, 0}, "filtered"},
		{"nfsservctl", unix.SYS_NFSSERVCTL, [6]uintptr{0, 0, 0}, "filtered"},
		{"lookup_dcookie", unix.SYS_LOOKUP_DCOOKIE, [6]uintptr{0, 0, 0}, "filtered"},
		{"open_by_handle_at", unix.SYS_OPEN_BY_HANDLE_AT, [6]uintptr{bad, 0, 0}, "filtered"},
		{"name_to_handle_at", unix.SYS_NAME_TO_HANDLE_AT, [6]uintptr{bad, path, 0, 0, 0}, "filtered"},
		{"personality(ADDR_NO_RANDOMIZE)", unix.SYS_PERSONALITY, [6]uintptr{0x0040000}, "filtered"},
		{"personality(query)", unix.SYS_PERSONALITY, [6]uintptr{0xffffffff}, "allowed"},
		{"getpid", unix.SYS_GETPID, [6]uintptr{}, "allowed"},
		{"socket(AF_ALG)", unix.SYS_SOCKET, [6]uintptr{unix.AF_ALG, unix.SOCK_SEQPACKET | unix.SOCK_CLOEXEC, 0}, "filtered"},
		{"socket(AF_INET)", unix.SYS_SOCKET, [6]uintptr{unix.AF_INET, unix.SOCK_STREAM | unix.SOCK_CLOEXEC, 0}, "allowed"},
		{"openat", unix.SYS_OPENAT, [6]uintptr{uintptr(fdcwd), path, unix.O_RDONLY}, "allowed"},
	}
}

// TestSeccompFilter_Kernel loads the dyno's filter the way libcontainer does, in a child
// process (a filter cannot be removed), and makes each call of kernelProbes there, then
// starts /bin/true through clone and execve. It needs no root: no_new_privs suffices.
func TestSeccompFilter_Kernel(t *testing.T) {
	if os.Getenv("DYNO_SECCOMP_PROBE") == "1" {
		seccompProbeChild()
		return
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestSeccompFilter_Kernel$", "-test.count=1")
	cmd.Env = append(os.Environ(), "DYNO_SECCOMP_PROBE=1")
	out, err := cmd.CombinedOutput()
	must.NoError(t, err, must.Sprintf("%s", out))
	got := map[string]string{}
	for _, l := range strings.Split(string(out), "\n") {
		if f := strings.Fields(l); len(f) == 3 && f[0] == "probe" {
			got[f[1]] = f[2]
		}
	}
	for _, p := range kernelProbes() {
		r, ok := got[p.name]
		must.True(t, ok, must.Sprintf("no result for %s in:\n%s", p.name, out))
		switch p.want {
		case "filtered":
			must.Eq(t, unix.ErrnoName(filteredErrno), r, must.Sprintf("%s", p.name))
		case "allowed":
			must.NotEq(t, unix.ErrnoName(filteredErrno), r, must.Sprintf("%s", p.name))
			must.NotEq(t, "ENOSYS", r, must.Sprintf("%s", p.name))
		default:
			must.Eq(t, p.want, r, must.Sprintf("%s", p.name))
		}
	}
	must.Eq(t, "ok", got["exec(/bin/true)"], must.Sprintf("%s", out))
}

// loadFilterInChild loads the dyno's filter, as change leaves it, on the calling thread
// of a test's child process, the way libcontainer does (no_new_privs, then the filter),
// or prints the error and ends the process.
func loadFilterInChild(change func(*lconfigs.Seccomp)) {
	fail := func(err error) {
		fmt.Println("error", err)
		os.Exit(1)
	}
	f, err := seccompProfile()
	if err != nil {
		fail(err)
	}
	change(f)
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		fail(fmt.Errorf("failed to set no_new_privs: %w", err))
	}
	if _, err := lseccomp.InitSeccomp(f); err != nil {
		fail(err)
	}
}

func seccompProbeChild() {
	// The filter applies to this thread and what it starts.
	runtime.LockOSThread()
	loadFilterInChild(func(f *lconfigs.Seccomp) {
		marker := uint(filteredErrno)
		f.DefaultErrnoRet = &marker
	})
	for _, p := range kernelProbes() {
		r1, _, e := unix.Syscall6(p.nr, p.args[0], p.args[1], p.args[2], p.args[3], p.args[4], p.args[5])
		res := "ok"
		if e != 0 {
			res = unix.ErrnoName(e)
		} else if p.nr == unix.SYS_SOCKET {
			unix.Close(int(r1))
		}
		fmt.Printf("probe %s %s\n", strings.ReplaceAll(p.name, " ", "_"), res)
	}
	res := "ok"
	if err := exec.Command("/bin/true").Run(); err != nil {
		res = strings.ReplaceAll(err.Error(), " ", "_")
	}
	fmt.Printf("probe exec(/bin/true) %s\n", res)
	os.Exit(0)
}
