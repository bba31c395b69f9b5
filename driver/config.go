package driver

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/hashicorp/nomad/plugins/base"
	"github.com/hashicorp/nomad/plugins/shared/hclspec"

	"github.com/dynogrid/dynogrid/driver/dynonet"
	"github.com/dynogrid/dynogrid/driver/netfw"
)

// Config is the plugin's configuration, from the agent's plugin "nomad-driver-dyno" { config { } } block (Nomad names an external plugin's block after its binary).
type Config struct {
	// SlugDir is the per-host cache of unpacked slugs, one directory per sha256.
	SlugDir string `codec:"slug_dir"`
	// DynoDir held each dyno's private ./tmp and ./log before they became tmpfs of the
	// dyno's own: only the dynos an earlier version of the driver started, still running
	// after an upgrade, have theirs there (removed by DestroyTask).
	DynoDir string `codec:"dyno_dir"`
	// User every dyno runs as.
	User string `codec:"user"`
	// PidsLimit is the default cap on the processes and threads of one dyno.
	PidsLimit int64 `codec:"pids_limit"`
	// CgroupParent is the cgroup under which dynos' cgroups are created.
	CgroupParent string `codec:"cgroup_parent"`
	// Bridge is the Nomad client's bridge (its bridge_network_name), whose traffic the
	// driver's firewall filters.
	Bridge string `codec:"bridge"`
	// BridgeSubnet is the subnet the driver gives the bridge when it has to make it;
	// a bridge that exists keeps its own address.
	BridgeSubnet string `codec:"bridge_subnet"`
	// HostPortRange holds the host ports a dyno's ports may be mapped from: the Nomad
	// client's dynamic ports. A port outside it (a static port a job asks for, such as
	// the Nomad agent's own) is refused.
	HostPortRange string `codec:"host_port_range"`
	// AllowHostNetwork lets a dyno share the host's network (a task group in network
	// mode "host", or without a network block), outside the firewall's reach.
	AllowHostNetwork bool `codec:"allow_host_network"`
	// InternalNetworks are the grid's own networks: dynos may not connect there, except
	// to AllowedEndpoints.
	InternalNetworks []string `codec:"internal_networks"`
	// AllowedEndpoints are the TCP endpoints (the add-ons) dynos may connect to on the
	// host and in internal networks: "ADDR[/PREFIX][:PORT[-PORT]]".
	AllowedEndpoints []string `codec:"allowed_endpoints"`
	// EndpointConnLimit is how many connections one dyno may hold open at once to each
	// allowed endpoint that names no max_conns of its own (0: no cap). Add-on servers
	// are shared: without it one dyno could hold every connection slot of PostgreSQL
	// or of another app's memcached, before it even logs in.
	EndpointConnLimit int `codec:"endpoint_conn_limit"`
	// SlugStoreDir is the grid's slug store on this host's file system, where `dyno
	// deploy` on a one-machine grid packs slugs: the only directory a task's slug path
	// may name.
	SlugStoreDir string `codec:"slug_store_dir"`
	// SlugStoreURL is the grid's slug store (an https:// base address): the only address
	// a task's slug URL may name. Slugs are fetched from it with the store's credentials
	// and CA.
	SlugStoreURL string `codec:"slug_store_url"`
	// SlugStoreUsername and the file of its password are the store's reader (basic auth).
	SlugStoreUsername     string `codec:"slug_store_username"`
	SlugStorePasswordFile string `codec:"slug_store_password_file"`
	// SlugStoreCAFile verifies the store's certificate (empty: the host's CAs).
	SlugStoreCAFile string `codec:"slug_store_ca_file"`
	// LogMaxFiles and LogMaxFileSizeMB bound each dyno's stdout and stderr files: at
	// most that many of each, rotated at that size (a task's own log_max_files and
	// log_max_file_size_mb may ask for less). The driver keeps dynos' logs itself, so
	// a job's logs block does not apply to its dynos (except disabled).
	LogMaxFiles      int `codec:"log_max_files"`
	LogMaxFileSizeMB int `codec:"log_max_file_size_mb"`
}

