// Command nomad-driver-dyno is the Nomad task driver plugin `dyno`.
package main

import (
	hclog "github.com/hashicorp/go-hclog"
	"github.com/hashicorp/nomad/plugins"

	"github.com/dynogrid/dynogrid/driver"
)

func main() {
	plugins.Serve(func(l hclog.Logger) interface{} { return driver.New(l) })
}
