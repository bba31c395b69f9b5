package multihost

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// ip runs `ip args...` and returns its combined output.
func ip(args ...string) (string, error) {
	out, err := exec.Command("ip", args...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("failed to run ip %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return string(out), nil
}

// netnsInode is the inode that identifies the network namespace named ns.
func netnsInode(ns string) (uint64, error) {
	var st syscall.Stat_t
	if err := syscall.Stat(filepath.Join("/run/netns", ns), &st); err != nil {
		return 0, fmt.Errorf("failed to find network namespace %s: %w", ns, err)
	}
	return st.Ino, nil
}

// pidsInNS lists the processes whose network namespace is ns: every process of a host.
func pidsInNS(ns string) []int {
	ino, err := netnsInode(ns)
	if err != nil {
		return nil
	}
	links, _ := filepath.Glob("/proc/[0-9]*/ns/net")
	var pids []int
	for _, l := range links {
		var st syscall.Stat_t
		if syscall.Stat(l, &st) != nil || st.Ino != ino {
			continue
		}
		pid, err := strconv.Atoi(filepath.Base(filepath.Dir(filepath.Dir(l))))
		if err == nil && pid != os.Getpid() {
			pids = append(pids, pid)
		}
	}
	return pids
}

// killNS SIGKILLs every process of the namespace until none is left (a process may fork
// while it is being killed) or the deadline passes. It returns how many it killed.
func killNS(ns string, within time.Duration) (int, error) {
	killed := map[int]bool{}
	for end := time.Now().Add(within); ; {
		pids := pidsInNS(ns)
		if len(pids) == 0 {
			return len(killed), nil
		}
		if time.Now().After(end) {
			return len(killed), fmt.Errorf("processes %v of namespace %s survive SIGKILL", pids, ns)
		}
		for _, p := range pids {
			if syscall.Kill(p, syscall.SIGKILL) == nil {
				killed[p] = true
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// unmountBelow detaches every mount point below dir, deepest first.
func unmountBelow(dir string) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return
	}
	defer f.Close()
	var points []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) >= 5 && strings.HasPrefix(fields[4], dir+"/") {
			points = append(points, fields[4])
		}
	}
	sort.Slice(points, func(i, j int) bool { return len(points[i]) > len(points[j]) })
	for _, p := range points {
		_ = unix.Unmount(p, unix.MNT_DETACH)
	}
}

// removeCgroupTree kills the processes of the cgroup parent and of its children (the
// host's dynos, each in a network namespace of its own, which killNS does not reach),
// then removes the cgroup in every hierarchy, children first.
func removeCgroupTree(parent string) error {
	roots, _ := filepath.Glob(filepath.Join("/sys/fs/cgroup", "*", parent))
	roots = append(roots, filepath.Join("/sys/fs/cgroup", parent))
	var dirs []string
	for _, root := range roots {
		_ = filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				dirs = append(dirs, p)
			}
			return nil
		})
	}
	sort.Slice(dirs, func(i, j int) bool { return strings.Count(dirs[i], "/") > strings.Count(dirs[j], "/") })
	for end := time.Now().Add(10 * time.Second); ; {
		var pids []int
		for _, d := range dirs {
			pids = append(pids, procsOf(d)...)
		}
		if len(pids) == 0 {
			break
		}
		if time.Now().After(end) {
			return fmt.Errorf("processes %v of cgroup %s survive SIGKILL", pids, parent)
		}
		for _, p := range pids {
			_ = syscall.Kill(p, syscall.SIGKILL)
		}
		time.Sleep(10 * time.Millisecond)
	}
	for _, d := range dirs {
		_ = os.Remove(d)
	}
	return nil
}

// procsOf lists the processes of the cgroup directory dir.
func procsOf(dir string) []int {
	b, err := os.ReadFile(filepath.Join(dir, "cgroup.procs"))
	if err != nil {
		return nil
	}
	var pids []int
	for _, f := range strings.Fields(string(b)) {
		if p, err := strconv.Atoi(f); err == nil {
			pids = append(pids, p)
		}
	}
	return pids
}

// cgroupProcs lists the processes of a cgroup (the pids hierarchy, or cgroups v2).
func cgroupProcs(rel string) []int {
	for _, base := range []string{"/sys/fs/cgroup/pids", "/sys/fs/cgroup"} {
		if _, err := os.Stat(filepath.Join(base, rel, "cgroup.procs")); err == nil {
			return procsOf(filepath.Join(base, rel))
		}
	}
	return nil
}
