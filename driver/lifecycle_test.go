package driver

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/nomad/plugins/drivers"
	dproto "github.com/hashicorp/nomad/plugins/drivers/proto"
	"github.com/shoenig/test/must"

	"github.com/dynogrid/dynogrid/internal/testutil"
)

func TestDriver_StopTask_SignalThenKill(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name     string
		script   string
		grace    time.Duration
		wantCode int
		maxTime  time.Duration
		minTime  time.Duration
	}{
		// The app traps SIGTERM and exits cleanly: no need to wait for the grace period.
		{"traps term", `trap 'echo got-term; exit 7' TERM; echo ready; while :; do sleep 0.1; done`, 20 * time.Second, 7, 10 * time.Second, 0},
		// The app ignores SIGTERM: SIGKILL after the grace period.
		{"ignores term", `trap '' TERM; echo ready; while :; do sleep 0.1; done`, time.Second, 128 + 9, 10 * time.Second, time.Second},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h, _ := newHarness(t)
			task := shTask(t, tc.script)
			start(t, h, task)
			waitForStdout(t, task, "ready", 10*time.Second)
			began := time.Now()
			must.NoError(t, h.StopTask(task.ID, tc.grace, "SIGTERM"))
			res := wait(t, h, task.ID, 20*time.Second)
			took := time.Since(began)
			must.Eq(t, tc.wantCode, res.ExitCode, must.Sprintf("exit result %+v", res))
			must.Less(t, tc.maxTime, took)
			must.GreaterEq(t, tc.minTime, took)
		})
	}
}

func TestDriver_DestroyTask_LeavesNothing(t *testing.T) {
	t.Parallel()
	h, d := newHarness(t)
	// A process tree: the shell, a background child and a grandchild.
	task := shTask(t, `(sleep 1000 & sleep 1000) & echo ready; sleep 1000`)
	start(t, h, task)
	waitForStdout(t, task, "ready", 10*time.Second)
	th, ok := d.tasks.Get(task.ID)
	must.True(t, ok)
	cg := th.state.CgroupPath
	var pids []int
	testutil.WaitFor(t, 10*time.Second, "the 4 processes in the dyno's cgroup", func() error {
		if pids = cgroupPids(cg); len(pids) < 4 {
			return fmt.Errorf("pids in the cgroup: %v", pids)
		}
		return nil
	})
	must.SliceLen(t, 4, pids, must.Sprintf("pids in the dyno's cgroup: %v", pids))
	sandboxPid := th.pluginClient.ReattachConfig().Pid

	must.NoError(t, h.DestroyTask(task.ID, true))

	for _, pid := range append(pids, sandboxPid) {
		must.False(t, processAlive(pid), must.Sprintf("process %d survived DestroyTask", pid))
	}
	for _, dir := range cgroupDirs(cg) {
		_, err := os.Stat(dir)
		must.True(t, os.IsNotExist(err), must.Sprintf("cgroup %s survived DestroyTask", dir))
	}
	// The dyno's tmp and log were tmpfs of its mount namespace, gone with its processes;
	// nothing of them was on the host.
	must.Eq(t, "", th.state.PrivateDir)
	_, err := os.Stat(d.config.DynoDir)
	must.True(t, os.IsNotExist(err), must.Sprintf("the dyno left something in dyno_dir: %v", err))
	mi, err := os.ReadFile("/proc/self/mountinfo")
	must.NoError(t, err)
	must.StrNotContains(t, string(mi), filepath.Join(task.TaskDir().Dir, "dyno"))
	_, err = h.InspectTask(task.ID)
	must.ErrorContains(t, err, drivers.ErrTaskNotFound.Error())
}

func processAlive(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || i+2 >= len(s) || (s[i+2] != 'Z' && s[i+2] != 'X')
}

func TestDriver_SignalTask(t *testing.T) {
	t.Parallel()
	h, _ := newHarness(t)
	task := shTask(t, `trap 'echo got-usr1' USR1; echo ready; while :; do sleep 0.1; done`)
	start(t, h, task)
	waitForStdout(t, task, "ready", 10*time.Second)
	must.NoError(t, h.SignalTask(task.ID, "SIGUSR1"))
	waitForStdout(t, task, "got-usr1", 10*time.Second)
	must.Error(t, h.SignalTask(task.ID, "SIGNOPE"))
	st, err := h.InspectTask(task.ID)
	must.NoError(t, err)
	must.Eq(t, drivers.TaskStateRunning, st.State)
}

func TestDriver_ExecTask_InsideSandbox(t *testing.T) {
	t.Parallel()
	h, _ := newHarness(t)
	task := shTask(t, `echo ready; sleep 1000`)
	start(t, h, task)
	waitForStdout(t, task, "ready", 10*time.Second)
	res, err := h.ExecTask(task.ID, []string{"/bin/sh", "-c", `echo "$(id -u) $(pwd) $(cat /proc/1/cmdline | tr '\0' ' ')"; touch /etc/x 2>/dev/null && echo wrote-etc; grep ^Seccomp: /proc/self/status; /usr/bin/unshare -U true 2>/dev/null || echo unshare-refused; exit 3`}, 10*time.Second)
	must.NoError(t, err)
	must.Eq(t, 3, res.ExitResult.ExitCode)
	must.Eq(t, "65534 /app /bin/sh -c echo ready; sleep 1000 \nSeccomp:\t2\nunshare-refused\n", string(res.Stdout))
}

