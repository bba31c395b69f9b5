//go:build linux

package sandbox

import (
	"errors"
	"fmt"

	"github.com/hashicorp/nomad/client/lib/cgutil"
	"github.com/hashicorp/nomad/drivers/shared/executor"
	"github.com/opencontainers/runc/libcontainer/cgroups"
	lconfigs "github.com/opencontainers/runc/libcontainer/configs"
	"github.com/opencontainers/runc/libcontainer/specconv"
	"golang.org/x/sys/unix"
)

// containerConfig is the libcontainer configuration of one dyno. The root file system
// (cmd.TaskDir) is an empty skeleton the driver prepared; everything in it comes from the
// bind mounts the driver lists in cmd.Mounts, each read-only unless the driver said
// otherwise, and from the tmpfs of the dyno's writable folders (opts.Scratch). The root
// itself is read-only.
func containerConfig(cmd *executor.ExecCommand, opts Options) (*lconfigs.Config, error) {
	if cmd.TaskDir == "" {
		return nil, errors.New("sandbox root: the driver gave no root directory")
	}
	cfg := &lconfigs.Config{
		Rootfs:     cmd.TaskDir,
		Readonlyfs: true,
		// Mount events of the host reach the dyno, never the other way round.
		RootPropagation: unix.MS_SLAVE | unix.MS_REC,
		Namespaces: lconfigs.Namespaces{
			{Type: lconfigs.NEWNS},
			{Type: lconfigs.NEWPID},
			{Type: lconfigs.NEWIPC},
		},
		// No capabilities in any set, and no way to gain one through exec.
		Capabilities:    &lconfigs.Capabilities{},
		NoNewPrivileges: true,
		MaskPaths: []string{
			"/proc/acpi", "/proc/kcore", "/proc/keys", "/proc/latency_stats", "/proc/timer_list",
			"/proc/timer_stats", "/proc/sched_debug", "/proc/scsi",
		},
		ReadonlyPaths: []string{
			"/proc/asound", "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger",
		},
		Devices: specconv.AllowedDevices,
		Version: "1.0.0",
	}
	seccomp, err := seccompFilter()
	if err != nil {
		return nil, err
	}
	cfg.Seccomp = seccomp
	// The group's network namespace, made by Nomad; without one the dyno shares the
	// host's network.
	if cmd.NetworkIsolation != nil {
		if cmd.NetworkIsolation.Path == "" {
			return nil, errors.New("sandbox network: the driver gave a network namespace without a path")
		}
		cfg.Namespaces = append(cfg.Namespaces, lconfigs.Namespace{Type: lconfigs.NEWNET, Path: cmd.NetworkIsolation.Path})
	}
	// Dynos do not inherit the Nomad agent's OOM score adjustment.
	oomScoreAdj := 0
	cfg.OomScoreAdj = &oomScoreAdj

	const noExec = unix.MS_NOEXEC | unix.MS_NOSUID | unix.MS_NODEV
	cfg.Mounts = []*lconfigs.Mount{
		{Source: "proc", Destination: "/proc", Device: "proc", Flags: noExec},
		{Source: "tmpfs", Destination: "/dev", Device: "tmpfs", Flags: unix.MS_NOSUID | unix.MS_STRICTATIME, Data: "mode=755,size=65536k"},
		{Source: "devpts", Destination: "/dev/pts", Device: "devpts", Flags: unix.MS_NOSUID | unix.MS_NOEXEC, Data: "newinstance,ptmxmode=0666,mode=0620"},
		{Source: "shm", Destination: "/dev/shm", Device: "tmpfs", Flags: noExec, Data: "mode=1777,size=65536k"},
		{Source: "mqueue", Destination: "/dev/mqueue", Device: "mqueue", Flags: noExec},
	}
	for _, m := range cmd.Mounts {
		flags := unix.MS_BIND | unix.MS_REC | unix.MS_NOSUID | unix.MS_NODEV
		if m.Readonly {
			flags |= unix.MS_RDONLY
		}
		cfg.Mounts = append(cfg.Mounts, &lconfigs.Mount{
			Source:           m.HostPath,
			Destination:      m.TaskPath,
			Device:           "bind",
			Flags:            flags,
			PropagationFlags: []int{unix.MS_PRIVATE | unix.MS_REC},
		})
	}
	// The dyno's writable folders: a tmpfs each, over the read-only /app, so that their
	// files are in the dyno's memory (charged to its cgroup) and never on the host's
	// disk. Executables stay allowed there, as in any app directory.
	for _, dir := range opts.Scratch.Dirs {
		cfg.Mounts = append(cfg.Mounts, &lconfigs.Mount{
			Source:           "tmpfs",
			Destination:      dir,
			Device:           "tmpfs",
			Flags:            unix.MS_NOSUID | unix.MS_NODEV,
			Data:             opts.Scratch.MountData(),
			PropagationFlags: []int{unix.MS_PRIVATE | unix.MS_REC},
		})
	}

	res, err := cgroupResources(cmd, opts)
	if err != nil {
		return nil, err
	}
	cfg.Cgroups = &lconfigs.Cgroup{Path: opts.CgroupPath, Resources: res}
	return cfg, nil
}

// cgroupResources bounds the dyno: the task's memory (no swap), its CPU shares, one core
// (opts.Cpuset, set by the driver from the cores Nomad reserved) and a process count.
func cgroupResources(cmd *executor.ExecCommand, opts Options) (*lconfigs.Resources, error) {
	res := &lconfigs.Resources{
		CpusetCpus: opts.Cpuset,
		PidsLimit:  opts.PidsLimit,
	}
	for _, d := range specconv.AllowedDevices {
		rule := d.Rule
		res.Devices = append(res.Devices, &rule)
	}
	if cmd.Resources == nil || cmd.Resources.NomadResources == nil {
		return nil, errors.New("sandbox resources: the driver gave no task resources")
	}
	nr := cmd.Resources.NomadResources
	hard, soft := MemoryLimitMB(nr), nr.Memory.MemoryMB
	if nr.Memory.MemoryMaxMB <= 0 {
		soft = 0
	}
	if hard <= 0 {
		return nil, fmt.Errorf("sandbox resources: memory %d MB is not a limit", hard)
	}
	res.Memory = hard * 1024 * 1024
	res.MemoryReservation = soft * 1024 * 1024
	res.MemorySwappiness = cgutil.MaybeDisableMemorySwappiness()
	if shares := nr.Cpu.CpuShares; shares >= 2 {
		res.CpuShares = uint64(shares)
		res.CpuWeight = cgroups.ConvertCPUSharesToCgroupV2Value(uint64(shares))
	}
	return res, nil
}
