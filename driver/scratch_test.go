package driver

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/shoenig/test/must"
	"golang.org/x/sys/unix"
)

// TestDriver_ScratchIsBoundedAndInMemory fills a dyno's ./tmp from inside (the attack:
// dd of 300 MB into /app/tmp): the write stops at the folder's bound, half the dyno's
// memory limit, with ENOSPC; the bytes written are on the dyno's own tmpfs, charged to
// its memory cgroup, not on any host file system. ./tmp and ./log stay writable by the
// dyno's user, mode 0700, and an exec session (nomad alloc exec, dyno run) sees the same
// ./tmp as the dyno's process; another dyno sees none of it.
func TestDriver_ScratchIsBoundedAndInMemory(t *testing.T) {
	t.Parallel()
	h, d := newHarness(t)
	const boundMB = 64 // the test dyno has 128 MB
	task := shTask(t, `set -u
ls -ldn /app/tmp /app/log /tmp /var/tmp
echo mine > /app/tmp/mine && echo mine > /app/log/mine && echo mine > /tmp/via-tmp && echo wrote-small
dd if=/dev/zero of=/app/tmp/fill bs=1M count=300 2>/app/log/dd.err; echo "dd=$?"
cat /app/log/dd.err
echo "filled=$(wc -c < /app/tmp/fill)"
echo ready; exec sleep 1000`)
	start(t, h, task)
	out := waitForStdout(t, task, "ready", 60*time.Second)
	t.Logf("dyno:\n%s", out)

	// From inside: small writes work, the big one fails with ENOSPC at the bound.
	must.StrContains(t, out, "wrote-small")
	must.StrContains(t, out, "No space left on device")
	must.StrNotContains(t, out, "dd=0")
	filled := lineValue(t, out, "filled=")
	must.Positive(t, filled)
	must.LessEq(t, int64(boundMB<<20), filled, must.Sprint("./tmp took more than its bound"))
	must.Greater(t, int64(boundMB<<20)-(1<<20), filled, must.Sprint("./tmp stopped well before its bound"))
	// The folders belong to the dyno's user alone.
	u, err := lookupUser(d.config.User)
	must.NoError(t, err)
	for _, dir := range scratchDirs {
		var line string
		for _, l := range strings.Split(out, "\n") {
			if strings.HasPrefix(l, "d") && strings.HasSuffix(l, " "+dir) {
				line = l
			}
		}
		must.StrHasPrefix(t, fmt.Sprintf("drwx------ 2 %d %d ", u.UID, u.GID), line, must.Sprintf("ls -ldn %s", dir))
	}

	// From the host: ./tmp is the dyno's own tmpfs, of the bound, nosuid and nodev, and the
	// 64 MB are charged to the dyno's memory cgroup; no host file system holds them.
	th, ok := d.tasks.Get(task.ID)
	must.True(t, ok)
	must.Eq(t, "", th.state.PrivateDir)
	root := fmt.Sprintf("/proc/%d/root", th.state.Pid)
	for _, dir := range scratchDirs {
		var fs unix.Statfs_t
		must.NoError(t, unix.Statfs(root+dir, &fs))
		must.Eq(t, int64(unix.TMPFS_MAGIC), int64(fs.Type), must.Sprintf("%s is no tmpfs", dir))
		must.Eq(t, uint64(boundMB<<20), fs.Blocks*uint64(fs.Bsize), must.Sprintf("size of %s", dir))
		must.NotEq(t, int64(0), fs.Flags&unix.ST_NOSUID, must.Sprintf("%s is not nosuid", dir))
		must.NotEq(t, int64(0), fs.Flags&unix.ST_NODEV, must.Sprintf("%s is not nodev", dir))
	}
	fill, err := os.Stat(root + "/app/tmp/fill")
	must.NoError(t, err)
	must.Eq(t, filled, fill.Size())
	fillDev := fill.Sys().(*syscall.Stat_t).Dev
	for _, host := range []string{"/", os.TempDir(), d.config.DynoDir, d.config.SlugDir, task.TaskDir().Dir} {
		var st unix.Stat_t
		if err := unix.Stat(host, &st); err == nil {
			must.NotEq(t, st.Dev, fillDev, must.Sprintf("the dyno's ./tmp is on the file system of the host's %s", host))
		}
	}
	_, err = os.Stat(d.config.DynoDir)
	must.True(t, os.IsNotExist(err), must.Sprintf("the driver made %s: %v", d.config.DynoDir, err))
	must.LessEq(t, int64(1<<20), dirBytes(t, task.TaskDir().Dir), must.Sprint("the task directory grew"))
	shmem := memoryStat(t, th.state.CgroupPath, "shmem")
	must.GreaterEq(t, uint64(filled), shmem, must.Sprint("the dyno's memory cgroup is not charged for its ./tmp"))

	// An exec session sees the dyno's ./tmp, and writes there as the dyno's user.
	res, err := h.ExecTask(task.ID, []string{"/bin/sh", "-c", "cat /app/tmp/mine /tmp/via-tmp && echo exec > /app/log/exec && wc -c < /app/tmp/fill"}, 10*time.Second)
	must.NoError(t, err)
	must.Zero(t, res.ExitResult.ExitCode, must.Sprintf("exec: %s%s", res.Stdout, res.Stderr))
	must.Eq(t, fmt.Sprintf("mine\nmine\n%d\n", filled), string(res.Stdout))
	b, err := os.ReadFile(root + "/app/log/exec")
	must.NoError(t, err)
	must.Eq(t, "exec\n", string(b))

	// Another dyno has folders of its own, empty.
	other := shTask(t, `ls -A /app/tmp /app/log; test -e /app/tmp/fill || echo "no fill"; echo done`)
	start(t, h, other)
	must.Zero(t, wait(t, h, other.ID, 30*time.Second).ExitCode)
	must.Eq(t, "/app/log:\n\n/app/tmp:\nno fill\ndone\n", waitForStdout(t, other, "done", 10*time.Second))
}

