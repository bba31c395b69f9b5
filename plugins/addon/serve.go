package addon

import (
	"os"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"
)

// Serve serves a as an add-on plugin over gRPC and returns when the host stops it. Call
// it from main. Log with a logger from NewLogger: the host shows its lines in its own
// log at their level, tagged with the add-on's name.
func Serve(a Addon) {
	plugin.Serve(&plugin.ServeConfig{
		HandshakeConfig:  Handshake,
		VersionedPlugins: PluginSets(a),
		GRPCServer:       plugin.DefaultGRPCServer,
		Logger:           NewLogger(),
	})
}

// NewLogger returns a logger whose lines the host parses and shows: JSON on stderr.
func NewLogger() hclog.Logger {
	return hclog.New(&hclog.LoggerOptions{
		Level:      hclog.Info,
		Output:     os.Stderr,
		JSONFormat: true,
	})
}
