//go:build linux

package sandbox

import (
	"fmt"
	"runtime"
	"slices"
	"testing"

	lconfigs "github.com/opencontainers/runc/libcontainer/configs"
	"github.com/shoenig/test/must"
	"golang.org/x/sys/unix"
)

// seccompCase is a system call with its first argument and what the filter must do.
type seccompCase struct {
	name string
	arg0 uint64
	want string // "allow", or the errno the call fails with
}

// seccompCases holds the calls of every architecture; seccompArchCases adds the calls
// only some architectures have.
var seccompCases = []seccompCase{
	// Namespaces.
	{"unshare", unix.CLONE_NEWUSER, "EPERM"},
	{"unshare", unix.CLONE_NEWNS, "EPERM"},
	{"unshare", unix.CLONE_NEWNET, "EPERM"},
	{"unshare", unix.CLONE_NEWPID, "EPERM"},
	{"unshare", unix.CLONE_NEWCGROUP, "EPERM"},
	{"clone", unix.CLONE_NEWUSER | uint64(unix.SIGCHLD), "EPERM"},
	{"clone", unix.CLONE_NEWNET | uint64(unix.SIGCHLD), "EPERM"},
	{"clone", unix.CLONE_NEWNS | unix.CLONE_NEWPID | uint64(unix.SIGCHLD), "EPERM"},
	{"clone3", 0, "ENOSYS"},
	{"setns", 0, "EPERM"},
	// Mounts.
	{"mount", 0, "EPERM"},
	{"umount2", 0, "EPERM"},
	{"pivot_root", 0, "EPERM"},
	{"move_mount", 0, "EPERM"},
	{"open_tree", 0, "EPERM"},
	{"fsopen", 0, "EPERM"},
	{"fsmount", 0, "EPERM"},
	{"fspick", 0, "EPERM"},
	{"fsconfig", 0, "EPERM"},
	{"mount_setattr", 0, "EPERM"},
	// Keys, BPF, performance counters, tracing.
	{"keyctl", 0, "EPERM"},
	{"add_key", 0, "EPERM"},
	{"request_key", 0, "EPERM"},
	{"bpf", 0, "EPERM"},
	{"perf_event_open", 0, "EPERM"},
	{"ptrace", unix.PTRACE_TRACEME, "EPERM"},
	{"ptrace", unix.PTRACE_ATTACH, "EPERM"},
	{"process_vm_readv", 0, "EPERM"},
	{"process_vm_writev", 0, "EPERM"},
	{"kcmp", 0, "EPERM"},
	{"pidfd_getfd", 0, "EPERM"},
	{"userfaultfd", 0, "EPERM"},
	// The kernel, modules, the machine.
	{"kexec_load", 0, "EPERM"},
	{"kexec_file_load", 0, "EPERM"},
	{"init_module", 0, "EPERM"},
	{"finit_module", 0, "EPERM"},
	{"delete_module", 0, "EPERM"},
	{"reboot", 0, "EPERM"},
	{"swapon", 0, "EPERM"},
	{"swapoff", 0, "EPERM"},
	{"acct", 0, "EPERM"},
	{"syslog", 0, "EPERM"},
	{"sethostname", 0, "EPERM"},
	{"setdomainname", 0, "EPERM"},
	{"quotactl", 0, "EPERM"},
	{"nfsservctl", 0, "EPERM"},
	{"lookup_dcookie", 0, "EPERM"},
	{"open_by_handle_at", 0, "EPERM"},
	{"name_to_handle_at", 0, "EPERM"},
	{"fanotify_init", 0, "EPERM"},
	// Clocks.
	{"settimeofday", 0, "EPERM"},
	{"clock_settime", 0, "EPERM"},
	{"adjtimex", 0, "EPERM"},
	{"clock_adjtime", 0, "EPERM"},
	// Execution domains: only Linux, 32-bit Linux and the query.
	{"personality", 0x0040000, "EPERM"}, // ADDR_NO_RANDOMIZE
	{"personality", 0x0400000, "EPERM"}, // READ_IMPLIES_EXEC
	{"personality", 0, "allow"},
	{"personality", 0x0008, "allow"},
	{"personality", 0x20000, "allow"}, // UNAME26
	{"personality", 0x20008, "allow"},
	{"personality", 0xffffffff, "allow"},
	// What ordinary programs do.
	{"clone", uint64(unix.SIGCHLD), "allow"},
	{"clone", unix.CLONE_VM | unix.CLONE_VFORK | uint64(unix.SIGCHLD), "allow"},
	{"clone", unix.CLONE_VM | unix.CLONE_FS | unix.CLONE_FILES | unix.CLONE_SIGHAND | unix.CLONE_THREAD |
		unix.CLONE_SYSVSEM | unix.CLONE_SETTLS | unix.CLONE_PARENT_SETTID | unix.CLONE_CHILD_CLEARTID, "allow"},
	{"execve", 0, "allow"},
	{"execveat", 0, "allow"},
	{"openat", 0, "allow"},
	{"read", 0, "allow"},
	{"write", 0, "allow"},
	{"mmap", 0, "allow"},
	{"mprotect", 0, "allow"},
	{"futex", 0, "allow"},
	{"socket", unix.AF_INET, "allow"},
	{"socket", unix.AF_INET6, "allow"},
	{"socket", unix.AF_UNIX, "allow"},
	{"socket", unix.AF_NETLINK, "allow"},
	{"socket", unix.AF_ALG, "EPERM"},
	{"socket", unix.AF_VSOCK, "EPERM"},
	{"connect", 0, "allow"},
	{"bind", 0, "allow"},
	{"listen", 0, "allow"},
	{"accept4", 0, "allow"},
	{"epoll_wait", 0, "allow"},
	{"wait4", 0, "allow"},
	{"kill", 0, "allow"},
	{"prctl", 0, "allow"},
	{"chdir", 0, "allow"},
	{"setuid", 0, "allow"}, // the kernel refuses it without capabilities
	{"capset", 0, "allow"},
	{"sched_setaffinity", 0, "allow"},
	{"io_uring_setup", 0, "EPERM"},
}

