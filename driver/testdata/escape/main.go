// Command escape runs inside a dyno and tries to get out of its sandbox. It prints one
// line per attempt, "ok <name>: <what happened>" when the sandbox held and
// "ESCAPE <name>: <what happened>" when it did not, then "done". The e2e test builds it
// statically into a slug and reads its log.
//
// Inputs (environment): HOST_MARKER, a file on the host the dyno must not read;
// OTHER_TMP, OTHER_SECRET and OTHER_TOKEN, the host's path to another dyno's ./tmp (its
// tmpfs, seen through /proc/<pid>/root), a file in it and what the file holds;
// VICTIM_PID, a host process of the dyno's user; MEM_LIMIT_MB and PIDS_LIMIT, the dyno's
// bounds.
package main

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

type check struct {
	name string
	run  func() (string, error)
}

func main() {
	if len(os.Args) > 1 && os.Args[1] == "hog" {
		hog()
		return
	}
	if len(os.Args) > 1 && os.Args[1] == "bomb" {
		bomb()
		return
	}
	if len(os.Args) > 1 && os.Args[1] == "traceme" {
		traceme()
		return
	}
	checks := []check{
		{"write_outside_tmp_log", writeOutside},
		{"write_tmp_log", writeTmpLog},
		{"fill_tmp_log", fillTmpLog},
		{"other_dyno_tmp", otherDynoTmp},
		{"chroot", chroot},
		{"dotdot", dotdot},
		{"proc_root", procRoot},
		{"inherited_fds", inheritedFds},
		{"mount", mount},
		{"unshare", unshare},
		{"setuid_binary", setuidBinary},
		{"raise_capabilities", raiseCaps},
		{"kill_outside", killOutside},
		{"fork_bomb", forkBomb},
		{"memory_hog", memoryHog},
		{"one_core", oneCore},
		{"plant_symlinks", plantSymlinks},
		{"seccomp", seccompFilter},
		{"ordinary_calls", ordinaryCalls},
	}
	for _, c := range checks {
		what, err := c.run()
		if err != nil {
			fmt.Printf("ESCAPE %s: %v\n", c.name, err)
		} else {
			fmt.Printf("ok %s: %s\n", c.name, what)
		}
	}
	fmt.Println("done")
}

func mustFail(what string, err error) error {
	if err == nil {
		return fmt.Errorf("%s succeeded", what)
	}
	return nil
}

func writeOutside() (string, error) {
	dirs := []string{"/", "/app", "/app/bin", "/etc", "/usr", "/usr/bin", "/bin", "/var", "/alloc",
		"/alloc/data", "/local", "/secrets", "/dev", "/proc", "/proc/sys/kernel"}
	var errs []error
	for _, d := range dirs {
		p := filepath.Join(d, "escape-probe")
		errs = append(errs, mustFail("write "+p, os.WriteFile(p, []byte("x"), 0o644)))
		errs = append(errs, mustFail("mkdir "+p, os.Mkdir(p+"-dir", 0o755)))
	}
	self, _ := os.Executable()
	f, err := os.OpenFile(self, os.O_WRONLY, 0)
	if err == nil {
		f.Close()
	}
	errs = append(errs, mustFail("open own binary in /app for writing", err))
	errs = append(errs, mustFail("write /proc/sys/kernel/hostname", os.WriteFile("/proc/sys/kernel/hostname", []byte("pwned"), 0)))
	errs = append(errs, mustFail("chmod /app", os.Chmod("/app", 0o777)))
	return fmt.Sprintf("%d places refused writes", len(dirs)), errors.Join(errs...)
}

func writeTmpLog() (string, error) {
	for _, p := range []string{"/app/tmp/probe", "/app/log/probe", "/tmp/probe"} {
		if err := os.WriteFile(p, []byte("x"), 0o644); err != nil {
			// Not an escape, but the sandbox is broken: report it loudly.
			return "", fmt.Errorf("cannot write %s (./tmp and ./log must be writable): %w", p, err)
		}
	}
	return "./tmp, ./log and /tmp are writable", nil
}

