package driver

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"strings"
	"sync"
	"time"

	pstructs "github.com/hashicorp/nomad/plugins/shared/structs"
)

// The stack is what dynos see as /usr (hostRootEntries): the host's operating system
// release and the runtimes installed in it. The fingerprint names it and its versions,
// so that a release built against a runtime is placed only where that runtime is.
type stack struct {
	// Name is the operating system's ID and major version, such as "debian-12".
	Name string
	// Version is the point release, such as "12.12".
	Version string
	// Ruby and Node are the versions of /usr/bin/ruby and /usr/bin/node, "" when absent.
	Ruby, Node string
}

var (
	hostStackOnce sync.Once
	hostStack     stack
)

// readHostStack reads the host's stack once: a stack changes only with an upgrade of
// the host's packages, which an operator follows with a restart of the Nomad client.
func readHostStack() stack {
	hostStackOnce.Do(func() { hostStack = readStack("/usr/lib/os-release", "/etc/debian_version") })
	return hostStack
}

func readStack(osRelease, debianVersion string) stack {
	fields := map[string]string{}
	if f, err := os.Open(osRelease); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if k, v, ok := strings.Cut(sc.Text(), "="); ok {
				fields[k] = strings.Trim(v, `"'`)
			}
		}
		_ = f.Close()
	}
	s := stack{Name: "unknown", Version: fields["VERSION_ID"]}
	if id := fields["ID"]; id != "" {
		s.Name = id
		if major, _, _ := strings.Cut(fields["VERSION_ID"], "."); major != "" {
			s.Name += "-" + major
		}
	}
	if b, err := os.ReadFile(debianVersion); err == nil {
		if v := strings.TrimSpace(string(b)); v != "" && v[0] >= '0' && v[0] <= '9' {
			s.Version = v
		}
	}
	s.Ruby = runtimeVersion("/usr/bin/ruby", "-e", "print RUBY_VERSION")
	s.Node = strings.TrimPrefix(runtimeVersion("/usr/bin/node", "--version"), "v")
	return s
}

// runtimeVersion is what the runtime prints of its version, "" when it is not there.
func runtimeVersion(bin string, args ...string) string {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, args...).Output()
	if err != nil {
		return ""
	}
	v := strings.TrimSpace(string(out))
	if len(v) > 64 || strings.ContainsAny(v, " \n") {
		return ""
	}
	return v
}

// attributes are the stack's node attributes (internal/deploy/stack.go reads them).
func (s stack) attributes() map[string]*pstructs.Attribute {
	a := map[string]*pstructs.Attribute{
		"driver.dyno.stack":         pstructs.NewStringAttribute(s.Name),
		"driver.dyno.stack.version": pstructs.NewStringAttribute(s.Version),
	}
	if s.Ruby != "" {
		a["driver.dyno.stack.ruby"] = pstructs.NewStringAttribute(s.Ruby)
	}
	if s.Node != "" {
		a["driver.dyno.stack.node"] = pstructs.NewStringAttribute(s.Node)
	}
	return a
}
