// Package driver is the Nomad task driver `dyno`: each task is a dyno, one process tree in
// a sandbox built from read-only bind mounts (the release's slug as /app, the host's /usr,
// a minimal /etc), with private writable ./tmp and ./log, bound to one CPU core, a memory
// limit and a process count. The sandbox itself is run by driver/sandbox.
package driver

import (
	"time"

	"github.com/hashicorp/nomad/plugins/base"
	"github.com/hashicorp/nomad/plugins/drivers"
)

const (
	// Name is the driver's name in job files (driver = "dyno").
	Name = "dyno"
	// Version of the plugin.
	Version = "0.1.0"

	// taskHandleVersion is the version of the task state the driver stores in Nomad and
	// reads back in RecoverTask.
	taskHandleVersion = 1

	fingerprintPeriod = 30 * time.Second
)

var (
	pluginInfo = &base.PluginInfoResponse{
		Type:              base.PluginTypeDriver,
		PluginApiVersions: []string{drivers.ApiVersion010},
		PluginVersion:     Version,
		Name:              Name,
	}

	// capabilities: the driver builds the dyno's file system itself from bind mounts
	// (FSIsolationImage keeps the Nomad client from copying a chroot into the task
	// directory, and gives the task sandbox paths like /alloc and /local). A task group
	// with network { mode = "none" } gets a network namespace from Nomad, which the
	// driver puts on its bridge and the dyno joins (so does "bridge", set up by Nomad's
	// CNI plugins); a group in host mode is refused unless allow_host_network is set.
	capabilities = &drivers.Capabilities{
		SendSignals:       true,
		Exec:              true,
		FSIsolation:       drivers.FSIsolationImage,
		NetIsolationModes: []drivers.NetIsolationMode{drivers.NetIsolationModeHost, drivers.NetIsolationModeGroup},
		MountConfigs:      drivers.MountConfigSupportNone,
		// The dyno's sandbox process writes its log files (sandbox.Logs): Nomad
		// starts no log collector process per dyno.
		DisableLogCollection: true,
	}
)
