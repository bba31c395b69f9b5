package devgrid

import (
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// cgroupRoot is where cgroup hierarchies are mounted.
var cgroupRoot = "/sys/fs/cgroup"

// cgroupParents are the cgroups under which Nomad (its cpuset manager) and the dyno
// driver create one cgroup per task.
var cgroupParents = []string{"nomad", "dynogrid"}

// allocIDs lists the allocations the grid's Nomad client ran, from its data dir.
func (g *Grid) allocIDs() []string {
	entries, err := os.ReadDir(filepath.Join(g.Options.DataDir, "nomad", "alloc"))
	if err != nil {
		return nil
	}
	var ids []string
	for _, e := range entries {
		if e.IsDir() && len(e.Name()) == 36 {
			ids = append(ids, e.Name())
		}
	}
	return ids
}

// removeCgroups removes the empty cgroups that belonged to the grid's allocations, and
// then, if no other Nomad agent runs on this machine, the empty parents the grid's
// agent and driver created. A cgroup that still holds a process is left alone.
func removeCgroups(allocs []string, othersRunning bool, ownParent string) {
	if len(allocs) == 0 && othersRunning {
		return
	}
	hierarchies, _ := filepath.Glob(filepath.Join(cgroupRoot, "*"))
	hierarchies = append(hierarchies, cgroupRoot) // cgroups v2: one unified tree
	var dirs []string
	for _, h := range hierarchies {
		for _, parent := range append(cgroupParents, ownParent) {
			if parent == "" {
				continue
			}
			root := filepath.Join(h, parent)
			_ = filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
				if err != nil || !d.IsDir() {
					return nil
				}
				// With other agents running, only this grid's cgroups are touched.
				if !othersRunning || parent == ownParent || ownedBy(filepath.Base(p), allocs) {
					dirs = append(dirs, p)
				}
				return nil
			})
		}
	}
	// Deepest first, so children go before their parents.
	sort.Slice(dirs, func(i, j int) bool { return strings.Count(dirs[i], "/") > strings.Count(dirs[j], "/") })
	for _, d := range dirs {
		killCgroup(d)
		_ = os.Remove(d) // rmdir: fails, harmlessly, on a cgroup that is not empty
	}
}

// killCgroup SIGKILLs what is left in a dyno's cgroup once its Nomad client is gone,
// and waits briefly for the cgroup to empty.
func killCgroup(dir string) {
	for end := time.Now().Add(2 * time.Second); time.Now().Before(end); {
		b, err := os.ReadFile(filepath.Join(dir, "cgroup.procs"))
		pids := strings.Fields(string(b))
		if err != nil || len(pids) == 0 {
			return
		}
		for _, p := range pids {
			if pid, err := strconv.Atoi(p); err == nil {
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// killLeftovers SIGKILLs processes whose command line names the data directory: task
// executors that outlived the agent that started them.
func killLeftovers(dataDir string) {
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range procs {
		b, err := os.ReadFile(p)
		if err != nil || !strings.Contains(string(b), dataDir+"/") {
			continue
		}
		if pid, err := strconv.Atoi(filepath.Base(filepath.Dir(p))); err == nil && pid != os.Getpid() {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
}

func ownedBy(name string, allocs []string) bool {
	for _, a := range allocs {
		if strings.HasPrefix(name, a) {
			return true
		}
	}
	return false
}

// otherNomadRunning reports whether a Nomad agent other than the given pids runs here.
func otherNomadRunning(except map[int]bool) bool {
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range procs {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		args := strings.Split(string(b), "\x00")
		if len(args) < 2 || filepath.Base(args[0]) != "nomad" || args[1] != "agent" {
			continue
		}
		pid, _ := strconv.Atoi(filepath.Base(filepath.Dir(p)))
		if !except[pid] && processAlive(pid) {
			return true
		}
	}
	return false
}
