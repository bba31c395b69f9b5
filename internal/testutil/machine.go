package testutil

import (
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// MachineState says how quiet the machine is, to print next to figures a benchmark
// measured: the load average, and how late a 1 ms kernel sleep wakes (the median and
// p99 of 200), which on a busy machine is what every wait of the measured code pays.
func MachineState() string {
	load := "?"
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		load = strings.Join(strings.Fields(string(b))[:3], " ")
	}
	late := make([]time.Duration, 200)
	for i := range late {
		start := time.Now()
		ts := unix.NsecToTimespec(int64(time.Millisecond))
		for unix.Nanosleep(&ts, &ts) == unix.EINTR {
		}
		late[i] = time.Since(start) - time.Millisecond
	}
	slices.Sort(late)
	return fmt.Sprintf("load average %s; a 1 ms sleep wakes %.0f us late (median), %.0f us (p99)",
		load, float64(late[len(late)/2])/1e3, float64(late[len(late)*99/100])/1e3)
}

// MachineCPU is the time the machine's cores have spent busy since it booted (user,
// nice, system, interrupts and steal, from /proc/stat; in steps of USER_HZ, 10 ms).
func MachineCPU() (time.Duration, error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, err
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 9 || f[0] != "cpu" {
		return 0, fmt.Errorf("/proc/stat: unexpected first line %q", line)
	}
	var ticks int64
	for i, v := range f[1:9] {
		if i == 3 || i == 4 { // idle, iowait
			continue
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("/proc/stat: %q: %w", line, err)
		}
		ticks += n
	}
	return time.Duration(ticks) * 10 * time.Millisecond, nil
}

// Processes is the CPU time of each process of the machine, by pid, from /proc: its
// own and that of its children that ended and were waited for.
type Processes map[int]ProcessCPU

// ProcessCPU is one process's name, parent, start and CPU time.
type ProcessCPU struct {
	Name string
	PPid int
	// Start is when the process started, in clock ticks after boot: with the pid it
	// names one process, whose name may change (a kernel worker's names its work).
	Start int64
	CPU   time.Duration
}

// ReadProcesses reads every process's CPU time (in steps of USER_HZ, 10 ms).
func ReadProcesses() Processes {
	out := Processes{}
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		// pid (comm) state ppid ... utime(14) stime(15) cutime(16) cstime(17)
		s := string(b)
		open, end := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
		if open < 0 || end < open {
			continue
		}
		f := strings.Fields(s[end+1:])
		if len(f) < 20 {
			continue
		}
		var ticks int64
		for _, v := range f[11:15] {
			n, _ := strconv.ParseInt(v, 10, 64)
			ticks += n
		}
		ppid, _ := strconv.Atoi(f[1])
		start, _ := strconv.ParseInt(f[19], 10, 64)
		out[pid] = ProcessCPU{Name: s[open+1 : end], PPid: ppid, Start: start, CPU: time.Duration(ticks) * 10 * time.Millisecond}
	}
	return out
}

// CPUByName is the CPU time processes spent from before to after, by process name: of
// processes in both, what they added; of new ones, all of theirs. A process that started
// and ended between the two counts for its parent, once waited for. Kernel workers
// count as one name, "kworker".
func CPUByName(before, after Processes) map[string]time.Duration {
	out := map[string]time.Duration{}
	for pid, a := range after {
		d := a.CPU
		if b, ok := before[pid]; ok && b.Start == a.Start {
			d -= b.CPU
		}
		name := a.Name
		if strings.HasPrefix(name, "kworker/") {
			name = "kworker"
		}
		if d > 0 {
			out[name] += d
		}
	}
	return out
}

// Children are the pids of pid's child processes.
func (p Processes) Children(pid int) []int {
	var kids []int
	for k, c := range p {
		if c.PPid == pid {
			kids = append(kids, k)
		}
	}
	return kids
}
