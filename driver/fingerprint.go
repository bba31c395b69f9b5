package driver

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/dynogrid/dynogrid/driver/sandbox"
	"github.com/hashicorp/nomad/plugins/drivers"
	pstructs "github.com/hashicorp/nomad/plugins/shared/structs"
	"github.com/opencontainers/runc/libcontainer/cgroups"
	lseccomp "github.com/opencontainers/runc/libcontainer/seccomp"
)

// requiredControllers are the cgroup controllers a dyno's bounds need.
var requiredControllers = []string{"cpu", "cpuset", "memory", "pids"}

func (d *Driver) Fingerprint(ctx context.Context) (<-chan *drivers.Fingerprint, error) {
	ch := make(chan *drivers.Fingerprint)
	go func() {
		defer close(ch)
		t := time.NewTimer(0)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-d.ctx.Done():
				return
			case <-t.C:
				t.Reset(fingerprintPeriod)
			}
			select {
			case ch <- d.fingerprint():
			case <-ctx.Done():
				return
			case <-d.ctx.Done():
				return
			}
		}
	}()
	return ch, nil
}

// fingerprint is healthy only where the driver can really isolate a dyno.
func (d *Driver) fingerprint() *drivers.Fingerprint {
	unhealthy := func(state drivers.HealthState, format string, args ...any) *drivers.Fingerprint {
		return &drivers.Fingerprint{Health: state, HealthDescription: fmt.Sprintf(format, args...)}
	}
	if runtime.GOOS != "linux" {
		return unhealthy(drivers.HealthStateUndetected, "dyno driver needs Linux")
	}
	if os.Geteuid() != 0 {
		return unhealthy(drivers.HealthStateUndetected, "dyno driver needs the Nomad client to run as root")
	}
	if !lseccomp.Enabled {
		return unhealthy(drivers.HealthStateUndetected, "%v", sandbox.ErrNoSeccomp)
	}
	if missing := missingControllers(); len(missing) > 0 {
		return unhealthy(drivers.HealthStateUnhealthy, "dyno driver needs the cgroup controllers %s, missing: %s",
			strings.Join(requiredControllers, ", "), strings.Join(missing, ", "))
	}
	u, err := lookupUser(d.config.User)
	if err != nil {
		return unhealthy(drivers.HealthStateUnhealthy, "dyno driver cannot run dynos as %q: %v", d.config.User, err)
	}
	if err := os.MkdirAll(d.config.SlugDir, 0o755); err != nil {
		return unhealthy(drivers.HealthStateUnhealthy, "dyno driver cannot use slug_dir: %v", err)
	}
	if d.firewallErr != nil {
		return unhealthy(drivers.HealthStateUnhealthy, "dyno driver cannot filter dynos' network: %v", d.firewallErr)
	}
	mode := "v1"
	if cgroups.IsCgroup2UnifiedMode() {
		mode = "v2"
	}
	attrs := map[string]*pstructs.Attribute{
		"driver.dyno":          pstructs.NewBoolAttribute(true),
		"driver.dyno.version":  pstructs.NewStringAttribute(Version),
		"driver.dyno.cgroups":  pstructs.NewStringAttribute(mode),
		"driver.dyno.user":     pstructs.NewStringAttribute(u.Name),
		"driver.dyno.slug_dir": pstructs.NewStringAttribute(d.config.SlugDir),
		"driver.dyno.bridge":   pstructs.NewStringAttribute(d.config.Bridge),
	}
	for k, v := range readHostStack().attributes() {
		attrs[k] = v
	}
	return &drivers.Fingerprint{Health: drivers.HealthStateHealthy, HealthDescription: drivers.DriverHealthy, Attributes: attrs}
}

// missingControllers lists the required cgroup controllers this host does not offer.
func missingControllers() []string {
	have := map[string]bool{}
	if cgroups.IsCgroup2UnifiedMode() {
		b, _ := os.ReadFile(filepath.Join(cgroupRoot, "cgroup.controllers"))
		for _, c := range strings.Fields(string(b)) {
			have[c] = true
		}
	} else if mounts, err := cgroups.GetCgroupMounts(false); err == nil {
		for _, m := range mounts {
			for _, s := range m.Subsystems {
				have[s] = true
			}
		}
	}
	var missing []string
	for _, c := range requiredControllers {
		if !have[c] {
			missing = append(missing, c)
		}
	}
	return missing
}