// fillTmpLog writes into ./tmp and ./log until they are full: each must stop at its
// bound, half the dyno's memory (MEM_LIMIT_MB), with ENOSPC, on a tmpfs of the dyno's
// own (not a directory of the host's disk), and ./tmp must be writable again once the
// file is removed.
func fillTmpLog() (string, error) {
	limit, _ := strconv.ParseInt(os.Getenv("MEM_LIMIT_MB"), 10, 64)
	if limit <= 0 {
		return "", errors.New("MEM_LIMIT_MB not set")
	}
	bound := limit << 20 / 2
	var what []string
	for _, dir := range []string{"/app/tmp", "/app/log"} {
		var fs unix.Statfs_t
		if err := unix.Statfs(dir, &fs); err != nil {
			return "", fmt.Errorf("statfs %s: %w", dir, err)
		}
		if fs.Type != unix.TMPFS_MAGIC {
			return "", fmt.Errorf("%s is a file system of type %#x, not the dyno's tmpfs", dir, fs.Type)
		}
		p := filepath.Join(dir, "fill")
		f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
		if err != nil {
			return "", fmt.Errorf("cannot write %s: %w", p, err)
		}
		buf := make([]byte, 1<<20)
		var n int64
		for n <= 4*bound {
			w, err := f.Write(buf)
			n += int64(w)
			if err != nil {
				break
			}
		}
		_, werr := f.Write(buf)
		f.Close()
		os.Remove(p)
		if n > bound {
			return "", fmt.Errorf("wrote %d bytes into %s, past its bound of %d", n, dir, bound)
		}
		if !errors.Is(werr, syscall.ENOSPC) {
			return "", fmt.Errorf("a write past %d bytes into %s failed with %v, not ENOSPC", n, dir, werr)
		}
		if err := os.WriteFile(p, []byte("x"), 0o600); err != nil {
			return "", fmt.Errorf("%s not writable once emptied: %w", dir, err)
		}
		os.Remove(p)
		what = append(what, fmt.Sprintf("%s full at %d bytes", dir, n))
	}
	return strings.Join(what, ", ") + " (ENOSPC)", nil
}

func otherDynoTmp() (string, error) {
	other, secret, token := os.Getenv("OTHER_TMP"), os.Getenv("OTHER_SECRET"), os.Getenv("OTHER_TOKEN")
	if other == "" || secret == "" || token == "" {
		return "", errors.New("OTHER_TMP, OTHER_SECRET and OTHER_TOKEN not set")
	}
	var errs []error
	read := func(p string) {
		if b, err := os.ReadFile(p); err == nil && strings.Contains(string(b), token) {
			errs = append(errs, fmt.Errorf("read the other dyno's secret via %s", p))
		}
	}
	write := func(p string) {
		if err := os.WriteFile(p, []byte("pwned"), 0o644); err == nil {
			errs = append(errs, fmt.Errorf("wrote %s", p))
		}
	}
	read(filepath.Join(other, secret))
	write(filepath.Join(other, secret))
	write(filepath.Join(other, "planted"))
	read(filepath.Join("/app/tmp", secret))
	read(filepath.Join("/../../..", other, secret))
	procs, _ := filepath.Glob("/proc/[0-9]*")
	for _, p := range procs {
		read(filepath.Join(p, "root/app/tmp", secret))
		read(filepath.Join(p, "root", other, secret))
	}
	return fmt.Sprintf("%s not reachable (%d processes visible)", secret, len(procs)), errors.Join(errs...)
}

func chroot() (string, error) {
	_ = os.MkdirAll("/app/tmp/jail", 0o755)
	err := syscall.Chroot("/app/tmp/jail")
	return fmt.Sprintf("chroot: %v", err), mustFail("chroot", err)
}

func hostMarker() string { return os.Getenv("HOST_MARKER") }

func readMarker(p string) error {
	if b, err := os.ReadFile(p); err == nil {
		return fmt.Errorf("read host file via %s: %q", p, b)
	}
	return nil
}

