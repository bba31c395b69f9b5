package driver

import (
	"os"
	"strings"
	"testing"

	"github.com/shoenig/test/must"
)

func TestConfig_Validate(t *testing.T) {
	t.Parallel()
	good := Config{SlugDir: "/var/lib/dynogrid/slugs", SlugStoreDir: "/var/lib/dynogrid/slug-store", DynoDir: "/var/lib/dynogrid/dynos", User: "nobody", PidsLimit: 256, CgroupParent: "dynogrid",
		Bridge: "nomad", BridgeSubnet: "172.26.64.0/20", HostPortRange: "20000-32000", InternalNetworks: []string{"10.0.0.0/8"}, AllowedEndpoints: []string{"10.0.0.1:5432", "10.0.0.1:20000-32000", "10.1.0.0/16"},
		LogMaxFiles: 5, LogMaxFileSizeMB: 10}
	cases := []struct {
		name    string
		mutate  func(*Config)
		wantErr string
	}{
		{"defaults", func(*Config) {}, ""},
		{"relative slug dir", func(c *Config) { c.SlugDir = "slugs" }, "slug_dir"},
		{"relative slug store dir", func(c *Config) { c.SlugStoreDir = "slug-store" }, "slug_store_dir"},
		{"unclean slug store dir", func(c *Config) { c.SlugStoreDir = "/var/lib/dynogrid/slug-store/" }, "slug_store_dir"},
		{"relative dyno dir", func(c *Config) { c.DynoDir = "dynos" }, "dyno_dir"},
		{"root user", func(c *Config) { c.User = "root" }, "user: dynos must not run as root"},
		{"no user", func(c *Config) { c.User = "" }, "user:"},
		{"zero pids", func(c *Config) { c.PidsLimit = 0 }, "pids_limit: 0"},
		{"no log files", func(c *Config) { c.LogMaxFiles = 0 }, "log_max_files: 0 must be from 1 to 100"},
		{"too many log files", func(c *Config) { c.LogMaxFiles = 101 }, "log_max_files: 101 must be from 1 to 100"},
		{"log files of no size", func(c *Config) { c.LogMaxFileSizeMB = -1 }, "log_max_file_size_mb: -1 must be from 1 to 1024"},
		{"log files too large", func(c *Config) { c.LogMaxFileSizeMB = 1 << 40 }, "log_max_file_size_mb: 1099511627776 must be from 1 to 1024"},
		{"cgroup escape", func(c *Config) { c.CgroupParent = "../x" }, "cgroup_parent"},
		{"nested cgroup", func(c *Config) { c.CgroupParent = "grid/host1" }, ""},
		{"no bridge", func(c *Config) { c.Bridge = "" }, "bridge: \"\" is not a network interface name"},
		{"bridge name too long", func(c *Config) { c.Bridge = "a-very-long-bridge" }, "bridge:"},
		{"bridge subnet not a network", func(c *Config) { c.BridgeSubnet = "nomad" }, `bridge_subnet: "nomad" is not an IPv4 network`},
		{"bridge subnet with host bits", func(c *Config) { c.BridgeSubnet = "172.26.64.1/20" }, "bridge_subnet: \"172.26.64.1/20\" has host bits set; write 172.26.64.0/20"},
		{"bridge subnet too small", func(c *Config) { c.BridgeSubnet = "10.0.0.0/31" }, "bridge_subnet: \"10.0.0.0/31\" is too small"},
		{"bridge subnet IPv6", func(c *Config) { c.BridgeSubnet = "fd00::/64" }, "bridge_subnet:"},
		{"host port range backwards", func(c *Config) { c.HostPortRange = "32000-20000" }, `host_port_range: "32000-20000" is not a range of ports`},
		{"host port range one port", func(c *Config) { c.HostPortRange = "20000" }, "host_port_range:"},
		{"host port range too high", func(c *Config) { c.HostPortRange = "20000-70000" }, "host_port_range:"},
		{"internal network not a network", func(c *Config) { c.InternalNetworks = []string{"10.0.0.0"} }, `internal_networks: "10.0.0.0" is not an IPv4 network`},
		{"internal network with host bits", func(c *Config) { c.InternalNetworks = []string{"10.0.0.1/8"} }, "write 10.0.0.0/8"},
		{"endpoint without address", func(c *Config) { c.AllowedEndpoints = []string{":5432"} }, "allowed_endpoints: \":5432\" is not ADDR"},
		{"endpoint port range backwards", func(c *Config) { c.AllowedEndpoints = []string{"10.0.0.1:9-8"} }, "is not a port or a range"},
		{"endpoint port zero", func(c *Config) { c.AllowedEndpoints = []string{"10.0.0.1:0"} }, "is not a port"},
		{"endpoint with its own cap", func(c *Config) { c.AllowedEndpoints = []string{"10.0.0.1:5432,max_conns=100"} }, ""},
		{"endpoint cap not a number", func(c *Config) { c.AllowedEndpoints = []string{"10.0.0.1:5432,max_conns=many"} }, "is not max_conns=N"},
		{"endpoint cap negative", func(c *Config) { c.AllowedEndpoints = []string{"10.0.0.1:5432,max_conns=-1"} }, "is not max_conns=N"},
		{"endpoint unknown option", func(c *Config) { c.AllowedEndpoints = []string{"10.0.0.1:5432,limit=5"} }, "is not max_conns=N"},
		{"negative endpoint conn limit", func(c *Config) { c.EndpointConnLimit = -1 }, "endpoint_conn_limit: -1 must be from 0 (no cap) to 65535"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := good
			tc.mutate(&c)
			err := c.validate()
			if tc.wantErr == "" {
				must.NoError(t, err)
				return
			}
			must.ErrorContains(t, err, tc.wantErr)
		})
	}
}

