package driver

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"

	"github.com/hashicorp/nomad/plugins/drivers"
	"golang.org/x/sys/unix"
)

// stopNomadLogCollector kills the log collector (`nomad logmon`) that the Nomad client
// started for a dyno of an earlier version of the driver, which left the dyno's logs to
// Nomad. The driver now declares that it keeps dynos' logs, so the client no longer
// stops that process when the dyno ends: it would stay on the host for good, and read
// the FIFO of the task's next start, beside its sandbox. It is the process that runs
// `nomad logmon` and holds the task's stdout or stderr FIFO open; it returns how many it
// killed. Each is checked and killed through a pidfd opened first, so that a process
// that ended meanwhile, and another given its pid, is never the one killed.
func stopNomadLogCollector(cfg *drivers.TaskConfig) int {
	fifos := map[string]bool{}
	for _, p := range []string{cfg.StdoutPath, cfg.StderrPath} {
		if p != "" && p != os.DevNull {
			fifos[p] = true
		}
	}
	if len(fifos) == 0 {
		return 0
	}
	killed := 0
	procs, _ := filepath.Glob("/proc/[0-9]*")
	for _, proc := range procs {
		pid, err := strconv.Atoi(filepath.Base(proc))
		if err != nil || pid == os.Getpid() {
			continue
		}
		if killNomadLogmon(pid, proc, fifos) {
			killed++
		}
	}
	return killed
}

// killNomadLogmon kills process pid (proc: its /proc directory) when it is Nomad's log
// collector holding one of fifos. The pidfd is opened before /proc is read: if the
// process ends and its pid is reused meanwhile, /proc tells of the new one, but the
// signal goes to the process that ended and is lost.
func killNomadLogmon(pid int, proc string, fifos map[string]bool) bool {
	pidfd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		return false
	}
	defer unix.Close(pidfd)
	if !holdsAny(proc, fifos) {
		return false
	}
	cmdline, err := os.ReadFile(filepath.Join(proc, "cmdline"))
	if err != nil || !isNomadLogmon(cmdline) {
		return false
	}
	return unix.PidfdSendSignal(pidfd, unix.SIGKILL, nil, 0) == nil
}

// isNomadLogmon says whether cmdline (NUL-separated arguments) is Nomad's log
// collector: `nomad logmon`.
func isNomadLogmon(cmdline []byte) bool {
	args := bytes.Split(cmdline, []byte{0})
	return len(args) >= 2 && filepath.Base(string(args[0])) == "nomad" && string(args[1]) == "logmon"
}

// holdsAny says whether the process at proc (/proc/<pid>) has one of paths open.
func holdsAny(proc string, paths map[string]bool) bool {
	fds, err := os.ReadDir(filepath.Join(proc, "fd"))
	if err != nil {
		return false
	}
	for _, fd := range fds {
		if target, err := os.Readlink(filepath.Join(proc, "fd", fd.Name())); err == nil && paths[target] {
			return true
		}
	}
	return false
}
