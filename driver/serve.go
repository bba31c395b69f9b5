package driver

import (
	"context"

	hclog "github.com/hashicorp/go-hclog"
	plugin "github.com/hashicorp/go-plugin"
	"github.com/hashicorp/nomad/plugins/base"
	"github.com/hashicorp/nomad/plugins/drivers"
	"github.com/hashicorp/nomad/plugins/drivers/proto"
	"google.golang.org/grpc"
)

// Serve serves the driver to the Nomad client that started this process, as Nomad's
// plugins.Serve does, with one difference: the driver's answer to Capabilities carries
// DisableLogCollection and MountConfigs. Nomad v1.6.3's plugin server leaves both out of
// the answer (its client reads them). Without the first the client would start a log
// collector process (logmon) for every dyno, beside the sandbox that collects the
// dyno's logs; without the second it would take "any mounts" and silently drop a task's
// volume_mount blocks instead of refusing them.
func Serve() {
	logger := hclog.New(&hclog.LoggerOptions{Level: hclog.Trace, JSONFormat: true})
	d := New(logger)
	plugin.Serve(&plugin.ServeConfig{
		HandshakeConfig: base.Handshake,
		Plugins: map[string]plugin.Plugin{
			base.PluginTypeBase:   &base.PluginBase{Impl: d},
			base.PluginTypeDriver: drivers.NewDriverPlugin(d, logger),
		},
		GRPCServer: func(opts []grpc.ServerOption) *grpc.Server {
			return plugin.DefaultGRPCServer(append(opts, grpc.ChainUnaryInterceptor(completeCapabilities)))
		},
		Logger: logger,
	})
}

// completeCapabilities sets the capabilities that Nomad's plugin server leaves out of its
// answer to Capabilities.
func completeCapabilities(ctx context.Context, req any, _ *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	resp, err := handler(ctx, req)
	if r, ok := resp.(*proto.CapabilitiesResponse); ok && r.Capabilities != nil {
		r.Capabilities.DisableLogCollection = capabilities.DisableLogCollection
		r.Capabilities.MountConfigs = proto.DriverCapabilities_MountConfigs(capabilities.MountConfigs)
	}
	return resp, err
}
