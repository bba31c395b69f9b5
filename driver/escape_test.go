package driver

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/shoenig/test/must"

	"github.com/dynogrid/dynogrid/internal/testutil"
)

// TestDriver_EscapeSuite runs driver/testdata/escape inside a dyno next to another dyno
// and a host process of the same user, and expects every attempt to be contained. The
// same suite runs under a real Nomad agent in TestE2E_EscapeSuite.
func TestDriver_EscapeSuite(t *testing.T) {
	t.Parallel()
	requireRoot(t)
	bin := filepath.Join(t.TempDir(), "escape")
	build := exec.Command("go", "build", "-o", bin, "./testdata/escape")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	out, err := build.CombinedOutput()
	must.NoError(t, err, must.Sprintf("%s", out))

	marker := filepath.Join(os.TempDir(), "dynogrid-escape-marker-"+filepath.Base(t.TempDir()))
	must.NoError(t, os.WriteFile(marker, []byte("host secret"), 0o644))
	t.Cleanup(func() { os.Remove(marker) })

	victim := exec.Command("/bin/sleep", "600")
	victim.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	must.NoError(t, victim.Start())
	t.Cleanup(func() { _ = victim.Process.Kill(); _ = victim.Wait() })

	hv, dv := newHarness(t)
	token := "tok" + strconv.FormatInt(time.Now().UnixNano(), 36)
	other := shTask(t, `echo s3cret-$DYNO_TOKEN > /app/tmp/secret.txt; echo ready; while :; do echo beat; sleep 0.2; done`)
	other.Env["DYNO_TOKEN"] = token
	start(t, hv, other)
	waitForStdout(t, other, "ready", 10*time.Second)

	h, d := newHarness(t)
	slug, sum := makeSlugFromFiles(t, d.config.SlugStoreDir, map[string]string{"bin/escape": bin})
	task := newTask(t, TaskConfig{Command: "/bin/sh", Args: []string{"-c", "/app/bin/escape; echo exit=$?"}, Slug: slug, SlugSHA256: sum, PidsLimit: 64})
	task.Env["HOST_MARKER"] = marker
	oh, ok := dv.tasks.Get(other.ID)
	must.True(t, ok)
	// The neighbour's ./tmp has no host directory: the host reaches its tmpfs only
	// through the neighbour's processes, in /proc.
	otherTmp := filepath.Join("/proc", itoa(oh.state.Pid), "root/app/tmp")
	task.Env["OTHER_TMP"] = otherTmp
	task.Env["OTHER_SECRET"] = "secret.txt"
	task.Env["OTHER_TOKEN"] = token
	task.Env["VICTIM_PID"] = itoa(victim.Process.Pid)
	task.Env["MEM_LIMIT_MB"] = "128"
	task.Env["PIDS_LIMIT"] = "64"
	start(t, h, task)
	res := wait(t, h, task.ID, 2*time.Minute)
	got := waitForStdout(t, task, "exit=", 10*time.Second)
	t.Logf("escape suite:\n%s", got)
	must.Zero(t, res.ExitCode)
	checkEscapeOutput(t, got)

	must.Nil(t, victim.ProcessState, must.Sprint("the host victim process died"))
	must.NoError(t, victim.Process.Signal(syscall.Signal(0)))
	b, err := os.ReadFile(filepath.Join(otherTmp, "secret.txt"))
	must.NoError(t, err)
	must.Eq(t, "s3cret-"+token+"\n", string(b))
	beats := stdout(t, other)
	testutil.WaitFor(t, 5*time.Second, "the neighbour dyno to beat on", func() bool { return len(stdout(t, other)) > len(beats) })
}

// escapeChecks are the attempts driver/testdata/escape makes.
var escapeChecks = []string{
	"write_outside_tmp_log", "write_tmp_log", "fill_tmp_log", "other_dyno_tmp", "chroot", "dotdot", "proc_root",
	"inherited_fds", "mount", "unshare", "setuid_binary", "raise_capabilities", "kill_outside",
	"fork_bomb", "memory_hog", "one_core", "plant_symlinks", "seccomp", "ordinary_calls",
}

func checkEscapeOutput(t *testing.T, out string) {
	t.Helper()
	must.StrContains(t, out, "\ndone\n")
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, "ESCAPE") {
			t.Errorf("sandbox escape: %s", l)
		}
	}
	for _, c := range escapeChecks {
		must.StrContains(t, out, "ok "+c+":")
	}
}

func itoa(i int) string { return strconv.Itoa(i) }
