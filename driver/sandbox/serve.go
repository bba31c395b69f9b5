package sandbox

import (
	"context"
	"fmt"
	"os"

	hclog "github.com/hashicorp/go-hclog"
	plugin "github.com/hashicorp/go-plugin"
	"github.com/hashicorp/nomad/drivers/shared/executor"
	"github.com/hashicorp/nomad/drivers/shared/executor/proto"
	"github.com/hashicorp/nomad/plugins/base"
	"google.golang.org/grpc"
)

// init turns the driver binary (or a test binary that links this package) into a sandbox
// process when it is started with Subcommand, the way Nomad's executor does.
func init() {
	if len(os.Args) < 2 || os.Args[1] != Subcommand {
		return
	}
	os.Exit(serve(os.Args[2:]))
}

func serve(args []string) int {
	if len(args) != 1 {
		fmt.Fprintf(os.Stderr, "usage: %s %s <options json>\n", os.Args[0], Subcommand)
		return 2
	}
	opts, err := decodeOptions(args[0])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	f, err := os.OpenFile(opts.LogFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		fmt.Fprintf(os.Stderr, "failed to open sandbox log: %v\n", err)
		return 1
	}
	defer f.Close()
	logger := hclog.New(&hclog.LoggerOptions{
		Name:       "dyno-sandbox",
		Level:      hclog.LevelFromString(opts.LogLevel),
		JSONFormat: true,
		Output:     f,
	})
	plugin.Serve(&plugin.ServeConfig{
		HandshakeConfig: base.Handshake,
		Plugins:         map[string]plugin.Plugin{"executor": &serverPlugin{impl: newExecutor(logger, opts)}},
		GRPCServer:      plugin.DefaultGRPCServer,
		Logger:          logger,
	})
	return 0
}

// serverPlugin serves the dyno's executor over gRPC. Its client half is Nomad's own.
type serverPlugin struct {
	plugin.NetRPCUnsupportedPlugin
	impl executor.Executor
}

var _ plugin.GRPCPlugin = (*serverPlugin)(nil)

func (p *serverPlugin) GRPCServer(_ *plugin.GRPCBroker, s *grpc.Server) error {
	proto.RegisterExecutorServer(s, &grpcExecutorServer{impl: p.impl})
	return nil
}

func (p *serverPlugin) GRPCClient(ctx context.Context, b *plugin.GRPCBroker, c *grpc.ClientConn) (interface{}, error) {
	client := executor.GetPluginMap(hclog.NewNullLogger(), true, 0)["executor"].(plugin.GRPCPlugin)
	return client.GRPCClient(ctx, b, c)
}
