package driver_test

import (
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	nomadapi "github.com/hashicorp/nomad/api"
	"github.com/shoenig/test/must"

	"github.com/dynogrid/dynogrid/internal/testutil"
)

// TestE2E_EscapeSuite runs driver/testdata/escape in a dyno under a real Nomad agent,
// next to another dyno and a host process of the dynos' user, and expects every attempt
// to be contained, and the platform not to follow the symlinks the dyno planted.
func TestE2E_EscapeSuite(t *testing.T) {
	t.Parallel()
	g, c := grid(t)
	escape := buildStatic(t, "./driver/testdata/escape")
	slug, sum := packSlug(t, g, "", map[string]string{"bin/escape": escape})

	marker := filepath.Join(os.TempDir(), "dynogrid-e2e-marker-"+strconv.FormatInt(time.Now().UnixNano(), 36))
	must.NoError(t, os.WriteFile(marker, []byte("host secret"), 0o644))
	t.Cleanup(func() { os.Remove(marker) })
	victim := exec.Command("/bin/sleep", "600")
	victim.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	must.NoError(t, victim.Start())
	t.Cleanup(func() { _ = victim.Process.Kill(); _ = victim.Wait() })
	shadowBefore, err := os.Stat("/etc/shadow")
	must.NoError(t, err)

	token := "tok" + strconv.FormatInt(time.Now().UnixNano(), 36)
	neighbour := nomadapi.NewTaskGroup("web", 1)
	neighbour.AddTask(dynoTask("web", map[string]interface{}{
		"command": "/bin/sh",
		"args":    []string{"-c", `echo s3cret-$TOKEN > /app/tmp/secret.txt; echo ready; while :; do echo beat; sleep 0.2; done`},
	}, map[string]string{"TOKEN": token}, 64, 0))
	register(t, c, "neighbour", "service", neighbour)
	na := waitAlloc(t, c, "neighbour", "web", 2*time.Minute, taskRunning("web"))
	// The neighbour's ./tmp is a tmpfs of its own mount namespace, with no host directory:
	// the host reaches it through the neighbour's first process, in /proc.
	var otherTmp string
	testutil.WaitFor(t, 10*time.Second, "the neighbour's ./tmp/secret.txt", func() bool {
		otherTmp = dynoTmpOnHost(na.ID)
		_, err := os.Stat(filepath.Join(otherTmp, "secret.txt"))
		return otherTmp != "" && err == nil
	})
	for _, p := range []string{"/var/lib/dynogrid/dynos", filepath.Join(g.Options.DataDir, "*"), filepath.Join(g.Options.DataDir, "*", "*")} {
		m, _ := filepath.Glob(filepath.Join(p, na.ID+".web"))
		must.SliceEmpty(t, m, must.Sprint("the neighbour's ./tmp has a host directory"))
	}

	attack := nomadapi.NewTaskGroup("attack", 1)
	attack.AddTask(dynoTask("attack", map[string]interface{}{
		"command":     "/bin/sh",
		"args":        []string{"-c", "/app/bin/escape; echo exit=$?"},
		"slug":        slug,
		"slug_sha256": sum,
		"pids_limit":  64,
	}, map[string]string{
		"HOST_MARKER":  marker,
		"OTHER_TMP":    otherTmp,
		"OTHER_SECRET": "secret.txt",
		"OTHER_TOKEN":  token,
		"VICTIM_PID":   strconv.Itoa(victim.Process.Pid),
		"MEM_LIMIT_MB": "128",
		"PIDS_LIMIT":   "64",
	}, 128, 1))
	register(t, c, "attack", "batch", attack)
	aa := waitAlloc(t, c, "attack", "attack", 3*time.Minute, taskDead("attack"))
	var out string
	testutil.WaitFor(t, 10*time.Second, "the escape suite's exit= line", func() bool {
		out = taskLog(t, c, aa, "attack", "stdout")
		return strings.Contains(out, "exit=")
	})
	t.Logf("escape suite under Nomad:\n%s", out)
	must.StrContains(t, out, "exit=0")
	must.False(t, aa.TaskStates["attack"].Failed, must.Sprint(describeAlloc(aa)))
	must.StrContains(t, out, "affinity 1 cpu(s)")
	checkEscapeLines(t, out)

	// The platform does not follow what the dyno planted in ./log and ./tmp.
	for _, p := range []string{"attack/dyno/log/shadow", "attack/dyno/log/host-marker", "attack/dyno/tmp/other-secret", "attack/dyno/log/root/etc/shadow"} {
		r, err := c.AllocFS().Cat(aa, p, nil)
		if err == nil {
			b, _ := io.ReadAll(r)
			r.Close()
			must.StrNotContains(t, string(b), "host secret", must.Sprintf("nomad alloc fs %s", p))
			must.StrNotContains(t, string(b), "root:", must.Sprintf("nomad alloc fs %s", p))
			must.StrNotContains(t, string(b), token, must.Sprintf("nomad alloc fs %s", p))
		}
	}
	shadowAfter, err := os.Stat("/etc/shadow")
	must.NoError(t, err)
	must.Eq(t, shadowBefore.Mode(), shadowAfter.Mode())
	must.Eq(t, shadowBefore.Sys().(*syscall.Stat_t).Uid, shadowAfter.Sys().(*syscall.Stat_t).Uid)

	// Neighbours are unaffected.
	must.NoError(t, victim.Process.Signal(syscall.Signal(0)), must.Sprint("the host process of the dynos' user was killed"))
	b, err := os.ReadFile(filepath.Join(otherTmp, "secret.txt"))
	must.NoError(t, err)
	must.Eq(t, "s3cret-"+token+"\n", string(b))
	na, _, err = c.Allocations().Info(na.ID, nil)
	must.NoError(t, err)
	must.Eq(t, "running", na.TaskStates["web"].State)
	must.StrNotContains(t, taskLog(t, c, na, "web", "stderr"), "fork")
}

