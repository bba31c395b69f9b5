package driver

import (
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/hashicorp/nomad/plugins/drivers"
)

// appDir is the dyno's working directory inside the sandbox.
const appDir = "/app"

// hostRootEntries are the host's top-level directories a dyno sees, read-only. A host
// entry that is a symlink (/bin -> usr/bin on merged-/usr systems) becomes the same
// symlink in the sandbox.
var hostRootEntries = []string{"/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"}

// hostEtcEntries are the files and directories of the host's /etc a dyno sees, read-only,
// in an otherwise generated /etc.
var hostEtcEntries = []string{
	"alternatives", "ca-certificates", "ca-certificates.conf", "gai.conf", "host.conf",
	"ld.so.cache", "ld.so.conf", "ld.so.conf.d", "localtime", "mime.types", "protocols",
	"services", "ssl",
}

// sandboxUser is the account dynos run as.
type sandboxUser struct {
	Name     string
	UID, GID int
}

func lookupUser(name string) (sandboxUser, error) {
	u, err := user.Lookup(name)
	if err != nil {
		return sandboxUser{}, fmt.Errorf("user: %w", err)
	}
	uid, err := strconv.Atoi(u.Uid)
	if err != nil {
		return sandboxUser{}, fmt.Errorf("user %s: uid %q: %w", name, u.Uid, err)
	}
	gid, err := strconv.Atoi(u.Gid)
	if err != nil {
		return sandboxUser{}, fmt.Errorf("user %s: gid %q: %w", name, u.Gid, err)
	}
	if uid == 0 {
		return sandboxUser{}, fmt.Errorf("user %s: has uid 0; dynos must not run as root", name)
	}
	return sandboxUser{Name: u.Username, UID: uid, GID: gid}, nil
}

// scratchDirs are the dyno's writable folders, ./tmp and ./log: a tmpfs each, made by the
// sandbox in the dyno's own mount namespace (sandbox.Scratch), so that nothing a dyno
// writes lands on the host's disk. The slug (or the empty app directory) has both as
// empty directories, their mount points.
var scratchDirs = []string{appDir + "/tmp", appDir + "/log"}

// scratchBytes bounds each of the dyno's writable folders: half the dyno's memory limit,
// so that ./tmp and ./log together hold at most the dyno's memory. Their files are
// charged to the dyno's memory cgroup: a write past a folder's bound fails with ENOSPC,
// and a dyno whose processes and files together pass its memory limit is killed by the
// OOM killer, as a dyno over its memory is.
func scratchBytes(memoryLimitMB int64) int64 {
	return memoryLimitMB << 20 / 2
}

// layout is the file system of one dyno: an empty, read-only root skeleton in the task
// directory and the bind mounts that fill it.
type layout struct {
	// Root is the host path of the skeleton.
	Root string
	// Mounts, in mount order. Sandbox paths are TaskPath, host paths HostPath.
	Mounts []*drivers.MountConfig
	// Scratch are the sandbox paths of the dyno's writable folders, which have no host
	// path (see scratchDirs).
	Scratch []string
}

// buildLayout prepares the sandbox of one dyno: the root skeleton and a generated /etc in
// taskDir/dyno. app is the host directory mounted read-only at /app (the unpacked slug,
// or an empty directory); the dyno's private ./tmp and ./log are tmpfs the sandbox mounts
// over it (scratchDirs), not host directories.
//
// Nomad's allocation and task directories (alloc/, local/, secrets/) are not in the
// sandbox: Nomad fetches a job's artifacts into them from the host's network, where the
// cloud's metadata service and the grid's own services answer, so an app's job could
// read through its dyno what its dyno may not reach.
//
// Nothing a dyno writes is in Nomad's allocation directory: Nomad's file API (nomad
// alloc fs) follows symlinks out of the allocation directory, so a symlink a dyno plants
// in its ./log must not be reachable through it.
func buildLayout(cfg *drivers.TaskConfig, app string, u sandboxUser) (*layout, error) {
	td := cfg.TaskDir()
	base := filepath.Join(td.Dir, "dyno")
	l := &layout{Root: filepath.Join(base, "root"), Scratch: scratchDirs}
	for _, d := range []string{l.Root, filepath.Join(base, "etc")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, fmt.Errorf("failed to create sandbox: %w", err)
		}
	}
	// The folders' mount points must be directories of /app, which is read-only in the
	// sandbox: the sandbox could not make them there.
	for _, d := range scratchDirs {
		p := filepath.Join(app, strings.TrimPrefix(d, appDir))
		if st, err := os.Lstat(p); err != nil || !st.IsDir() {
			return nil, fmt.Errorf("failed to create sandbox: the app directory has no directory %s", strings.TrimPrefix(d, appDir+"/"))
		}
	}
	mount := func(sandbox, host string, ro bool) {
		l.Mounts = append(l.Mounts, &drivers.MountConfig{TaskPath: sandbox, HostPath: host, Readonly: ro})
	}

	for _, e := range hostRootEntries {
		st, err := os.Lstat(e)
		if err != nil {
			continue
		}
		if st.Mode()&os.ModeSymlink != 0 {
			target, err := os.Readlink(e)
			if err != nil {
				return nil, fmt.Errorf("failed to read host %s: %w", e, err)
			}
			if err := ensureSymlink(target, filepath.Join(l.Root, e)); err != nil {
				return nil, err
			}
			continue
		}
		if st.IsDir() {
			mount(e, e, true)
		}
	}
	// /tmp and /var/tmp are the dyno's own ./tmp.
	for link, target := range map[string]string{"tmp": "app/tmp", "var/tmp": "/app/tmp"} {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(l.Root, link)), 0o755); err != nil {
			return nil, fmt.Errorf("failed to create sandbox: %w", err)
		}
		if err := ensureSymlink(target, filepath.Join(l.Root, link)); err != nil {
			return nil, err
		}
	}

	etcMounts, err := writeEtc(filepath.Join(base, "etc"), u)
	if err != nil {
		return nil, err
	}
	mount("/etc", filepath.Join(base, "etc"), true)
	l.Mounts = append(l.Mounts, etcMounts...)

	mount(appDir, app, true)
	return l, nil
}

