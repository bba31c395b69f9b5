// Package xtables runs iptables and ip6tables and their -restore commands for the dyno
// driver's firewall and dynos' port rules: each waits up to 5 s for the xtables lock
// that other programs on the host (Nomad's CNI plugins, another driver) take, and a
// failure says the command and what it wrote to stderr.
package xtables

import (
	"bytes"
	"fmt"
	"os/exec"
	"strings"
)

// lockWait is how long a command waits for the xtables lock.
var lockWait = []string{"-w", "5"}

// Run runs cmd (iptables, ip6tables, iptables-restore, ip6tables-restore) with args,
// and stdin as its input when it is not "".
func Run(cmd, stdin string, args ...string) error {
	c := exec.Command(cmd, append(lockWait, args...)...)
	if stdin != "" {
		c.Stdin = strings.NewReader(stdin)
	}
	if out, err := c.CombinedOutput(); err != nil {
		return fmt.Errorf("%s %s: %v: %s", cmd, strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	return nil
}

// Output runs cmd with args and returns its standard output.
func Output(cmd string, args ...string) (string, error) {
	var stderr bytes.Buffer
	c := exec.Command(cmd, append(lockWait, args...)...)
	c.Stderr = &stderr
	out, err := c.Output()
	if err != nil {
		return "", fmt.Errorf("%s %s: %v: %s", cmd, strings.Join(args, " "), err, bytes.TrimSpace(stderr.Bytes()))
	}
	return string(out), nil
}
