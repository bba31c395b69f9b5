package multihost

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

// unit is what the grid's hosts take from one of examples/cluster/systemd's units: how
// systemd starts an agent (ExecStart, Type=notify, the file it requires) and how it
// stops one (KillSignal to the main process only, with KillMode=process).
type unit struct {
	name string
	// execStart is the command line, split on spaces (the units quote nothing).
	execStart []string
	// notify: Type=notify, the agent says READY=1 on $NOTIFY_SOCKET once it has started.
	notify bool
	// killSignal is what `systemctl stop` sends; processOnly (KillMode=process) says it
	// goes to the agent alone, not to the dynos' processes the agent started.
	killSignal  syscall.Signal
	processOnly bool
	// requires is ConditionFileNotEmpty: systemd starts nothing without this file.
	requires string
}

var unitSignals = map[string]syscall.Signal{"SIGINT": syscall.SIGINT, "SIGTERM": syscall.SIGTERM}

// loadUnit reads examples/cluster/systemd/<name>.service.
func loadUnit(repo, name string) (*unit, error) {
	path := filepath.Join(repo, "examples", "cluster", "systemd", name+".service")
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	u := &unit{name: name, killSignal: syscall.SIGTERM}
	section := ""
	sc := bufio.NewScanner(f)
	for line := 1; sc.Scan(); line++ {
		text := strings.TrimSpace(sc.Text())
		if text == "" || text[0] == '#' || text[0] == ';' {
			continue
		}
		if strings.HasPrefix(text, "[") {
			section = text
			continue
		}
		key, value, ok := strings.Cut(text, "=")
		if !ok {
			return nil, fmt.Errorf("%s:%d: %q is not KEY=VALUE", path, line, text)
		}
		switch section + key {
		case "[Unit]ConditionFileNotEmpty":
			u.requires = value
		case "[Service]ExecStart":
			if strings.ContainsAny(value, `"'$\`) {
				return nil, fmt.Errorf("%s:%d: ExecStart quotes or expands; the test runs it split on spaces", path, line)
			}
			u.execStart = strings.Fields(value)
		case "[Service]Type":
			u.notify = value == "notify"
		case "[Service]KillSignal":
			sig, ok := unitSignals[value]
			if !ok {
				return nil, fmt.Errorf("%s:%d: KillSignal %s is not one the test sends", path, line, value)
			}
			u.killSignal = sig
		case "[Service]KillMode":
			u.processOnly = value == "process"
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(u.execStart) == 0 || !strings.HasPrefix(u.execStart[0], "/usr/local/bin/") {
		return nil, fmt.Errorf("%s: ExecStart must run the agent from /usr/local/bin/", path)
	}
	return u, nil
}

// onHost is the unit's command line on test host h: the binary from binDir, and each
// /etc/<agent>.d the unit names as the host's own <dir>/<agent>.d.
func (u *unit) onHost(binDir string, h *Host) (bin string, args []string) {
	etc := "/etc/" + u.name + ".d"
	for _, a := range u.execStart[1:] {
		args = append(args, strings.ReplaceAll(a, etc, u.configDir(h)))
	}
	return filepath.Join(binDir, filepath.Base(u.execStart[0])), args
}

// configDir is host h's /etc/<agent>.d.
func (u *unit) configDir(h *Host) string { return filepath.Join(h.Dir, u.name+".d") }

// required is the host's path of the unit's ConditionFileNotEmpty, or "".
func (u *unit) required(h *Host) string {
	if u.requires == "" {
		return ""
	}
	return strings.ReplaceAll(u.requires, "/etc/"+u.name+".d", u.configDir(h))
}