func dotdot() (string, error) {
	m := hostMarker()
	var errs []error
	for _, p := range []string{m, "/../../../.." + m, "../../../../../../.." + m, "/app/../.." + m} {
		errs = append(errs, readMarker(p))
	}
	up, _ := os.ReadDir("/..")
	root, _ := os.ReadDir("/")
	if len(up) != len(root) {
		errs = append(errs, fmt.Errorf("/.. lists %d entries, / lists %d", len(up), len(root)))
	}
	return "host marker not reachable through ..", errors.Join(errs...)
}

func procRoot() (string, error) {
	m := hostMarker()
	var errs []error
	procs, _ := filepath.Glob("/proc/[0-9]*")
	for _, p := range procs {
		errs = append(errs, readMarker(p+"/root"+m), readMarker(p+"/cwd/../../../.."+m))
	}
	errs = append(errs, readMarker("/proc/self/root/../.."+m))
	return fmt.Sprintf("%d visible processes, none leads out", len(procs)), errors.Join(errs...)
}

func inheritedFds() (string, error) {
	m := strings.TrimPrefix(hostMarker(), "/")
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return "", err
	}
	var errs []error
	var seen []string
	for _, e := range fds {
		fd, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		target, _ := os.Readlink("/proc/self/fd/" + e.Name())
		seen = append(seen, fmt.Sprintf("%d=%s", fd, target))
		for _, rel := range []string{m, "../../../../../../" + m} {
			nfd, err := unix.Openat(fd, rel, unix.O_RDONLY, 0)
			if err == nil {
				unix.Close(nfd)
				errs = append(errs, fmt.Errorf("opened host file relative to inherited fd %d (%s)", fd, target))
			}
		}
		if err := unix.Fchdir(fd); err == nil {
			errs = append(errs, readMarker("../../../../../../"+m))
			_ = os.Chdir("/app")
		}
	}
	return "fds: " + strings.Join(seen, " "), errors.Join(errs...)
}

func mount() (string, error) {
	_ = os.MkdirAll("/app/tmp/mnt", 0o755)
	errs := []error{
		mustFail("mount tmpfs", syscall.Mount("none", "/app/tmp/mnt", "tmpfs", 0, "")),
		mustFail("remount /app rw", syscall.Mount("", "/app", "", syscall.MS_REMOUNT|syscall.MS_BIND, "")),
		mustFail("bind / onto ./tmp", syscall.Mount("/", "/app/tmp/mnt", "", syscall.MS_BIND, "")),
		mustFail("umount /app", syscall.Unmount("/app", syscall.MNT_DETACH)),
	}
	return "mount, remount, bind and umount refused", errors.Join(errs...)
}

func unshare() (string, error) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var errs []error
	errs = append(errs, mustFail("unshare mount namespace", syscall.Unshare(syscall.CLONE_NEWNS)))
	errs = append(errs, mustFail("unshare pid namespace", syscall.Unshare(syscall.CLONE_NEWPID)))
	errs = append(errs, mustFail("unshare net namespace", syscall.Unshare(syscall.CLONE_NEWNET)))
	what := "mount/pid/net namespaces refused"
	// A user namespace (if the kernel allows unprivileged ones) gives capabilities over
	// nothing the dyno did not already own: the sandbox's mounts stay locked read-only.
	if _, err := os.Stat("/usr/bin/unshare"); err == nil {
		out, err := exec.Command("/usr/bin/unshare", "-U", "-r", "-m", "/bin/sh", "-c",
			"mount -o remount,rw,bind /app 2>/dev/null; mount -o remount,rw,bind /usr 2>/dev/null; touch /app/probe /usr/probe 2>/dev/null && echo WROTE; echo in-userns").CombinedOutput()
		switch {
		case strings.Contains(string(out), "WROTE"):
			errs = append(errs, fmt.Errorf("wrote /app or /usr from a user namespace: %s", out))
		case err != nil:
			what += "; user namespace refused"
		default:
			what += "; user namespace allowed but /app and /usr stay read-only"
		}
	}
	return what, errors.Join(errs...)
}

