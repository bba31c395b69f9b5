package driver

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/shoenig/test/must"
)

// TestDriver_StartTask_UndoesHalfWay fails a start after the sandbox process is up (the
// dyno's stdout cannot be opened): StartTask leaves no sandbox process, cgroup, private
// directory or task behind.
func TestDriver_StartTask_UndoesHalfWay(t *testing.T) {
	t.Parallel()
	h, d := newHarness(t)
	task := shTask(t, "echo never")
	t.Cleanup(h.MkAllocDir(task, false))
	task.StdoutPath = filepath.Join(task.TaskDir().LogDir, "missing", "stdout")
	task.StderrPath = task.StdoutPath

	_, _, err := h.StartTask(task)
	must.ErrorContains(t, err, "failed to launch the dyno")
	_, tracked := d.tasks.Get(task.ID)
	must.False(t, tracked, must.Sprint("the failed task is still tracked"))
	left, _ := os.ReadDir(d.config.DynoDir)
	must.SliceEmpty(t, left, must.Sprint("a failed start left the dyno's tmp and log behind"))
	cg := dynoCgroupPath(d.config.CgroupParent, task.AllocID, task.Name)
	for _, dir := range cgroupDirs(cg) {
		_, err := os.Stat(dir)
		must.True(t, os.IsNotExist(err), must.Sprintf("cgroup %s survived a failed start", dir))
	}
	must.SliceEmpty(t, processesMentioning(t, task.AllocID), must.Sprint("a sandbox process survived a failed start"))
}

// processesMentioning lists the command lines of this host's processes that contain s
// (a sandbox process carries its dyno's allocation ID in its options).
func processesMentioning(t *testing.T, s string) []string {
	t.Helper()
	procs, err := filepath.Glob("/proc/[0-9]*/cmdline")
	must.NoError(t, err)
	var found []string
	for _, p := range procs {
		b, err := os.ReadFile(p)
		if err != nil {
			continue // the process is gone
		}
		if cmd := strings.ReplaceAll(string(b), "\x00", " "); strings.Contains(cmd, s) {
			found = append(found, cmd)
		}
	}
	return found
}

// A dyno's environment names none of Nomad's directories, which are not in its sandbox,
// and gets the defaults it does not set.
func TestDynoEnv(t *testing.T) {
	t.Parallel()
	env := dynoEnv(map[string]string{"NOMAD_ALLOC_DIR": "/alloc", "NOMAD_TASK_DIR": "/local", "NOMAD_SECRETS_DIR": "/secrets",
		"NOMAD_ALLOC_ID": "a1", "HOME": "/home/x", "GREETING": "hi"})
	for _, k := range []string{"NOMAD_ALLOC_DIR", "NOMAD_TASK_DIR", "NOMAD_SECRETS_DIR"} {
		_, ok := env[k]
		must.False(t, ok, must.Sprintf("%s is in a dyno's environment", k))
	}
	must.Eq(t, map[string]string{"NOMAD_ALLOC_ID": "a1", "HOME": "/home/x", "GREETING": "hi", "PATH": defaultPath, "TMPDIR": "/app/tmp"}, env)
}
