package memcached

import (
	"fmt"
	"os"
	"runtime"
	"sort"
	"strings"
)

// ClientChrootEnv is the chroot of exec tasks that memcached needs on a Nomad client:
// the binary, the C library directory, the loader, and the user database. The exec
// driver links or copies its chroot for every allocation; its default (/bin, /etc,
// /lib, /sbin, /usr...) can take tens of seconds to build where /usr is large, this
// one a second. It maps host paths to paths in the task.
func ClientChrootEnv(memcachedPath string) map[string]string {
	if memcachedPath == "" {
		memcachedPath = "/usr/bin/memcached"
	}
	triplet := map[string]string{"amd64": "x86_64-linux-gnu", "arm64": "aarch64-linux-gnu"}[runtime.GOARCH]
	env := map[string]string{
		memcachedPath: memcachedPath,
		"/etc/passwd": "/etc/passwd",
		"/etc/group":  "/etc/group",
	}
	if triplet != "" {
		env["/usr/lib/"+triplet] = "/lib/" + triplet
	}
	for _, p := range []string{"/usr/lib64", "/usr/lib/ld-linux-aarch64.so.1"} {
		if _, err := os.Stat(p); err == nil {
			env[p] = strings.Replace(p, "/usr/lib", "/lib", 1)
		}
	}
	return env
}

// NomadClientConfig is a Nomad agent configuration block that sets ClientChrootEnv, for
// the clients that run memcached add-ons. Note that chroot_env applies to every exec
// task of those clients.
func NomadClientConfig(memcachedPath string) string {
	env := ClientChrootEnv(memcachedPath)
	keys := make([]string, 0, len(env))
	for k := range env {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	b.WriteString("client {\n  chroot_env {\n")
	for _, k := range keys {
		fmt.Fprintf(&b, "    %q = %q\n", k, env[k])
	}
	b.WriteString("  }\n}\n")
	return b.String()
}
