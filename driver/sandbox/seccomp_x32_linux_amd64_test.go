//go:build linux && cgo && seccomp

package sandbox

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"
	"time"

	lconfigs "github.com/opencontainers/runc/libcontainer/configs"
	"github.com/shoenig/test/must"
	"golang.org/x/sys/unix"
)

// x32SyscallBit marks a system call of the x32 ABI, made on x86-64 with x86-64's
// architecture in the filter's view.
const x32SyscallBit = 0x40000000

// TestSeccompFilter_KillsX32Calls loads the dyno's filter in a child process, as
// TestSeccompFilter_Kernel does, and makes getpid through the x32 ABI, an architecture
// the filter does not list: the call never returns (the filter kills the thread that
// made it), while a native getpid in the same process does.
func TestSeccompFilter_KillsX32Calls(t *testing.T) {
	if os.Getenv("DYNO_SECCOMP_X32") == "1" {
		x32Child()
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestSeccompFilter_KillsX32Calls$", "-test.count=1")
	cmd.Env = append(os.Environ(), "DYNO_SECCOMP_X32=1")
	out, err := cmd.CombinedOutput()
	must.NoError(t, err, must.Sprintf("%s", out))
	must.StrContains(t, string(out), "native getpid ok\n")
	must.StrContains(t, string(out), "x32 getpid did not return\n")
}

func x32Child() {
	fail := func(err error) {
		fmt.Println("error", err)
		os.Exit(1)
	}
	tids := make(chan int, 1)
	result := make(chan string, 1)
	go func() {
		// The filter applies to this thread only: the test's main thread goes on.
		runtime.LockOSThread()
		loadFilterInChild(func(*lconfigs.Seccomp) {})
		if pid, _, e := unix.Syscall(unix.SYS_GETPID, 0, 0, 0); e != 0 || int(pid) != os.Getpid() {
			fail(fmt.Errorf("native getpid under the filter: %d, %v", pid, e))
		}
		fmt.Println("native getpid ok")
		tids <- unix.Gettid()
		// Syscall, not RawSyscall: the runtime lets this thread go for the call, so the
		// process goes on without it if it never comes back.
		_, _, e := unix.Syscall(x32SyscallBit|unix.SYS_GETPID, 0, 0, 0)
		result <- strings.ToLower(unix.ErrnoName(e))
	}()
	task := fmt.Sprintf("/proc/self/task/%d", <-tids)
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case r := <-result:
			fmt.Println("x32 getpid returned", r)
			os.Exit(0)
		default:
		}
		if threadEnded(task) {
			fmt.Println("x32 getpid did not return")
			os.Exit(0)
		}
		time.Sleep(time.Millisecond) // polls the thread's end, with the deadline above
	}
	fmt.Println("the thread neither returned nor ended within 20 s")
	os.Exit(0)
}

// threadEnded says whether the thread at task (/proc/self/task/<tid>) is gone: no more
// there, or a zombie (the process's first thread stays one until the process ends).
func threadEnded(task string) bool {
	b, err := os.ReadFile(task + "/stat")
	if err != nil {
		return true
	}
	// tid (comm) state ...
	rest := string(b[strings.LastIndexByte(string(b), ')')+1:])
	f := strings.Fields(rest)
	return len(f) == 0 || f[0] == "Z" || f[0] == "X"
}