func TestDriver_TaskStats(t *testing.T) {
	t.Parallel()
	h, _ := newHarness(t)
	task := shTask(t, `echo ready; while :; do :; done`)
	start(t, h, task)
	waitForStdout(t, task, "ready", 10*time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ch, err := h.TaskStats(ctx, task.ID, 200*time.Millisecond)
	must.NoError(t, err)
	// A busy loop shows CPU in its samples, though on a loaded machine not in each one:
	// wait for a sample that shows it.
	var last *drivers.TaskResourceUsage
	for last == nil || last.ResourceUsage.CpuStats.Percent <= 10 {
		select {
		case last = <-ch:
		case <-ctx.Done():
			t.Fatalf("no sample with more than 10%% CPU within 10s; last: %+v", last)
		}
		must.NotNil(t, last)
		must.Positive(t, last.ResourceUsage.MemoryStats.Usage)
	}
}

func TestDriver_WaitTask_OOMKilled(t *testing.T) {
	t.Parallel()
	h, _ := newHarness(t)
	// tail buffers an endless line: it grows until the 128 MB limit kills it.
	task := shTask(t, `tail /dev/zero; echo "tail exited $?"; exit 1`)
	start(t, h, task)
	res := wait(t, h, task.ID, 60*time.Second)
	must.True(t, res.OOMKilled, must.Sprintf("exit result %+v", res))
	waitForStdout(t, task, "tail exited 137", 10*time.Second)
}

func TestDriver_ReservedCore(t *testing.T) {
	t.Parallel()
	h, _ := newHarness(t)
	task := shTask(t, `grep Cpus_allowed_list /proc/self/status`)
	task.Resources.NomadResources.Cpu.ReservedCores = []uint16{1}
	task.Resources.LinuxResources.CpusetCpus = "1"
	start(t, h, task)
	res := wait(t, h, task.ID, 30*time.Second)
	must.Zero(t, res.ExitCode)
	out := waitForStdout(t, task, "Cpus_allowed_list", 10*time.Second)
	must.StrContains(t, out, "Cpus_allowed_list:\t1\n")
}

func TestDriver_RecoverTask(t *testing.T) {
	t.Parallel()
	h, d := newHarness(t)
	task := shTask(t, `trap 'echo bye; exit 0' TERM; echo ready; while :; do sleep 0.1; done`)
	handle := start(t, h, task)
	waitForStdout(t, task, "ready", 10*time.Second)
	th, _ := d.tasks.Get(task.ID)
	pid := th.state.Pid

	// A new plugin process knows nothing but the handle Nomad kept.
	h2, d2 := newHarness(t)
	bad := handle.Copy()
	bad.Version = taskHandleVersion + 1
	must.ErrorContains(t, h2.RecoverTask(bad), "state version")
	must.NoError(t, h2.RecoverTask(handle))
	st, err := h2.InspectTask(task.ID)
	must.NoError(t, err)
	must.Eq(t, drivers.TaskStateRunning, st.State)
	must.True(t, processAlive(pid))
	th2, _ := d2.tasks.Get(task.ID)
	must.Eq(t, pid, th2.state.Pid)

	must.NoError(t, h2.StopTask(task.ID, 10*time.Second, "SIGTERM"))
	res := wait(t, h2, task.ID, 20*time.Second)
	must.Zero(t, res.ExitCode)
	must.NoError(t, h2.DestroyTask(task.ID, true))
	must.False(t, processAlive(pid))
}

func TestDriver_ExecTaskStreaming(t *testing.T) {
	t.Parallel()
	h, d := newHarness(t)
	task := shTask(t, `echo ready; sleep 1000`)
	start(t, h, task)
	waitForStdout(t, task, "ready", 10*time.Second)
	for _, tty := range []bool{false, true} {
		s := &execStream{exited: make(chan struct{}), input: []*drivers.ExecTaskStreamingRequestMsg{
			{Stdin: &dproto.ExecTaskStreamingIOOperation{Data: []byte("from stdin\n")}},
		}}
		if !tty {
			s.input = append(s.input, &drivers.ExecTaskStreamingRequestMsg{Stdin: &dproto.ExecTaskStreamingIOOperation{Close: true}})
		}
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		err := d.ExecTaskStreamingRaw(ctx, task.ID, []string{"/bin/sh", "-c",
			`id -u; pwd; grep ^Seccomp: /proc/self/status; test -t 0 && echo tty; read line; echo "got $line"; echo oops >&2; touch /usr/x; exit 4`}, tty, s)
		cancel()
		must.NoError(t, err)
		s.mu.Lock()
		must.Eq(t, 4, s.exit)
		if tty {
			// The terminal echoes the stdin line whenever it arrives, so only the order of
			// the command's own lines is fixed.
			out, at := s.stdout, 0
			for _, want := range []string{"65534\r\n", "/app\r\n", "Seccomp:\t2\r\n", "tty\r\n", "got from stdin"} {
				i := strings.Index(out[at:], want)
				must.NonNegative(t, i, must.Sprintf("%q after byte %d of the tty output %q", want, at, out))
				at += i + len(want)
			}
		} else {
			must.Eq(t, "65534\n/app\nSeccomp:\t2\ngot from stdin\n", s.stdout)
			must.StrContains(t, s.stderr, "oops")
			must.StrContains(t, s.stderr, "Read-only file system")
		}
		s.mu.Unlock()
	}
}

// execStream feeds an exec session its input and collects its output.
type execStream struct {
	input  []*drivers.ExecTaskStreamingRequestMsg
	next   int
	exited chan struct{} // closed when the command's exit arrives

	mu             sync.Mutex
	stdout, stderr string
	exit           int
}

func (s *execStream) Recv() (*drivers.ExecTaskStreamingRequestMsg, error) {
	if s.next >= len(s.input) {
		// Keep a TTY session open until the command ends.
		select {
		case <-s.exited:
		case <-time.After(30 * time.Second):
		}
		return nil, io.EOF
	}
	m := s.input[s.next]
	s.next++
	return m, nil
}

func (s *execStream) Send(m *drivers.ExecTaskStreamingResponseMsg) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case m.Stdout != nil && m.Stdout.Data != nil:
		s.stdout += string(m.Stdout.Data)
	case m.Stderr != nil && m.Stderr.Data != nil:
		s.stderr += string(m.Stderr.Data)
	case m.Exited && m.Result != nil:
		s.exit = int(m.Result.ExitCode)
		close(s.exited)
	}
	return nil
}

