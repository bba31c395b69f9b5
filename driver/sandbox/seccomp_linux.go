//go:build linux

package sandbox

import (
	"errors"
	"fmt"
	"runtime"
	"slices"

	"github.com/moby/profiles/seccomp"
	lconfigs "github.com/opencontainers/runc/libcontainer/configs"
	lseccomp "github.com/opencontainers/runc/libcontainer/seccomp"
	"github.com/opencontainers/runc/libcontainer/specconv"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// ErrNoSeccomp is the error of a driver built without seccomp support: libcontainer
// loads the filter through libseccomp only when built with cgo and the seccomp build tag.
var ErrNoSeccomp = errors.New("dyno driver was built without seccomp support (build it with cgo, libseccomp and -tags seccomp)")

// alsoDenied are system calls Docker's default profile allows to a process without
// capabilities and a dyno does not get: tracing or reading other processes (Docker allows
// them on kernels from 4.8), file handles, and reading the kernel's clock discipline.
var alsoDenied = []string{
	"ptrace", "process_vm_readv", "process_vm_writev", "kcmp", "pidfd_getfd",
	"name_to_handle_at", "adjtimex", "clock_adjtime", "clock_adjtime64",
}

// seccompFilter is the system-call filter of every process of a dyno (its first process,
// everything it starts, and exec sessions): Docker's default profile for a process with
// no capabilities, minus alsoDenied, on this machine's own architecture only. Docker's
// profile also lists the 32-bit variants; a dyno runs 64-bit programs, and each
// architecture listed makes the filter longer to build, at every dyno's start. A call
// the filter refuses fails with EPERM; clone3 fails with ENOSYS so that C libraries fall
// back to clone, whose namespace flags the filter can check; calls newer than libseccomp
// knows fail with ENOSYS. No call of the native architecture kills the process. A call
// of another architecture (a 32-bit or x32 call) kills the thread that made it
// (libseccomp's default for a foreign architecture, which runc leaves).
func seccompFilter() (*lconfigs.Seccomp, error) {
	if !lseccomp.Enabled {
		return nil, ErrNoSeccomp
	}
	return seccompProfile()
}

// seccompProfile is the filter's configuration, which libcontainer gives to libseccomp.
func seccompProfile() (*lconfigs.Seccomp, error) {
	// No capabilities: the profile leaves out every rule that needs one.
	spec := &specs.Spec{Process: &specs.Process{Capabilities: &specs.LinuxCapabilities{}}}
	profile, err := seccomp.GetDefaultProfile(spec)
	if err != nil {
		return nil, fmt.Errorf("failed to build the seccomp profile: %w", err)
	}
	rules := profile.Syscalls[:0]
	for _, r := range profile.Syscalls {
		if r.Action == specs.ActAllow {
			r.Names = slices.DeleteFunc(slices.Clone(r.Names), func(n string) bool { return slices.Contains(alsoDenied, n) })
			if len(r.Names) == 0 {
				continue
			}
		}
		rules = append(rules, r)
	}
	profile.Syscalls = rules
	cfg, err := specconv.SetupSeccomp(profile)
	if err != nil {
		return nil, fmt.Errorf("failed to convert the seccomp profile: %w", err)
	}
	cfg.Architectures = slices.DeleteFunc(cfg.Architectures, func(a string) bool { return a != runtime.GOARCH })
	if len(cfg.Architectures) == 0 {
		return nil, fmt.Errorf("the seccomp profile has no rules for this machine's architecture %s", runtime.GOARCH)
	}
	return cfg, nil
}