// filterAction is what the filter does with call name and first argument arg0, following
// libseccomp's rules: the first rule for the call whose argument comparisons all hold,
// else the default action.
func filterAction(t *testing.T, f *lconfigs.Seccomp, name string, arg0 uint64) string {
	t.Helper()
	for _, s := range f.Syscalls {
		if s.Name != name {
			continue
		}
		matches := true
		for _, a := range s.Args {
			must.Eq(t, 0, a.Index, must.Sprintf("%s: the filter compares argument %d", name, a.Index))
			switch a.Op {
			case lconfigs.EqualTo:
				matches = matches && arg0 == a.Value
			case lconfigs.MaskEqualTo:
				matches = matches && arg0&a.Value == a.ValueTwo
			case lconfigs.LessThan:
				matches = matches && arg0 < a.Value
			default:
				t.Fatalf("%s: comparison %v not handled by this test", name, a.Op)
			}
		}
		if matches {
			return action(t, s.Action, s.ErrnoRet)
		}
	}
	return action(t, f.DefaultAction, f.DefaultErrnoRet)
}

func action(t *testing.T, a lconfigs.Action, errno *uint) string {
	t.Helper()
	switch a {
	case lconfigs.Allow:
		return "allow"
	case lconfigs.Errno:
		must.NotNil(t, errno, must.Sprint("an errno action without an errno"))
		return unix.ErrnoName(unix.Errno(*errno))
	default:
		t.Fatalf("action %v: a dyno's filter only allows or fails calls", a)
		return ""
	}
}

func TestSeccompFilter_Actions(t *testing.T) {
	f, err := seccompProfile()
	must.NoError(t, err)
	must.Eq(t, lconfigs.Errno, f.DefaultAction)
	must.Eq(t, uint(unix.EPERM), *f.DefaultErrnoRet)
	for _, c := range append(seccompCases, seccompArchCases...) {
		t.Run(fmt.Sprintf("%s(%#x)", c.name, c.arg0), func(t *testing.T) {
			must.Eq(t, c.want, filterAction(t, f, c.name, c.arg0))
		})
	}
}

func TestSeccompFilter_Architectures(t *testing.T) {
	f, err := seccompProfile()
	must.NoError(t, err)
	want := map[string][]string{
		"amd64": {"amd64"},
		"arm64": {"arm64"},
	}[runtime.GOARCH]
	if want == nil {
		t.Skipf("no expectation for %s", runtime.GOARCH)
	}
	got := slices.Clone(f.Architectures)
	slices.Sort(got)
	slices.Sort(want)
	must.Eq(t, want, got)
}