// escapeChecks are the attempts driver/testdata/escape makes.
var escapeChecks = []string{
	"write_outside_tmp_log", "write_tmp_log", "fill_tmp_log", "other_dyno_tmp", "chroot", "dotdot", "proc_root",
	"inherited_fds", "mount", "unshare", "setuid_binary", "raise_capabilities", "kill_outside",
	"fork_bomb", "memory_hog", "one_core", "plant_symlinks", "seccomp", "ordinary_calls",
}

func checkEscapeLines(t *testing.T, out string) {
	t.Helper()
	must.StrContains(t, out, "\ndone\n")
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, "ESCAPE") {
			t.Errorf("sandbox escape: %s", l)
		}
	}
	for _, name := range escapeChecks {
		must.StrContains(t, out, "ok "+name+":")
	}
}

// dynoTmpOnHost is the host's path to the ./tmp of allocation allocID's dyno:
// /proc/<pid>/root/app/tmp of the dyno's first process (PID 1 of its PID namespace, which
// lives as long as the dyno), or "" while there is none.
func dynoTmpOnHost(allocID string) string {
	procs, _ := filepath.Glob("/proc/[0-9]*")
	for _, p := range procs {
		env, err := os.ReadFile(filepath.Join(p, "environ"))
		if err != nil || !strings.Contains("\x00"+string(env), "\x00NOMAD_ALLOC_ID="+allocID+"\x00") {
			continue
		}
		status, err := os.ReadFile(filepath.Join(p, "status"))
		if err != nil {
			continue
		}
		for _, l := range strings.Split(string(status), "\n") {
			if f := strings.Fields(l); len(f) > 2 && f[0] == "NSpid:" && f[len(f)-1] == "1" {
				return filepath.Join(p, "root/app/tmp")
			}
		}
	}
	return ""
}
