// Package sandbox holds one dyno: a small process, started from the driver's own binary,
// that builds the dyno's container with runc's libcontainer (bind mounts, namespaces,
// cgroups, no capabilities, no_new_privs), supervises its process and serves Nomad's
// executor protocol to the driver. It outlives the driver plugin, so a dyno keeps running
// while the plugin or the Nomad client restarts.
package sandbox

import (
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/hashicorp/nomad/nomad/structs"
)

// Subcommand is the first argument that turns the driver binary into a sandbox process.
const Subcommand = "dyno-sandbox"

// Options are the parts of a dyno's sandbox that Nomad's executor protocol does not carry.
// They travel to the sandbox process on its command line, as JSON.
type Options struct {
	// LogFile receives the sandbox process's own log.
	LogFile string `json:"log_file"`
	// LogLevel of that log.
	LogLevel string `json:"log_level"`
	// CPUTotalTicks is the host's compute (cores x MHz), for CPU percentages.
	CPUTotalTicks uint64 `json:"cpu_total_ticks"`
	// StateDir holds libcontainer's state of the dyno's container.
	StateDir string `json:"state_dir"`
	// ContainerID names the container (unique on the host).
	ContainerID string `json:"container_id"`
	// CgroupPath is the dyno's cgroup relative to the cgroup root(s), e.g.
	// "/dynogrid/<alloc>.<task>".
	CgroupPath string `json:"cgroup_path"`
	// Cpuset lists the cores the dyno is bound to ("1").
	Cpuset string `json:"cpuset"`
	// PidsLimit caps the number of processes and threads of the dyno.
	PidsLimit int64 `json:"pids_limit"`
	// Cwd is the working directory inside the sandbox (/app).
	Cwd string `json:"cwd"`
	// Logs says where the sandbox keeps the dyno's stdout and stderr; nil when the task
	// disabled its logs (Nomad then gives /dev/null as the dyno's stdout and stderr).
	Logs *Logs `json:"logs,omitempty"`
	// Scratch are the dyno's writable folders.
	Scratch Scratch `json:"scratch"`
}

// Scratch are the dyno's writable folders (/app/tmp, /app/log): each a tmpfs of its own,
// mounted in the dyno's mount namespace only (no host directory behind it), nosuid and
// nodev, mode 0700, owned by the dyno's user, of at most SizeBytes. A tmpfs's pages are
// charged to the memory cgroup of the process that writes them, so the folders' files
// count against the dyno's memory limit; they go with the dyno's mount namespace, when
// its last process ends.
type Scratch struct {
	// Dirs are the mount points inside the sandbox, in mount order.
	Dirs []string `json:"dirs"`
	// UID and GID own each folder.
	UID int `json:"uid"`
	GID int `json:"gid"`
	// SizeBytes bounds each folder (tmpfs size=); a write past it fails with ENOSPC.
	SizeBytes int64 `json:"size_bytes"`
}

func (s Scratch) validate() error {
	var errs []error
	if len(s.Dirs) == 0 {
		errs = append(errs, errors.New("sandbox option scratch.dirs: must name the dyno's writable folders"))
	}
	for _, d := range s.Dirs {
		if !filepath.IsAbs(d) || filepath.Clean(d) != d || d == "/" || strings.ContainsAny(d, ",\x00") {
			errs = append(errs, fmt.Errorf("sandbox option scratch.dirs: %q must be a clean absolute path below /", d))
		}
	}
	if s.UID <= 0 || s.GID < 0 {
		errs = append(errs, fmt.Errorf("sandbox option scratch.uid/gid: %d/%d must be the dyno's user, not root", s.UID, s.GID))
	}
	// tmpfs takes size=0 as no bound at all.
	if s.SizeBytes < 1<<20 {
		errs = append(errs, fmt.Errorf("sandbox option scratch.size_bytes: %d must be at least 1 MiB", s.SizeBytes))
	}
	return errors.Join(errs...)
}

// MountData is the tmpfs mount data of each folder.
func (s Scratch) MountData() string {
	return fmt.Sprintf("mode=0700,uid=%d,gid=%d,size=%d", s.UID, s.GID, s.SizeBytes)
}

// MemoryLimitMB is the dyno's hard memory limit in MiB: the task's memory_max, else its
// memory. It is what bounds the dyno's cgroup (no swap).
func MemoryLimitMB(nr *structs.AllocatedTaskResources) int64 {
	if nr == nil {
		return 0
	}
	if nr.Memory.MemoryMaxMB > 0 {
		return nr.Memory.MemoryMaxMB
	}
	return nr.Memory.MemoryMB
}

// Logs are the dyno's log files, which the sandbox writes as Nomad's log collector
// (logmon) would: <Dir>/<Task>.stdout.N and <Task>.stderr.N, rotated at MaxFileSizeMB
// and at most MaxFiles of each, read by Nomad's logs API (`nomad alloc logs`, `dyno
// logs`). The driver declares that it collects its tasks' logs, so Nomad starts no
// logmon process per dyno.
type Logs struct {
	// Dir is the allocation's log directory (alloc/logs).
	Dir string `json:"dir"`
	// Task names the files.
	Task          string `json:"task"`
	MaxFiles      int    `json:"max_files"`
	MaxFileSizeMB int    `json:"max_file_size_mb"`
}

func (l *Logs) validate() error {
	var errs []error
	if !filepath.IsAbs(l.Dir) {
		errs = append(errs, fmt.Errorf("sandbox option logs.dir: %q must be an absolute path", l.Dir))
	}
	if l.Task == "" || strings.ContainsAny(l.Task, "/\x00") || l.Task == "." || l.Task == ".." {
		errs = append(errs, fmt.Errorf("sandbox option logs.task: %q must be a task name, usable as a file name", l.Task))
	}
	if l.MaxFiles < 1 {
		errs = append(errs, fmt.Errorf("sandbox option logs.max_files: %d must be at least 1", l.MaxFiles))
	}
	if l.MaxFileSizeMB < 1 {
		errs = append(errs, fmt.Errorf("sandbox option logs.max_file_size_mb: %d must be at least 1", l.MaxFileSizeMB))
	}
	return errors.Join(errs...)
}

// Validate reports the first field that cannot work.
func (o Options) Validate() error {
	var errs []error
	for name, p := range map[string]string{"state_dir": o.StateDir, "cgroup_path": o.CgroupPath, "cwd": o.Cwd} {
		if !filepath.IsAbs(p) {
			errs = append(errs, fmt.Errorf("sandbox option %s: %q must be an absolute path", name, p))
		}
	}
	if o.ContainerID == "" {
		errs = append(errs, errors.New("sandbox option container_id: must not be empty"))
	}
	if o.Cpuset == "" {
		errs = append(errs, errors.New("sandbox option cpuset: must name at least one core"))
	}
	if o.PidsLimit < 1 {
		errs = append(errs, fmt.Errorf("sandbox option pids_limit: %d must be at least 1", o.PidsLimit))
	}
	if o.Logs != nil {
		errs = append(errs, o.Logs.validate())
	}
	errs = append(errs, o.Scratch.validate())
	return errors.Join(errs...)
}

func (o Options) encode() (string, error) {
	b, err := json.Marshal(o)
	if err != nil {
		return "", fmt.Errorf("failed to encode sandbox options: %w", err)
	}
	return string(b), nil
}

func decodeOptions(s string) (Options, error) {
	var o Options
	if err := json.Unmarshal([]byte(s), &o); err != nil {
		return o, fmt.Errorf("failed to decode sandbox options: %w", err)
	}
	return o, o.Validate()
}