func setuidBinary() (string, error) {
	var errs []error
	for _, args := range [][]string{
		{"/usr/bin/mount", "-t", "tmpfs", "none", "/app/tmp/mnt"},
		{"/usr/bin/su", "-c", "id -u", "root"},
	} {
		if _, err := os.Stat(args[0]); err != nil {
			continue
		}
		cmd := exec.Command(args[0], args[1:]...)
		cmd.Stdin = strings.NewReader("\n")
		out, err := cmd.CombinedOutput()
		if err == nil {
			errs = append(errs, fmt.Errorf("%s succeeded: %s", strings.Join(args, " "), out))
		}
	}
	errs = append(errs, mustFail("setuid(0)", syscall.Setuid(0)))
	errs = append(errs, mustFail("setgid(0)", syscall.Setgid(0)))
	return fmt.Sprintf("euid %d, setuid binaries gave nothing", os.Geteuid()), errors.Join(errs...)
}

func raiseCaps() (string, error) {
	status, _ := os.ReadFile("/proc/self/status")
	var errs []error
	var caps []string
	for _, l := range strings.Split(string(status), "\n") {
		for _, k := range []string{"CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb", "NoNewPrivs"} {
			if strings.HasPrefix(l, k+":") {
				v := strings.TrimSpace(strings.TrimPrefix(l, k+":"))
				caps = append(caps, k+"="+v)
				if k == "NoNewPrivs" && v != "1" {
					errs = append(errs, errors.New("no_new_privs is not set"))
				}
				if k != "NoNewPrivs" && strings.Trim(v, "0") != "" {
					errs = append(errs, fmt.Errorf("%s is %s", k, v))
				}
			}
		}
	}
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	data := [2]unix.CapUserData{{Effective: 1 << unix.CAP_SYS_ADMIN, Permitted: 1 << unix.CAP_SYS_ADMIN}}
	errs = append(errs, mustFail("capset CAP_SYS_ADMIN", unix.Capset(&hdr, &data[0])))
	errs = append(errs, mustFail("raise ambient CAP_NET_ADMIN", unix.Prctl(unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_RAISE, unix.CAP_NET_ADMIN, 0, 0)))
	return strings.Join(caps, " "), errors.Join(errs...)
}

func killOutside() (string, error) {
	pid, err := strconv.Atoi(os.Getenv("VICTIM_PID"))
	if err != nil {
		return "", fmt.Errorf("VICTIM_PID: %w", err)
	}
	err = syscall.Kill(pid, syscall.SIGKILL)
	return fmt.Sprintf("kill %d: %v", pid, err), mustFail(fmt.Sprintf("kill host pid %d", pid), err)
}

// forkBomb forks from a child process (its Go runtime may die when it cannot make a
// thread) in a process group of its own, which this process kills afterwards.
func forkBomb() (string, error) {
	limit, _ := strconv.Atoi(os.Getenv("PIDS_LIMIT"))
	self, _ := os.Executable()
	out, _ := exec.Command(self, "bomb").CombinedOutput()
	var pgid, started int
	fmt.Sscanf(grepLine(string(out), "pgid="), "pgid=%d", &pgid)
	fmt.Sscanf(grepLine(string(out), "started="), "started=%d", &started)
	if pgid > 0 {
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
	}
	// The sleepers die and the dyno's init reaps them.
	deadline := time.Now().Add(20 * time.Second)
	for countSleepers() > 0 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	what := strings.ReplaceAll(strings.TrimSpace(string(out)), "\n", "; ")
	if started == 0 || started > limit {
		return "", fmt.Errorf("pids_limit %d: %s", limit, what)
	}
	if n := countSleepers(); n > 0 {
		return "", fmt.Errorf("%d sleepers left after the bomb", n)
	}
	// The dyno can fork again.
	if err := exec.Command("/bin/true").Run(); err != nil {
		return "", fmt.Errorf("cannot fork after the bomb: %w", err)
	}
	return what, nil
}

