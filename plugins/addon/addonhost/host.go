// Package addonhost runs add-on plugins for the platform: it finds them in a plugin
// directory, starts one with hashicorp/go-plugin (gRPC, mutual TLS, a versioned
// handshake), configures it with the operator's settings, and calls it with a deadline.
// Whatever the plugin does (crash, hang, answer nonsense), the caller gets an *Error
// naming the add-on and the problem, never a panic. The caller never sees protobuf.
// Add-ons given in Options.InProcess run in the caller's process instead, through the
// same checks and deadlines.
package addonhost

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/dynogrid/dynogrid/plugins/addon"
)

// Default deadlines; Options overrides them.
const (
	DefaultStartTimeout     = 15 * time.Second
	DefaultCallTimeout      = 30 * time.Second
	DefaultProvisionTimeout = 3 * time.Minute
)

// Options configure a Host. Only PluginDir is required, or InProcess in its place.
type Options struct {
	// PluginDir holds the add-on binaries, named dyno-addon-<name>.
	PluginDir string
	// InProcess holds add-ons that run inside this process, by name, in place of a
	// binary in PluginDir: the host configures, describes and calls them as it does
	// plugins, with the same checks and deadlines, but with no process and no gRPC in
	// between. Tests use it to give the platform an addontest.Mock. An in-process
	// add-on must return when its context ends: the host has no process to kill.
	InProcess map[string]addon.Addon
	// StateDir, when set, gives each add-on the private directory StateDir/<name>.
	StateDir string
	// Settings holds each add-on's settings, by add-on name, passed to Configure.
	Settings map[string]map[string]string
	// Logger receives the host's and the plugins' log lines.
	Logger hclog.Logger
	// StartTimeout bounds a plugin's start and handshake.
	StartTimeout time.Duration
	// CallTimeout bounds Configure and Describe.
	CallTimeout time.Duration
	// ProvisionTimeout bounds Provision and Deprovision.
	ProvisionTimeout time.Duration
}

// Host starts add-on plugins. It holds no running plugin: each Open starts one.
type Host struct {
	opts Options
}

// New checks the options and returns a Host.
func New(opts Options) (*Host, error) {
	if opts.PluginDir == "" && len(opts.InProcess) == 0 {
		return nil, errors.New("no add-on plugin directory configured")
	}
	if opts.PluginDir != "" {
		dir, err := filepath.Abs(opts.PluginDir)
		if err != nil {
			return nil, fmt.Errorf("failed to resolve the add-on plugin directory: %w", err)
		}
		opts.PluginDir = dir
		if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
			return nil, fmt.Errorf("add-on plugin directory %s is not a directory", dir)
		}
	}
	for name, a := range opts.InProcess {
		if !addon.ValidAddonName(name) || a == nil {
			return nil, fmt.Errorf("in-process add-on %q needs a valid name (lowercase letters, digits and dashes, starting with a letter) and an add-on", name)
		}
	}
	if opts.Logger == nil {
		opts.Logger = hclog.NewNullLogger()
	}
	if opts.StartTimeout <= 0 {
		opts.StartTimeout = DefaultStartTimeout
	}
	if opts.CallTimeout <= 0 {
		opts.CallTimeout = DefaultCallTimeout
	}
	if opts.ProvisionTimeout <= 0 {
		opts.ProvisionTimeout = DefaultProvisionTimeout
	}
	return &Host{opts: opts}, nil
}

// PluginDir is the directory the host looks for plugins in ("" when it has none).
func (h *Host) PluginDir() string { return h.opts.PluginDir }

// Describe starts add-on name and returns its description.
func (h *Host) Describe(ctx context.Context, name string) (addon.Description, error) {
	p, err := h.Open(ctx, name)
	if err != nil {
		return addon.Description{}, err
	}
	defer p.Close()
	return p.Description(), nil
}

// Listing is one add-on of DescribeAll: its description, or why there is none.
type Listing struct {
	Name        string
	Description addon.Description
	Err         error
}

// DescribeAll describes every add-on that List names, one after the other.
// A broken plugin gives a Listing with Err, not an error for the whole list.
func (h *Host) DescribeAll(ctx context.Context) ([]Listing, error) {
	names, err := h.List()
	if err != nil {
		return nil, err
	}
	out := make([]Listing, 0, len(names))
	for _, n := range names {
		d, err := h.Describe(ctx, n)
		out = append(out, Listing{Name: n, Description: d, Err: err})
	}
	return out, nil
}

// Provision starts add-on name, provisions req and stops the plugin. req.Plan "" means
// the add-on's default plan.
func (h *Host) Provision(ctx context.Context, name string, req addon.ProvisionRequest) (addon.Resource, error) {
	p, err := h.Open(ctx, name)
	if err != nil {
		return addon.Resource{}, err
	}
	defer p.Close()
	return p.Provision(ctx, req)
}

// Deprovision starts add-on name, deprovisions req and stops the plugin.
func (h *Host) Deprovision(ctx context.Context, name string, req addon.DeprovisionRequest) error {
	p, err := h.Open(ctx, name)
	if err != nil {
		return err
	}
	defer p.Close()
	return p.Deprovision(ctx, req)
}