func TestDriver_Fingerprint(t *testing.T) {
	t.Parallel()
	h, _ := newHarness(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ch, err := h.Fingerprint(ctx)
	must.NoError(t, err)
	select {
	case fp := <-ch:
		must.Eq(t, drivers.HealthStateHealthy, fp.Health, must.Sprint(fp.HealthDescription))
		must.Eq(t, "nobody", *fp.Attributes["driver.dyno.user"].String)
		must.True(t, *fp.Attributes["driver.dyno"].Bool)
	case <-ctx.Done():
		t.Fatal("no fingerprint within 10s")
	}
}

// TestDriver_RestartSameTaskDir starts a task, destroys it and starts it again in the
// same task directory (what a Nomad restart does): the second run starts clean, with an
// empty ./tmp.
func TestDriver_RestartSameTaskDir(t *testing.T) {
	t.Parallel()
	h, _ := newHarness(t)
	task := shTask(t, `test -e /app/tmp/mark && exit 9; echo run > /app/tmp/mark; echo "done $DYNO"`)
	start(t, h, task)
	must.Zero(t, wait(t, h, task.ID, 30*time.Second).ExitCode)
	waitForStdout(t, task, "done web.1", 10*time.Second)
	must.NoError(t, h.DestroyTask(task.ID, false))

	again := *task
	again.ID = task.ID + "-2"
	_, _, err := h.StartTask(&again)
	must.NoError(t, err)
	t.Cleanup(func() { _ = h.DestroyTask(again.ID, true) })
	// Exit code 9 would mean the first run's ./tmp survived.
	must.Zero(t, wait(t, h, again.ID, 30*time.Second).ExitCode)
}

// TestDriver_DestroyTask_SandboxGone: when the sandbox process died (killed, OOM), the
// dyno's processes are orphans; DestroyTask still kills them and removes the cgroup.
func TestDriver_DestroyTask_SandboxGone(t *testing.T) {
	t.Parallel()
	h, d := newHarness(t)
	task := shTask(t, `echo ready; sleep 1000`)
	start(t, h, task)
	waitForStdout(t, task, "ready", 10*time.Second)
	th, _ := d.tasks.Get(task.ID)
	pids := cgroupPids(th.state.CgroupPath)
	must.SliceNotEmpty(t, pids)
	sandboxPid := th.pluginClient.ReattachConfig().Pid
	must.NoError(t, syscall.Kill(sandboxPid, syscall.SIGKILL))

	res := wait(t, h, task.ID, 30*time.Second)
	must.Error(t, res.Err, must.Sprintf("exit result %+v", res))
	must.NoError(t, h.DestroyTask(task.ID, true))
	for _, pid := range pids {
		must.False(t, processAlive(pid), must.Sprintf("dyno process %d survived", pid))
	}
	for _, dir := range cgroupDirs(th.state.CgroupPath) {
		_, err := os.Stat(dir)
		must.True(t, os.IsNotExist(err), must.Sprintf("cgroup %s survived", dir))
	}
}
