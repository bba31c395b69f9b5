// Command dyno-addon-memcached is the built-in memcached add-on plugin. The dyno CLI
// starts it; run by hand, it says so and exits.
package main

import (
	"github.com/dynogrid/dynogrid/plugins/addon"
	"github.com/dynogrid/dynogrid/plugins/memcached"
)

func main() {
	addon.Serve(memcached.New(addon.NewLogger()))
}
