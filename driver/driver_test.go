package driver

import (
	"testing"
	"time"

	"github.com/shoenig/test/must"
)

func TestDriver_StartWait(t *testing.T) {
	t.Parallel()
	h, _ := newHarness(t)
	task := shTask(t, `echo "uid=$(id -u) cwd=$(pwd) dyno=$DYNO home=$HOME"; cat /proc/self/status | grep -E '^(NoNewPrivs|CapEff|CapBnd|Cpus_allowed_list)'; echo pid=$$`)
	start(t, h, task)
	res := wait(t, h, task.ID, 30*time.Second)
	out := waitForStdout(t, task, "pid=", 10*time.Second)
	t.Logf("stdout:\n%s", out)
	must.Zero(t, res.ExitCode, must.Sprintf("stdout: %s", out))
}
