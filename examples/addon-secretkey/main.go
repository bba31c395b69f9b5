// Command dyno-addon-secretkey is an example third-party add-on, built only on the
// Dynogrid add-on SDK: it gives each attachment a random SECRET_KEY_BASE (the secret
// Rails and Rack apps sign cookies with), remembered in the add-on's state directory.
//
//	cd examples/addon-secretkey && go build -o /usr/local/lib/dynogrid/addons/dyno-addon-secretkey .
//	dyno addons:create secretkey --app myapp
package main

import (
	"github.com/dynogrid/dynogrid/plugins/addon"
)

func main() {
	addon.Serve(&SecretKey{})
}
