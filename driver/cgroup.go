package driver

import (
	"bufio"
	"errors"
	"fmt"
	"hash/fnv"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/hashicorp/nomad/lib/cpuset"
	"github.com/hashicorp/nomad/plugins/drivers"
	"github.com/opencontainers/runc/libcontainer/cgroups"
)

const cgroupRoot = "/sys/fs/cgroup"

var unsafeCgroupChars = regexp.MustCompile(`[^A-Za-z0-9_.-]`)

// dynoCgroupPath is the cgroup of one dyno, relative to the cgroup root(s).
func dynoCgroupPath(parent, allocID, task string) string {
	return "/" + parent + "/" + allocID + "." + unsafeCgroupChars.ReplaceAllString(task, "_")
}

// reservedCores are the cores Nomad reserved for the task (resources { cores = 1 }).
func reservedCores(res *drivers.Resources) (cpuset.CPUSet, bool, error) {
	if res != nil && res.LinuxResources != nil && res.LinuxResources.CpusetCpus != "" {
		set, err := cpuset.Parse(res.LinuxResources.CpusetCpus)
		if err != nil {
			return set, false, fmt.Errorf("resources: reserved cores %q: %w", res.LinuxResources.CpusetCpus, err)
		}
		return set, true, nil
	}
	if res != nil && res.NomadResources != nil && len(res.NomadResources.Cpu.ReservedCores) > 0 {
		return cpuset.New(res.NomadResources.Cpu.ReservedCores...), true, nil
	}
	return cpuset.CPUSet{}, false, nil
}

// dedicatedWeight is what a dyno with a reserved core counts for on it, against 1 for
// a shared dyno: shared dynos go to a dedicated dyno's core only when every core has one.
const dedicatedWeight = 1000

// dynoCpuset is the set of cores a dyno is bound to: the cores Nomad reserved for the
// task; without a reservation, the one core of the host with the least load, where
// load counts the dynos bound to each core (a dedicated one for dedicatedWeight), ties
// broken by the allocation ID, so that dynos started together spread over the cores.
func dynoCpuset(res *drivers.Resources, allocID string, load map[int]int) (string, error) {
	set, ok, err := reservedCores(res)
	if err != nil || ok {
		return set.String(), err
	}
	online, err := onlineCPUs()
	if err != nil {
		return "", err
	}
	cores := online.ToSlice()
	h := fnv.New32a()
	h.Write([]byte(allocID))
	start := int(h.Sum32() % uint32(len(cores)))
	best := cores[start]
	for i := range cores {
		c := cores[(start+i)%len(cores)]
		if load[int(c)] < load[int(best)] {
			best = c
		}
	}
	return strconv.Itoa(int(best)), nil
}

func onlineCPUs() (cpuset.CPUSet, error) {
	b, err := os.ReadFile("/sys/devices/system/cpu/online")
	if err != nil {
		return cpuset.CPUSet{}, fmt.Errorf("failed to read online cpus: %w", err)
	}
	set, err := cpuset.Parse(strings.TrimSpace(string(b)))
	if err != nil {
		return cpuset.CPUSet{}, fmt.Errorf("failed to parse online cpus: %w", err)
	}
	if set.Size() == 0 {
		return set, errors.New("no online cpu")
	}
	return set, nil
}

// cgroupDirs lists the host directories of cgroup path: one per mounted v1 hierarchy, or
// the one unified v2 directory.
func cgroupDirs(path string) []string {
	if cgroups.IsCgroup2UnifiedMode() {
		return []string{filepath.Join(cgroupRoot, path)}
	}
	mounts, err := cgroups.GetCgroupMounts(false)
	if err != nil {
		return nil
	}
	seen := map[string]bool{}
	var dirs []string
	for _, m := range mounts {
		if seen[m.Mountpoint] || len(m.Subsystems) == 0 {
			continue
		}
		seen[m.Mountpoint] = true
		rel, err := filepath.Rel(m.Root, path)
		if err != nil || strings.HasPrefix(rel, "..") {
			rel = path
		}
		dirs = append(dirs, filepath.Join(m.Mountpoint, rel))
	}
	return dirs
}

// memoryCgroupDir is the directory that holds the memory controller's files of path.
func memoryCgroupDir(path string) string {
	if cgroups.IsCgroup2UnifiedMode() {
		return filepath.Join(cgroupRoot, path)
	}
	mnt, root, err := cgroups.FindCgroupMountpointAndRoot("", "memory")
	if err != nil {
		return ""
	}
	rel, err := filepath.Rel(root, path)
	if err != nil || strings.HasPrefix(rel, "..") {
		rel = path
	}
	return filepath.Join(mnt, rel)
}

// oomKills reads how many processes of the cgroup the kernel's OOM killer killed.
func oomKills(path string) (uint64, error) {
	dir := memoryCgroupDir(path)
	if dir == "" {
		return 0, errors.New("no memory cgroup")
	}
	file := "memory.oom_control"
	if cgroups.IsCgroup2UnifiedMode() {
		file = "memory.events"
	}
	f, err := os.Open(filepath.Join(dir, file))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), " ")
		if ok && k == "oom_kill" {
			return strconv.ParseUint(strings.TrimSpace(v), 10, 64)
		}
	}
	return 0, fmt.Errorf("no oom_kill counter in %s", file)
}

// cgroupPids lists the processes in the cgroup path.
func cgroupPids(path string) []int {
	var pids []int
	for _, d := range cgroupDirs(path) {
		b, err := os.ReadFile(filepath.Join(d, "cgroup.procs"))
		if err != nil {
			continue
		}
		for _, f := range strings.Fields(string(b)) {
			if pid, err := strconv.Atoi(f); err == nil {
				pids = append(pids, pid)
			}
		}
		if len(pids) > 0 {
			return pids
		}
	}
	return pids
}

// destroyCgroup kills every process left in the cgroup path and removes its directories.
// It is the fallback when the sandbox process is gone and cannot clean up itself.
func destroyCgroup(path string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		pids := cgroupPids(path)
		if len(pids) == 0 {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("processes %v of cgroup %s survived SIGKILL", pids, path)
		}
		for _, pid := range pids {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
		time.Sleep(20 * time.Millisecond)
	}
	var errs []error
	for _, d := range cgroupDirs(path) {
		if err := os.Remove(d); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, fmt.Errorf("failed to remove cgroup %s: %w", d, err))
		}
	}
	return errors.Join(errs...)
}