// TestDriver_ScratchCountsAgainstMemory fills both of a dyno's folders: together they
// would hold its whole memory limit, so the OOM killer stops the dyno before its files
// pass its memory.
func TestDriver_ScratchCountsAgainstMemory(t *testing.T) {
	t.Parallel()
	h, _ := newHarness(t)
	task := shTask(t, `dd if=/dev/zero of=/app/tmp/fill bs=1M count=300 2>/dev/null
echo "tmp=$(wc -c < /app/tmp/fill)"
dd if=/dev/zero of=/app/log/fill bs=1M count=300; echo "log dd=$?"`)
	start(t, h, task)
	res := wait(t, h, task.ID, 60*time.Second)
	t.Logf("dyno:\n%s", stdout(t, task))
	must.True(t, res.OOMKilled, must.Sprintf("exit result %+v", res))
	must.StrContains(t, stdout(t, task), fmt.Sprintf("tmp=%d", 64<<20))
}

// lineValue is the number after prefix on a line of out.
func lineValue(t *testing.T, out, prefix string) int64 {
	t.Helper()
	for _, l := range strings.Split(out, "\n") {
		if v, ok := strings.CutPrefix(l, prefix); ok {
			n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			must.NoError(t, err)
			return n
		}
	}
	t.Fatalf("no line %q in:\n%s", prefix, out)
	return 0
}

// memoryStat reads a field of the memory cgroup's memory.stat (v1 and v2 both name the
// tmpfs pages "shmem").
func memoryStat(t *testing.T, cgPath, field string) uint64 {
	t.Helper()
	dir := memoryCgroupDir(cgPath)
	must.NotEq(t, "", dir)
	f, err := os.Open(filepath.Join(dir, "memory.stat"))
	must.NoError(t, err)
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), " "); ok && k == field {
			n, err := strconv.ParseUint(v, 10, 64)
			must.NoError(t, err)
			return n
		}
	}
	t.Fatalf("no %s in %s/memory.stat", field, dir)
	return 0
}

// dirBytes is the size of the regular files under dir.
func dirBytes(t *testing.T, dir string) int64 {
	t.Helper()
	var n int64
	must.NoError(t, filepath.Walk(dir, func(_ string, fi os.FileInfo, err error) error {
		if err == nil && fi.Mode().IsRegular() {
			n += fi.Size()
		}
		return nil
	}))
	return n
}