// defaultConfig is the plugin's configuration for every key the agent's config block
// leaves out: configSpec's defaults are written from it, and New starts from it.
var defaultConfig = Config{
	SlugDir:          "/var/lib/dynogrid/slugs",
	SlugStoreDir:     "/var/lib/dynogrid/slug-store",
	DynoDir:          "/var/lib/dynogrid/dynos",
	User:             "nobody",
	PidsLimit:        256,
	CgroupParent:     "dynogrid",
	Bridge:           "nomad",
	BridgeSubnet:     dynonet.DefaultSubnet,
	HostPortRange:    "20000-32000",
	InternalNetworks: netfw.DefaultInternalNetworks,
	// The postgres add-on's dev plan lets a role hold 20 connections (docs/addons.md):
	// a dyno needs no more to one endpoint unless the operator says so.
	EndpointConnLimit: 20,
	LogMaxFiles:       5,
	LogMaxFileSizeMB:  10,
}

// decodeConfig is defaultConfig with what raw, the agent's msgpack of the plugin's config
// block, sets.
func decodeConfig(raw []byte) (Config, error) {
	c := defaultConfig
	// Decoding fills a list in place: the defaults' own must stay as they are.
	c.InternalNetworks = slices.Clone(c.InternalNetworks)
	if len(raw) != 0 {
		if err := base.MsgPackDecode(raw, &c); err != nil {
			return Config{}, fmt.Errorf("failed to decode dyno plugin config: %w", err)
		}
	}
	if err := c.validate(); err != nil {
		return Config{}, fmt.Errorf("invalid dyno plugin config: %w", err)
	}
	return c, nil
}

var configSpec = hclspec.NewObject(map[string]*hclspec.Spec{
	"slug_dir":                 withDefault("slug_dir", "string", defaultConfig.SlugDir),
	"dyno_dir":                 withDefault("dyno_dir", "string", defaultConfig.DynoDir),
	"user":                     withDefault("user", "string", defaultConfig.User),
	"pids_limit":               withDefault("pids_limit", "number", defaultConfig.PidsLimit),
	"cgroup_parent":            withDefault("cgroup_parent", "string", defaultConfig.CgroupParent),
	"bridge":                   withDefault("bridge", "string", defaultConfig.Bridge),
	"bridge_subnet":            withDefault("bridge_subnet", "string", defaultConfig.BridgeSubnet),
	"host_port_range":          withDefault("host_port_range", "string", defaultConfig.HostPortRange),
	"allow_host_network":       withDefault("allow_host_network", "bool", defaultConfig.AllowHostNetwork),
	"internal_networks":        withDefault("internal_networks", "list(string)", defaultConfig.InternalNetworks),
	"allowed_endpoints":        hclspec.NewAttr("allowed_endpoints", "list(string)", false),
	"endpoint_conn_limit":      withDefault("endpoint_conn_limit", "number", defaultConfig.EndpointConnLimit),
	"slug_store_dir":           withDefault("slug_store_dir", "string", defaultConfig.SlugStoreDir),
	"slug_store_url":           hclspec.NewAttr("slug_store_url", "string", false),
	"slug_store_username":      hclspec.NewAttr("slug_store_username", "string", false),
	"slug_store_password_file": hclspec.NewAttr("slug_store_password_file", "string", false),
	"slug_store_ca_file":       hclspec.NewAttr("slug_store_ca_file", "string", false),
	"log_max_files":            withDefault("log_max_files", "number", defaultConfig.LogMaxFiles),
	"log_max_file_size_mb":     withDefault("log_max_file_size_mb", "number", defaultConfig.LogMaxFileSizeMB),
})

// withDefault is an optional attribute of type typ whose default is value, written as
// an HCL literal (JSON's strings, numbers and lists are HCL's too).
func withDefault(name, typ string, value any) *hclspec.Spec {
	lit, err := json.Marshal(value)
	if err != nil {
		panic(fmt.Sprintf("driver: default of %s: %v", name, err))
	}
	return hclspec.NewDefault(hclspec.NewAttr(name, typ, false), hclspec.NewLiteral(string(lit)))
}

// maxLogFiles and maxLogFileSizeMB bound a dyno's log files: 100 GiB of each of stdout
// and stderr at most.
const (
	maxLogFiles      = 100
	maxLogFileSizeMB = 1024
)

var cgroupNameRE = regexp.MustCompile(`^[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)*$`)