func ensureSymlink(target, path string) error {
	if cur, err := os.Readlink(path); err == nil && cur == target {
		return nil
	}
	_ = os.Remove(path)
	if err := os.Symlink(target, path); err != nil {
		return fmt.Errorf("failed to create sandbox link %s: %w", path, err)
	}
	return nil
}

// writeEtc writes the generated files of the sandbox's /etc into dir and returns the bind
// mounts of the host entries it passes through.
func writeEtc(dir string, u sandboxUser) ([]*drivers.MountConfig, error) {
	files := map[string]string{
		"passwd": fmt.Sprintf("root:x:0:0:root:/root:/usr/sbin/nologin\n%s:x:%d:%d:dyno:%s:/usr/sbin/nologin\n",
			u.Name, u.UID, u.GID, appDir),
		"group":         fmt.Sprintf("root:x:0:\n%s:x:%d:\n", groupName(u.GID), u.GID),
		"nsswitch.conf": "passwd: files\ngroup: files\nhosts: files dns\nnetworks: files\nprotocols: files\nservices: files\n",
		"hostname":      hostname() + "\n",
		"hosts":         readOr("/etc/hosts", "127.0.0.1 localhost\n::1 localhost\n"),
		"resolv.conf":   readOr("/etc/resolv.conf", ""),
	}
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if err := writeFileAtomic(filepath.Join(dir, n), files[n]); err != nil {
			return nil, err
		}
	}
	var mounts []*drivers.MountConfig
	for _, e := range hostEtcEntries {
		host := filepath.Join("/etc", e)
		st, err := os.Stat(host)
		if err != nil {
			continue
		}
		point := filepath.Join(dir, e)
		if st.IsDir() {
			err = os.MkdirAll(point, 0o755)
		} else if _, serr := os.Lstat(point); serr != nil {
			err = os.WriteFile(point, nil, 0o644)
		}
		if err != nil {
			return nil, fmt.Errorf("failed to prepare sandbox /etc/%s: %w", e, err)
		}
		mounts = append(mounts, &drivers.MountConfig{TaskPath: "/etc/" + e, HostPath: host, Readonly: true})
	}
	return mounts, nil
}

func groupName(gid int) string {
	if g, err := user.LookupGroupId(strconv.Itoa(gid)); err == nil {
		return g.Name
	}
	return "dyno"
}

func hostname() string {
	h, err := os.Hostname()
	if err != nil {
		return "localhost"
	}
	return h
}

func readOr(path, def string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return def
	}
	return string(b)
}

func writeFileAtomic(path, content string) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(content), 0o644); err != nil {
		return fmt.Errorf("failed to write sandbox file: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("failed to write sandbox file: %w", err)
	}
	return nil
}

// hostPath maps a path inside the sandbox to the host path the layout mounts there, or
// "" when nothing is mounted there or what is there has no host path (the dyno's
// writable folders).
func (l *layout) hostPath(p string) string {
	p = filepath.Clean(p)
	// Top-level symlinks of the skeleton (/bin -> usr/bin).
	if first := strings.SplitN(strings.TrimPrefix(p, "/"), "/", 2); len(first) > 0 {
		if target, err := os.Readlink(filepath.Join(l.Root, first[0])); err == nil {
			rest := ""
			if len(first) == 2 {
				rest = first[1]
			}
			if !filepath.IsAbs(target) {
				target = "/" + target
			}
			p = filepath.Join(target, rest)
		}
	}
	for _, d := range l.Scratch {
		if p == d || strings.HasPrefix(p, d+"/") {
			return ""
		}
	}
	best := -1
	for i, m := range l.Mounts {
		if p == m.TaskPath || strings.HasPrefix(p, m.TaskPath+"/") {
			if best < 0 || len(m.TaskPath) > len(l.Mounts[best].TaskPath) {
				best = i
			}
		}
	}
	if best < 0 {
		return ""
	}
	m := l.Mounts[best]
	return filepath.Join(m.HostPath, strings.TrimPrefix(p, m.TaskPath))
}

// resolveCommand turns the task's command into an absolute path inside the sandbox: an
// absolute path must name an executable file there, a bare name is looked up in path
// (the dyno's PATH).
func (l *layout) resolveCommand(cmd, path string) (string, error) {
	if filepath.IsAbs(cmd) {
		if !l.executable(cmd) {
			return "", fmt.Errorf("command: %q is not an executable file inside the sandbox", cmd)
		}
		return cmd, nil
	}
	for _, dir := range filepath.SplitList(path) {
		if !filepath.IsAbs(dir) {
			continue
		}
		c := filepath.Join(dir, cmd)
		if l.executable(c) {
			return c, nil
		}
	}
	return "", fmt.Errorf("command: %q not found in the sandbox PATH %s", cmd, path)
}

func (l *layout) executable(p string) bool {
	h := l.hostPath(p)
	if h == "" {
		return false
	}
	st, err := os.Stat(h)
	return err == nil && st.Mode().IsRegular() && st.Mode()&0o111 != 0
}
