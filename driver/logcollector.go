package driver

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"syscall"

	"github.com/hashicorp/nomad/plugins/drivers"
)

// stopNomadLogCollector kills the log collector (`nomad logmon`) that the Nomad client
// started for a dyno of an earlier version of the driver, which left the dyno's logs to
// Nomad. The driver now declares that it keeps dynos' logs, so the client no longer
// stops that process when the dyno ends: it would stay on the host for good, and read
// the FIFO of the task's next start, beside its sandbox. It is the process that runs
// `nomad logmon` and holds the task's stdout or stderr FIFO open; it returns how many it
// killed.
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
		if err != nil || pid == os.Getpid() || !holdsAny(proc, fifos) {
			continue
		}
		cmdline, err := os.ReadFile(filepath.Join(proc, "cmdline"))
		if err != nil || !isNomadLogmon(cmdline) {
			continue
		}
		if syscall.Kill(pid, syscall.SIGKILL) == nil {
			killed++
		}
	}
	return killed
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
