package addon

import (
	"github.com/hashicorp/go-plugin"
)

// ProtocolVersion is the version of the add-on protocol (proto/addon/v1 in this
// module). The host refuses a plugin that speaks another one, with an error naming both.
const ProtocolVersion = 1

// PluginName is the name of the add-on service in go-plugin's plugin set.
const PluginName = "addon"

// BinaryPrefix starts the file name of every add-on in a plugin directory.
const BinaryPrefix = "dyno-addon-"

// Handshake is shared by the host and every add-on. The magic cookie only tells a
// program started by hand that it is a plugin; it is no security measure.
var Handshake = plugin.HandshakeConfig{
	ProtocolVersion:  ProtocolVersion,
	MagicCookieKey:   "DYNO_ADDON_PLUGIN",
	MagicCookieValue: "6f1c2b8e-dynogrid-addon",
}

// PluginSets maps each protocol version to the plugins served for it; impl may be
// nil on the host side.
func PluginSets(impl Addon) map[int]plugin.PluginSet {
	return map[int]plugin.PluginSet{
		ProtocolVersion: {PluginName: &GRPCPlugin{Impl: impl}},
	}
}
