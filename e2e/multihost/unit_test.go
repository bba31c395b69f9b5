package multihost

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// TestUnitsAreWhatTheGridRuns reads the repository's systemd units as the grid does:
// the agents come from /usr/local/bin with their config directory, Consul tells systemd
// when it is ready, and stopping Nomad signals the agent alone so the dynos survive.
func TestUnitsAreWhatTheGridRuns(t *testing.T) {
	repo, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	h := &Host{Name: "host1", Dir: "/tmp/mh/host1"}
	for _, tc := range []struct {
		name     string
		bin      string
		args     string
		notify   bool
		sig      syscall.Signal
		requires string
	}{
		{"consul", "/opt/bin/consul", "agent -config-dir=/tmp/mh/host1/consul.d/", true, syscall.SIGTERM, "/tmp/mh/host1/consul.d/consul.hcl"},
		{"nomad", "/opt/bin/nomad", "agent -config /tmp/mh/host1/nomad.d", false, syscall.SIGINT, ""},
	} {
		u, err := loadUnit(repo, tc.name)
		if err != nil {
			t.Fatal(err)
		}
		bin, args := u.onHost("/opt/bin", h)
		if bin != tc.bin || strings.Join(args, " ") != tc.args {
			t.Errorf("%s.service runs %s %q on a test host, want %s %q", tc.name, bin, args, tc.bin, tc.args)
		}
		if u.notify != tc.notify || u.killSignal != tc.sig || !u.processOnly || u.required(h) != tc.requires {
			t.Errorf("%s.service: notify %v, KillSignal %v, KillMode=process %v, requires %q; want %v, %v, true, %q",
				tc.name, u.notify, u.killSignal, u.processOnly, u.required(h), tc.notify, tc.sig, tc.requires)
		}
	}
}

func TestUnitErrorsNameTheLine(t *testing.T) {
	repo := t.TempDir()
	dir := filepath.Join(repo, "examples", "cluster", "systemd")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ unit, want string }{
		{"[Service]\nExecStart=/usr/local/bin/x \"a b\"\n", "x.service:2: ExecStart quotes or expands"},
		{"[Service]\nKillSignal=SIGHUP\n", "x.service:2: KillSignal SIGHUP is not one the test sends"},
		{"[Service]\nExecStart\n", `x.service:2: "ExecStart" is not KEY=VALUE`},
		{"[Service]\nExecStart=/bin/x agent\n", "x.service: ExecStart must run the agent from /usr/local/bin/"},
	} {
		if err := os.WriteFile(filepath.Join(dir, "x.service"), []byte(tc.unit), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := loadUnit(repo, "x"); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("unit %q: error %v, want %q", tc.unit, err, tc.want)
		}
	}
}
