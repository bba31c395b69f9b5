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
