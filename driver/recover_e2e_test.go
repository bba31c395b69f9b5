package driver_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	nomadapi "github.com/hashicorp/nomad/api"
	"github.com/shoenig/test/must"

	"github.com/dynogrid/dynogrid/internal/devgrid"
	"github.com/dynogrid/dynogrid/internal/testutil"
)

// TestE2E_PluginRestart kills the dyno plugin under a running dyno: Nomad starts the
// plugin again, which re-attaches to the dyno (RecoverTask); the dyno keeps running, no
// restart is counted, and stopping the job still stops it gracefully.
func TestE2E_PluginRestart(t *testing.T) {
	t.Parallel()
	g, c := grid(t)
	group := nomadapi.NewTaskGroup("web", 1)
	group.AddTask(dynoTask("web", map[string]interface{}{
		"command": "/bin/sh",
		"args":    []string{"-c", `trap 'echo got-term; exit 0' TERM; echo ready; while :; do sleep 0.1; done`},
	}, nil, 64, 0))
	register(t, c, "recover", "service", group)
	a := waitAlloc(t, c, "recover", "web", 2*time.Minute, taskRunning("web"))
	nomadPid := agent(t, g, "nomad").PID
	plugin := pluginPid(nomadPid)
	must.Positive(t, plugin, must.Sprint("no nomad-driver-dyno process under the Nomad agent"))
	must.NoError(t, syscall.Kill(plugin, syscall.SIGKILL))

	// Nomad runs the plugin again and the task runner re-attaches to the dyno.
	deadline := time.Now().Add(60 * time.Second)
	testutil.WaitFor(t, time.Until(deadline), "Nomad to start the dyno plugin again", func() bool {
		p := pluginPid(nomadPid)
		return p > 0 && p != plugin
	})
	// The new plugin logs (into the agent's log) that it re-attached to the dyno.
	testutil.WaitFor(t, time.Until(deadline), "the dyno plugin to recover the dyno", func() bool {
		return strings.Contains(readFile(agent(t, g, "nomad").Log), "dyno recovered")
	})
	a, _, err := c.Allocations().Info(a.ID, nil)
	must.NoError(t, err)
	ts := a.TaskStates["web"]
	must.Eq(t, "running", ts.State, must.Sprint(describeAlloc(a)))
	must.Zero(t, ts.Restarts)
	must.False(t, ts.Failed)

	// nomad alloc exec lands inside the recovered dyno's sandbox.
	var stdout, stderr bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	code, err := c.Allocations().Exec(ctx, a, "web", false,
		[]string{"/bin/sh", "-c", "id -u; pwd; grep ^Seccomp: /proc/self/status; cat /proc/1/cmdline | tr '\\0' ' '; touch /app/x"},
		strings.NewReader(""), &stdout, &stderr, nil, nil)
	cancel()
	must.NoError(t, err)
	must.Eq(t, 1, code, must.Sprintf("stderr: %s", stderr.String()))
	must.StrHasPrefix(t, "65534\n/app\nSeccomp:\t2\n/bin/sh -c trap", stdout.String())
	must.StrContains(t, stderr.String(), "Read-only file system")

	_, _, err = c.Jobs().Deregister("recover", false, nil)
	must.NoError(t, err)
	a = waitAlloc(t, c, "recover", "web", time.Minute, taskDead("web"))
	testutil.WaitFor(t, 10*time.Second, "got-term from the recovered dyno, which gets the kill signal", func() error {
		if out := taskLog(t, c, a, "web", "stdout"); !strings.Contains(out, "got-term") {
			return fmt.Errorf("stdout: %q", out)
		}
		return nil
	})
}

// agent is the grid's agent called name.
func agent(t *testing.T, g *devgrid.Grid, name string) devgrid.Agent {
	t.Helper()
	a, err := g.Agent(name)
	must.NoError(t, err)
	return a
}

func readFile(p string) string {
	b, _ := os.ReadFile(p)
	return string(b)
}

// pluginPid is the pid of the nomad-driver-dyno plugin process whose parent is the
// Nomad agent, or 0.
func pluginPid(parent int) int {
	procs := testutil.ReadProcesses()
	for _, kid := range procs.Children(parent) {
		if procs[kid].Name == "nomad-driver-dy" {
			return kid
		}
	}
	return 0
}