func bomb() {
	runtime.GOMAXPROCS(1)
	_ = syscall.Setpgid(0, 0)
	fmt.Printf("pgid=%d\n", os.Getpid())
	n := 0
	var err error
	for ; n < 100000; n++ {
		c := exec.Command("/bin/sleep", "30")
		if err = c.Start(); err != nil {
			break
		}
	}
	fmt.Printf("started=%d then %v\n", n, err)
	_ = syscall.Kill(0, syscall.SIGKILL)
}

func grepLine(s, prefix string) string {
	for _, l := range strings.Split(s, "\n") {
		if strings.HasPrefix(l, prefix) {
			return l
		}
	}
	return ""
}

func countSleepers() int {
	n := 0
	procs, _ := filepath.Glob("/proc/[0-9]*/comm")
	for _, p := range procs {
		if b, err := os.ReadFile(p); err == nil && strings.TrimSpace(string(b)) == "sleep" {
			n++
		}
	}
	return n
}

func memoryHog() (string, error) {
	self, _ := os.Executable()
	cmd := exec.Command(self, "hog")
	out, err := cmd.CombinedOutput()
	var exitErr *exec.ExitError
	if !errors.As(err, &exitErr) {
		return "", fmt.Errorf("hog was not killed (err %v): %s", err, out)
	}
	ws := exitErr.Sys().(syscall.WaitStatus)
	if !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		return "", fmt.Errorf("hog ended with %v, not SIGKILL: %s", ws, out)
	}
	return "hog killed alone by SIGKILL; this process lives on", nil
}

func hog() {
	limit, _ := strconv.Atoi(os.Getenv("MEM_LIMIT_MB"))
	var keep [][]byte
	for i := 0; i < 4*limit; i += 16 {
		b := make([]byte, 16<<20)
		for j := 0; j < len(b); j += 4096 {
			b[j] = 1
		}
		keep = append(keep, b)
	}
	fmt.Printf("allocated %d MB\n", 16*len(keep))
}

func oneCore() (string, error) {
	var set unix.CPUSet
	if err := unix.SchedGetaffinity(0, &set); err != nil {
		return "", err
	}
	runtime.GOMAXPROCS(2)
	var before, after syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &before)
	start := time.Now()
	done := make(chan struct{})
	for i := 0; i < 2; i++ {
		go func() {
			x := 0
			for time.Since(start) < 1500*time.Millisecond {
				for k := 0; k < 100000; k++ {
					x += k
				}
			}
			_ = x
			done <- struct{}{}
		}()
	}
	<-done
	<-done
	wall := time.Since(start)
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &after)
	cpu := tv(after.Utime) + tv(after.Stime) - tv(before.Utime) - tv(before.Stime)
	ratio := cpu.Seconds() / wall.Seconds()
	what := fmt.Sprintf("affinity %d cpu(s), two busy threads used %.2fs cpu in %.2fs wall (%.2f cores)", set.Count(), cpu.Seconds(), wall.Seconds(), ratio)
	if set.Count() != 1 || ratio > 1.1 {
		return "", errors.New(what)
	}
	return what, nil
}

func tv(t syscall.Timeval) time.Duration {
	return time.Duration(t.Sec)*time.Second + time.Duration(t.Usec)*time.Microsecond
}

func plantSymlinks() (string, error) {
	links := map[string]string{
		"/app/log/shadow":       "/etc/shadow",
		"/app/log/root":         "/",
		"/app/tmp/escape":       "/",
		"/app/log/host-marker":  hostMarker(),
		"/app/tmp/other-secret": filepath.Join(os.Getenv("OTHER_TMP"), os.Getenv("OTHER_SECRET")),
	}
	for link, target := range links {
		_ = os.Remove(link)
		if err := os.Symlink(target, link); err != nil {
			return "", fmt.Errorf("cannot plant %s: %w", link, err)
		}
	}
	return fmt.Sprintf("planted %d symlinks in ./tmp and ./log", len(links)), nil
}