// TestConfig_EndpointsAreCappedPerDyno: an allowed endpoint without a cap of its own
// gets endpoint_conn_limit (20 by default), so that one dyno cannot hold every
// connection slot of a shared add-on server; one with max_conns keeps it, 0 is no cap.
func TestConfig_EndpointsAreCappedPerDyno(t *testing.T) {
	t.Parallel()
	c := decodePluginConfig(t, map[string]any{"allowed_endpoints": []string{
		"10.209.0.1:5433", "10.209.0.1:20000-32000,max_conns=64", "10.1.0.0/16,max_conns=0"}})
	must.Eq(t, 20, c.EndpointConnLimit)
	fw, err := c.firewall()
	must.NoError(t, err)
	var got []string
	for _, e := range fw.Allowed {
		got = append(got, e.String())
	}
	must.Eq(t, []string{"10.209.0.1:5433,max_conns=20", "10.209.0.1:20000-32000,max_conns=64", "10.1.0.0/16,max_conns=0"}, got)
	must.StrContains(t, fw.Rules(), "-d 10.209.0.1/32 -p tcp -m tcp --dport 5433:5433 -m connlimit --connlimit-above 20 ")

	c = decodePluginConfig(t, map[string]any{"allowed_endpoints": []string{"10.209.0.1:5433"}, "endpoint_conn_limit": 0})
	fw, err = c.firewall()
	must.NoError(t, err)
	must.StrNotContains(t, fw.Rules(), "connlimit")
}

func TestTaskConfig_Validate(t *testing.T) {
	t.Parallel()
	sum := strings.Repeat("ab", 32)
	cases := []struct {
		name    string
		tc      TaskConfig
		wantErr string
	}{
		{"shell", TaskConfig{Command: "/bin/sh", Args: []string{"-c", "true"}}, ""},
		{"bare name", TaskConfig{Command: "thin"}, ""},
		{"empty command", TaskConfig{}, "command: must not be empty"},
		{"relative path", TaskConfig{Command: "bin/thin"}, "command: \"bin/thin\""},
		{"slug without sum", TaskConfig{Command: "sh", Slug: "/srv/a.tar.gz"}, "slug_sha256"},
		{"uppercase sum", TaskConfig{Command: "sh", Slug: "/srv/a.tar.gz", SlugSHA256: strings.ToUpper(sum)}, "slug_sha256"},
		{"sum without slug", TaskConfig{Command: "sh", SlugSHA256: sum}, "slug_sha256: set without slug"},
		{"negative pids", TaskConfig{Command: "sh", PidsLimit: -1}, "pids_limit"},
		{"negative log files", TaskConfig{Command: "sh", LogMaxFiles: -1}, "log_max_files"},
		{"negative log file size", TaskConfig{Command: "sh", LogMaxFileSizeMB: -2}, "log_max_file_size_mb"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.tc.validate()
			if tc.wantErr == "" {
				must.NoError(t, err)
				return
			}
			must.ErrorContains(t, err, tc.wantErr)
		})
	}
}

func TestDriver_StartTask_BadConfig(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name    string
		tc      TaskConfig
		wantErr string
	}{
		{"missing command", TaskConfig{Command: "/no/such/bin"}, "command: \"/no/such/bin\" is not an executable file inside the sandbox"},
		{"name not on path", TaskConfig{Command: "no-such-program"}, "not found in the sandbox PATH"},
		{"bad sum", TaskConfig{Command: "sh", Slug: "/nonexistent.tar.gz", SlugSHA256: "x"}, "slug_sha256"},
		{"slug outside the store", TaskConfig{Command: "sh", Slug: "/etc/passwd", SlugSHA256: strings.Repeat("ab", 32)}, "plugin config slug_store_dir"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h, d := newHarness(t) // MkAllocDir's cleanup closes the harness
			task := newTask(t, tc.tc)
			t.Cleanup(h.MkAllocDir(task, false))
			_, _, err := h.StartTask(task)
			must.ErrorContains(t, err, tc.wantErr)
			left, _ := os.ReadDir(d.config.DynoDir)
			must.SliceEmpty(t, left, must.Sprint("a failed start left the dyno's tmp and log behind"))
		})
	}
}
