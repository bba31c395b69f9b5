package driver

import (
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/nomad/plugins/drivers"
	"github.com/shoenig/test/must"
	"golang.org/x/sys/unix"

	"github.com/dynogrid/dynogrid/internal/testutil"
)

// The log collector of a dyno of an earlier driver is the logmon process that holds the
// dyno's FIFO: it is stopped, and no other process is, not another process holding the
// FIFO, nor another logmon.
func TestStopNomadLogCollector(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	task := &drivers.TaskConfig{StdoutPath: filepath.Join(dir, ".web.stdout.fifo"), StderrPath: filepath.Join(dir, ".web.stderr.fifo")}
	other := filepath.Join(dir, ".worker.stdout.fifo")
	for _, p := range []string{task.StdoutPath, task.StderrPath, other} {
		must.NoError(t, unix.Mkfifo(p, 0o600))
	}
	// Each holds a FIFO open and waits; the last word of its command line is its name.
	hold := func(fifo, name string) *exec.Cmd {
		cmd := exec.Command("/bin/sh", "-c", `exec 3<>"$1"; read x <&3`, name, fifo)
		must.NoError(t, cmd.Start())
		t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
		// It holds the FIFO once its descriptor 3 names it.
		testutil.WaitFor(t, 10*time.Second, name+" to open "+fifo, func() bool {
			return holdsAny(filepath.Join("/proc", itoa(cmd.Process.Pid)), map[string]bool{fifo: true})
		})
		return cmd
	}
	collector := hold(task.StdoutPath, "nomad-logmon")
	reader := hold(task.StderrPath, "tail")
	otherCollector := hold(other, "nomad-logmon")

	must.Eq(t, 1, stopNomadLogCollector(task))
	err := collector.Wait()
	exitErr, ok := err.(*exec.ExitError)
	must.True(t, ok, must.Sprintf("the collector ended with %v", err))
	must.Eq(t, syscall.SIGKILL, exitErr.Sys().(syscall.WaitStatus).Signal())
	for _, cmd := range []*exec.Cmd{reader, otherCollector} {
		must.NoError(t, unix.Kill(cmd.Process.Pid, 0), must.Sprintf("process %v was stopped", cmd.Args))
	}
}