func (c *Config) validate() error {
	var errs []error
	if !filepath.IsAbs(c.SlugDir) {
		errs = append(errs, fmt.Errorf("slug_dir: %q must be an absolute path", c.SlugDir))
	}
	if !filepath.IsAbs(c.SlugStoreDir) || filepath.Clean(c.SlugStoreDir) != c.SlugStoreDir {
		errs = append(errs, fmt.Errorf("slug_store_dir: %q must be a clean absolute path", c.SlugStoreDir))
	}
	if !filepath.IsAbs(c.DynoDir) {
		errs = append(errs, fmt.Errorf("dyno_dir: %q must be an absolute path", c.DynoDir))
	}
	if c.User == "" {
		errs = append(errs, errors.New("user: must name the unprivileged user dynos run as"))
	} else if c.User == "root" || c.User == "0" {
		errs = append(errs, errors.New("user: dynos must not run as root"))
	}
	if c.PidsLimit < 1 {
		errs = append(errs, fmt.Errorf("pids_limit: %d must be at least 1", c.PidsLimit))
	}
	if c.LogMaxFiles < 1 || c.LogMaxFiles > maxLogFiles {
		errs = append(errs, fmt.Errorf("log_max_files: %d must be from 1 to %d", c.LogMaxFiles, maxLogFiles))
	}
	if c.LogMaxFileSizeMB < 1 || c.LogMaxFileSizeMB > maxLogFileSizeMB {
		errs = append(errs, fmt.Errorf("log_max_file_size_mb: %d must be from 1 to %d", c.LogMaxFileSizeMB, maxLogFileSizeMB))
	}
	if !cgroupNameRE.MatchString(c.CgroupParent) || strings.Contains(c.CgroupParent, "..") {
		errs = append(errs, fmt.Errorf("cgroup_parent: %q must be a relative cgroup name like \"dynogrid\"", c.CgroupParent))
	}
	if _, err := c.firewall(); err != nil {
		errs = append(errs, err)
	}
	if _, err := c.bridgeSubnet(); err != nil {
		errs = append(errs, err)
	}
	if _, _, err := c.hostPorts(); err != nil {
		errs = append(errs, err)
	}
	if _, err := c.slugStore(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// firewall is the configuration of the dynos' firewall, without the host's nameservers.
func (c *Config) firewall() (netfw.Config, error) {
	fw := netfw.Config{Bridge: c.Bridge}
	var errs []error
	if err := fw.Validate(); err != nil {
		errs = append(errs, err)
	}
	for _, n := range c.InternalNetworks {
		p, err := netip.ParsePrefix(n)
		switch {
		case err != nil || !p.Addr().Is4():
			errs = append(errs, fmt.Errorf("internal_networks: %q is not an IPv4 network like 10.0.0.0/8", n))
		case p != p.Masked():
			errs = append(errs, fmt.Errorf("internal_networks: %q has host bits set; write %s", n, p.Masked()))
		default:
			fw.InternalNetworks = append(fw.InternalNetworks, p)
		}
	}
	if c.EndpointConnLimit < 0 || c.EndpointConnLimit > netfw.MaxConnsLimit {
		errs = append(errs, fmt.Errorf("endpoint_conn_limit: %d must be from 0 (no cap) to %d", c.EndpointConnLimit, netfw.MaxConnsLimit))
	}
	for _, s := range c.AllowedEndpoints {
		e, err := netfw.ParseEndpoint(s)
		if err != nil {
			errs = append(errs, fmt.Errorf("allowed_endpoints: %w", err))
			continue
		}
		if e.MaxConns == netfw.UnsetMaxConns {
			e.MaxConns = c.EndpointConnLimit
		}
		fw.Allowed = append(fw.Allowed, e)
	}
	return fw, errors.Join(errs...)
}

// bridgeSubnet is BridgeSubnet read.
func (c *Config) bridgeSubnet() (netip.Prefix, error) {
	p, err := netip.ParsePrefix(c.BridgeSubnet)
	switch {
	case err != nil || !p.Addr().Is4():
		return p, fmt.Errorf("bridge_subnet: %q is not an IPv4 network like %s", c.BridgeSubnet, dynonet.DefaultSubnet)
	case p != p.Masked():
		return p, fmt.Errorf("bridge_subnet: %q has host bits set; write %s", c.BridgeSubnet, p.Masked())
	case p.Bits() > 30:
		return p, fmt.Errorf("bridge_subnet: %q is too small for dynos; give a /30 or larger", c.BridgeSubnet)
	}
	return p, nil
}

// hostPorts is HostPortRange read.
func (c *Config) hostPorts() (lo, hi int, err error) {
	a, b, ok := strings.Cut(c.HostPortRange, "-")
	lo, err1 := strconv.Atoi(a)
	hi, err2 := strconv.Atoi(b)
	if !ok || err1 != nil || err2 != nil || lo < 1 || hi > 65535 || lo > hi {
		return 0, 0, fmt.Errorf("host_port_range: %q is not a range of ports like 20000-32000", c.HostPortRange)
	}
	return lo, hi, nil
}

// TaskConfig is a task's config { } block.
type TaskConfig struct {
	// Command is an absolute path inside the sandbox, or a name looked up in its PATH.
	Command string `codec:"command"`
	// Args are the command's arguments.
	Args []string `codec:"args"`
	// Slug is the release's archive (.tar.gz), named by its sha256 in the grid's slug
	// store: <slug_store_dir>/<slug_sha256>.tar.gz on the host, or
	// <slug_store_url><slug_sha256>.tar.gz (see slugCache.checkSource).
	Slug string `codec:"slug"`
	// SlugSHA256 is the hex sha256 of the archive.
	SlugSHA256 string `codec:"slug_sha256"`
	// PidsLimit overrides the plugin's pids_limit for this task when set.
	PidsLimit int64 `codec:"pids_limit"`
	// LogMaxFiles and LogMaxFileSizeMB bound this task's log files when set, at the
	// plugin's log_max_files and log_max_file_size_mb at most: a job gives the same
	// figures in its logs block, from which Nomad counts the disk its logs take.
	LogMaxFiles      int `codec:"log_max_files"`
	LogMaxFileSizeMB int `codec:"log_max_file_size_mb"`
}

var taskConfigSpec = hclspec.NewObject(map[string]*hclspec.Spec{
	"command":              hclspec.NewAttr("command", "string", true),
	"args":                 hclspec.NewAttr("args", "list(string)", false),
	"slug":                 hclspec.NewAttr("slug", "string", false),
	"slug_sha256":          hclspec.NewAttr("slug_sha256", "string", false),
	"pids_limit":           hclspec.NewAttr("pids_limit", "number", false),
	"log_max_files":        hclspec.NewAttr("log_max_files", "number", false),
	"log_max_file_size_mb": hclspec.NewAttr("log_max_file_size_mb", "number", false),
})

var sha256RE = regexp.MustCompile(`^[0-9a-f]{64}$`)

func (tc *TaskConfig) validate() error {
	var errs []error
	switch {
	case tc.Command == "":
		errs = append(errs, errors.New("command: must not be empty"))
	case strings.ContainsRune(tc.Command, 0):
		errs = append(errs, errors.New("command: must not contain NUL"))
	case strings.Contains(tc.Command, "/") && !filepath.IsAbs(tc.Command):
		errs = append(errs, fmt.Errorf("command: %q must be an absolute path inside the sandbox or a bare name", tc.Command))
	}
	if tc.Slug != "" {
		if !sha256RE.MatchString(tc.SlugSHA256) {
			errs = append(errs, fmt.Errorf("slug_sha256: %q must be the 64 lowercase hex digits of the slug's sha256", tc.SlugSHA256))
		}
	} else if tc.SlugSHA256 != "" {
		errs = append(errs, errors.New("slug_sha256: set without slug"))
	}
	if tc.PidsLimit < 0 {
		errs = append(errs, fmt.Errorf("pids_limit: %d must not be negative", tc.PidsLimit))
	}
	if tc.LogMaxFiles < 0 {
		errs = append(errs, fmt.Errorf("log_max_files: %d must not be negative", tc.LogMaxFiles))
	}
	if tc.LogMaxFileSizeMB < 0 {
		errs = append(errs, fmt.Errorf("log_max_file_size_mb: %d must not be negative", tc.LogMaxFileSizeMB))
	}
	return errors.Join(errs...)
}
