package driver

import (
	"fmt"
	"os"
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
	// Each holds a FIFO open and waits. A copy of sh called nomad, given "logmon" to
	// run, has the command line of Nomad's log collector.
	bin := t.TempDir()
	shell, err := os.ReadFile("/bin/sh")
	must.NoError(t, err)
	must.NoError(t, os.WriteFile(filepath.Join(bin, "nomad"), shell, 0o755))
	must.NoError(t, os.WriteFile(filepath.Join(bin, "logmon"), []byte(`exec 3<>"$1"; read x <&3`+"\n"), 0o644))
	hold := func(fifo string, argv ...string) *exec.Cmd {
		cmd := exec.Command(argv[0], append(argv[1:], fifo)...)
		cmd.Dir = bin
		must.NoError(t, cmd.Start())
		t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
		// It holds the FIFO once its descriptor 3 names it.
		testutil.WaitFor(t, 10*time.Second, fmt.Sprintf("%v to open %s", argv, fifo), func() bool {
			return holdsAny(filepath.Join("/proc", itoa(cmd.Process.Pid)), map[string]bool{fifo: true})
		})
		return cmd
	}
	nomadLogmon := []string{filepath.Join(bin, "nomad"), "logmon"}
	collector := hold(task.StdoutPath, nomadLogmon...)
	// Another process holding the task's FIFO, whose arguments name logmon too.
	reader := hold(task.StderrPath, "/bin/sh", filepath.Join(bin, "logmon"))
	otherCollector := hold(other, nomadLogmon...)

	must.Eq(t, 1, stopNomadLogCollector(task))
	err = collector.Wait()
	exitErr, ok := err.(*exec.ExitError)
	must.True(t, ok, must.Sprintf("the collector ended with %v", err))
	must.Eq(t, syscall.SIGKILL, exitErr.Sys().(syscall.WaitStatus).Signal())
	for _, cmd := range []*exec.Cmd{reader, otherCollector} {
		must.NoError(t, unix.Kill(cmd.Process.Pid, 0), must.Sprintf("process %v was stopped", cmd.Args))
	}
}
