// Package addontest helps add-on authors test their add-on: serve it in-process over
// the real gRPC protocol, or build its binary and run it through the platform's own
// host, and check it against the rules every add-on must follow (Conformance). Mock,
// an add-on built from function fields, serves tests of code that calls add-ons.
package addontest

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"

	"github.com/dynogrid/dynogrid/plugins/addon"
	"github.com/dynogrid/dynogrid/plugins/addon/addonhost"
)

// Target is what Conformance exercises: a configured add-on.
type Target interface {
	Describe(ctx context.Context) (addon.Description, error)
	Provision(ctx context.Context, req addon.ProvisionRequest) (addon.Resource, error)
	Deprovision(ctx context.Context, req addon.DeprovisionRequest) error
}

// InProcess serves a over go-plugin's gRPC transport inside the test process, calls
// Configure with cfg, and returns the client side: every call crosses the real
// protocol and the SDK's checks.
func InProcess(t testing.TB, a addon.Addon, cfg addon.Config) addon.Addon {
	t.Helper()
	client, _ := plugin.TestPluginGRPCConn(t, false, map[string]plugin.Plugin{addon.PluginName: &addon.GRPCPlugin{Impl: a}})
	t.Cleanup(func() { client.Close() })
	raw, err := client.Dispense(addon.PluginName)
	if err != nil {
		t.Fatalf("addontest: failed to dispense the add-on: %v", err)
	}
	c := raw.(addon.Addon)
	if cfg.Settings == nil {
		cfg.Settings = map[string]string{}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := c.Configure(ctx, cfg); err != nil {
		t.Fatalf("addontest: Configure failed: %v", err)
	}
	return c
}

// Build compiles the Go package pkg (a path as `go build` takes it, e.g. "." or
// "./cmd/dyno-addon-foo") into a fresh plugin directory as dyno-addon-<name>, and
// returns the directory.
func Build(t testing.TB, pkg, name string) string {
	t.Helper()
	dir := t.TempDir()
	out, err := exec.Command("go", "build", "-o", filepath.Join(dir, addon.BinaryPrefix+name), pkg).CombinedOutput()
	if err != nil {
		t.Fatalf("addontest: go build %s failed: %v\n%s", pkg, err, out)
	}
	return dir
}

// Launch starts add-on name from pluginDir through the platform's host (a real plugin
// process, mutual TLS, the host's checks and deadlines) with the given settings and a
// fresh state directory, and stops it at the end of the test.
func Launch(t testing.TB, pluginDir, name string, settings map[string]string) *addonhost.Plugin {
	t.Helper()
	h, err := addonhost.New(addonhost.Options{
		PluginDir: pluginDir,
		StateDir:  t.TempDir(),
		Settings:  map[string]map[string]string{name: settings},
		Logger:    hclog.New(&hclog.LoggerOptions{Name: "addontest", Level: hclog.Warn}),
	})
	if err != nil {
		t.Fatalf("addontest: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	p, err := h.Open(ctx, name)
	if err != nil {
		t.Fatalf("addontest: %v", err)
	}
	t.Cleanup(p.Close)
	return p
}

// PluginTarget lets Conformance exercise a plugin started with Launch.
func PluginTarget(p *addonhost.Plugin) Target { return pluginTarget{p} }

type pluginTarget struct{ p *addonhost.Plugin }

func (t pluginTarget) Describe(context.Context) (addon.Description, error) {
	return t.p.Description(), nil
}

func (t pluginTarget) Provision(ctx context.Context, req addon.ProvisionRequest) (addon.Resource, error) {
	return t.p.Provision(ctx, req)
}

func (t pluginTarget) Deprovision(ctx context.Context, req addon.DeprovisionRequest) error {
	return t.p.Deprovision(ctx, req)
}

// uniqueID returns a request ID no earlier run used.
func uniqueID(prefix string) string {
	return fmt.Sprintf("%s-%d", prefix, time.Now().UnixNano())
}
